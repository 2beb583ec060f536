"""A session's screen read back from its recording: for an exited session whose screen was
dropped from memory, and for the keeper taking over after a server died."""

from __future__ import annotations

import os
from pathlib import Path

from vibetunnel.files import open_plain
from vibetunnel.protocol.screen import REPLAY_LIMIT, ScreenBuffer
from vibetunnel.recording.asciicast import CastFormatError, parse_event

TAIL = 8 * REPLAY_LIMIT
"""Bytes of the file's end read: JSON-escaped output is at most ~6 times its raw size."""


def read_screen(path: Path, limit: int = REPLAY_LIMIT) -> bytes:
    """The output since the last screen clear (at most `limit` bytes), from the "o" events at
    the end of the .cast at `path`; empty when there is no such file, or it is no plain file
    (a link, a FIFO: see files.open_plain)."""
    try:
        fd = open_plain(path, os.O_RDONLY)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - TAIL)
        f.seek(start)
        data = f.read(size - start)
    lines = data.split(b"\n")
    lines = lines[1:]  # the header, or the first piece of a line cut by the seek
    screen = ScreenBuffer(limit)
    for line in lines:
        if not line:
            continue
        try:
            _, kind, text = parse_event(line.decode("utf-8"))
        except (UnicodeDecodeError, CastFormatError):
            continue  # a torn last line
        if kind == "o":
            screen.append(text.encode("utf-8"))
    return screen.snapshot()
