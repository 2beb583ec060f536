"""Raw mode is always undone; sizes are read from the terminal."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from collections.abc import Iterator

import pytest

from vibetunnel.vt.terminal import RawMode, terminal_size


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


def test_raw_then_restored(pty: tuple[int, int]) -> None:
    _, slave = pty
    before = termios.tcgetattr(slave)
    with RawMode(slave) as raw:
        assert raw.active
        assert not termios.tcgetattr(slave)[3] & (termios.ECHO | termios.ICANON)
    assert termios.tcgetattr(slave) == before


def test_restored_on_a_crash(pty: tuple[int, int]) -> None:
    _, slave = pty
    before = termios.tcgetattr(slave)
    with pytest.raises(ZeroDivisionError), RawMode(slave):
        1 / 0  # noqa: B018
    assert termios.tcgetattr(slave) == before


def test_restore_is_once(pty: tuple[int, int]) -> None:
    _, slave = pty
    before = termios.tcgetattr(slave)
    with RawMode(slave) as raw:
        raw.restore()
        assert not raw.active and termios.tcgetattr(slave) == before
        # The user changed something after the signal path restored: not undone again.
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
    assert termios.tcgetattr(slave)[3] == attrs[3]


def test_not_a_terminal_is_a_no_op() -> None:
    r, w = os.pipe()
    try:
        with RawMode(r) as raw:
            assert not raw.active
        assert terminal_size(r, w) is None
    finally:
        os.close(r)
        os.close(w)


def test_terminal_size(pty: tuple[int, int]) -> None:
    master, slave = pty
    assert terminal_size(slave) is None  # 0x0: unknown
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))
    assert terminal_size(slave) == (132, 40)
    r, w = os.pipe()
    try:
        assert terminal_size(r, slave) == (132, 40)  # the first that is a terminal
    finally:
        os.close(r)
        os.close(w)
