"""vt's local output: a terminal slower than the program applies backpressure, loses nothing."""

from __future__ import annotations

import asyncio
import os
import threading

from tests.conftest import UNIT
from vibetunnel.pty.process import PtyProcess
from vibetunnel.vt.relay import TerminalWriter


def test_terminal_writer_signals_full_then_drained() -> None:
    read_end, write_end = os.pipe()  # a pipe nobody reads yet: the "slow terminal"
    full, drained = threading.Event(), threading.Event()
    out = TerminalWriter(write_end, full.set, drained.set, high=256 * 1024, low=64 * 1024)
    chunk = b"x" * 4096
    for _ in range(128):  # 512 KiB: past `high`
        out.write(chunk)
    assert full.is_set() and not drained.is_set()
    got = bytearray()

    def read_all() -> None:
        while len(got) < 128 * len(chunk):
            got.extend(os.read(read_end, 65536))

    reader = threading.Thread(target=read_all)
    reader.start()
    assert drained.wait(5 * UNIT)
    reader.join(5 * UNIT)
    out.close()
    assert bytes(got) == chunk * 128 and out.backlog == 0
    os.close(read_end)
    os.close(write_end)


async def test_paused_pty_loses_nothing_when_resumed() -> None:
    size = 3_000_000
    pty = PtyProcess.spawn(
        ["/bin/sh", "-c", f"stty -opost; head -c {size} /dev/zero | tr '\\0' x"],
        cwd="/",
        env=dict(os.environ),
        cols=80,
        rows=24,
    )
    received = bytearray()
    pty.start(received.extend, lambda code: None)
    pty.pause_reading()
    await asyncio.sleep(0)  # one loop turn: a paused PTY delivers nothing
    assert len(received) == 0
    pty.resume_reading()
    await asyncio.wait_for(pty.exited.wait(), 20 * UNIT)
    assert pty.returncode == 0
    assert bytes(received) == b"x" * size
