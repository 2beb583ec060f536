"""read_screen: a session's screen read back from the tail of its .cast."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vibetunnel.recording import replay
from vibetunnel.recording.replay import read_screen

HEADER = json.dumps({"version": 2, "width": 80, "height": 24, "timestamp": 1700000000})


def cast(path: Path, *events: tuple[str, str], tail: str = "") -> Path:
    lines = [HEADER] + [json.dumps([n * 0.25, kind, data]) for n, (kind, data) in enumerate(events)]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


def test_output_since_the_last_clear(tmp_path: Path) -> None:
    path = cast(
        tmp_path / "a.cast",
        ("o", "first screen\r\n"),
        ("o", "$ clear\r\n\x1b[H\x1b[2J"),
        ("i", "typed"),
        ("r", "100x30"),
        ("o", "second "),
        ("o", "screen €\r\n"),
    )
    assert read_screen(path) == "\x1b[2Jsecond screen €\r\n".encode()


def test_a_clear_split_across_events_still_counts(tmp_path: Path) -> None:
    path = cast(tmp_path / "a.cast", ("o", "old\x1b["), ("o", "2Jnew"))
    assert read_screen(path) == b"\x1b[2Jnew"


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = cast(tmp_path / "a.cast", ("o", "whole\r\n"), tail='[9.5, "o", "torn by a kil')
    assert read_screen(path) == b"whole\r\n"


def test_a_torn_multibyte_character_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "a.cast"
    cast(path, ("o", "whole\r\n"))
    with path.open("ab") as f:
        f.write(b'[9.5, "o", "\xe2\x82')  # cut inside a character
    assert read_screen(path) == b"whole\r\n"


def test_header_only_and_empty_files(tmp_path: Path) -> None:
    assert read_screen(cast(tmp_path / "a.cast")) == b""
    (tmp_path / "b.cast").write_bytes(b"")
    assert read_screen(tmp_path / "b.cast") == b""


def test_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_screen(tmp_path / "nothing.cast") == b""


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = cast(tmp_path / "secret.cast", ("o", "not yours\r\n"))
    link = tmp_path / "link.cast"
    link.symlink_to(target)
    assert read_screen(target) == b"not yours\r\n"
    assert read_screen(link) == b""


def test_at_most_limit_bytes_of_whole_characters(tmp_path: Path) -> None:
    path = cast(tmp_path / "a.cast", ("o", "abc" + "€" * 10))
    assert read_screen(path, limit=7) == "€€".encode()  # 7 bytes would cut a character
    assert read_screen(path, limit=100) == ("abc" + "€" * 10).encode()


def test_only_the_tail_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [("o", f"line-{n:03d}\r\n") for n in range(100)]
    path = cast(tmp_path / "a.cast", *events)
    monkeypatch.setattr(replay, "TAIL", 300)
    screen = read_screen(path)
    # The seek lands inside a line: that piece is skipped, the lines after it are whole.
    assert screen.endswith(b"line-098\r\nline-099\r\n")
    assert b"line-000" not in screen
    assert len(screen) < 300
    assert screen.startswith(b"line-") and len(screen) % len(b"line-000\r\n") == 0


def test_a_hard_link_is_not_read(tmp_path: Path) -> None:
    target = cast(tmp_path / "secret.cast", ("o", "not yours\r\n"))
    os.link(target, tmp_path / "link.cast")
    assert read_screen(tmp_path / "link.cast") == b""


def test_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.cast")
    assert read_screen(tmp_path / "pipe.cast") == b""  # no writer will ever come
