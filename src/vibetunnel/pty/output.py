"""A program's output after the PTY: the one fan-out every holder of a session shares.

Raw PTY reads become whole UTF-8 (a character split across two reads waits for its last
byte; bytes that are not UTF-8 become U+FFFD), then go to the screen buffer (what a late
joiner is sent), to the recording, and to every sink: the server's WebSocket clients, `vt`'s
link to the server. The server's sessions, the keeper (while no server runs) and `vt` all
use this class, so the three see the same bytes.
"""

from __future__ import annotations

import re
import time
from typing import Protocol

from vibetunnel.protocol.frames import Utf8Stream
from vibetunnel.protocol.screen import ScreenBuffer

_TITLE = re.compile(rb"\x1b\][02];([^\x07\x1b]{0,256})(?:\x07|\x1b\\)")
"""OSC 0 or 2 (the window title), ended by BEL or ST; a title cut across two reads is missed."""


class Sink(Protocol):
    def feed(self, data: bytes) -> None: ...


class Recording(Protocol):
    def output(self, data: bytes) -> None:
        """Whole, valid UTF-8."""


class Output:
    """Whole UTF-8 (decoded only when not plain ASCII), then screen, recording and sinks,
    in that order."""

    def __init__(
        self,
        recording: Recording | None = None,
        screen: ScreenBuffer | None | bool = True,
        held: bytes = b"",
    ) -> None:
        self.recording = recording
        self.screen: ScreenBuffer | None = (
            ScreenBuffer() if screen is True else None if screen is False else screen
        )
        """None once dropped to bound memory (an exited session): read back from the recording."""
        self.sinks: list[Sink] = []
        self._utf8 = Utf8Stream(held)
        self.title: str | None = None
        """The last title the program set (OSC 0 or 2), for the session list."""
        self.last_output: float | None = None
        """When the program last wrote (Unix time): the session list's activity."""

    def feed(self, raw: bytes) -> None:
        """One PTY read."""
        data = self._utf8.whole(raw)
        if data:
            self._publish(data)

    def finish(self) -> None:
        """End of output: a character cut short becomes U+FFFD."""
        data = self._utf8.finish()
        if data:
            self._publish(data)

    def held(self) -> bytes:
        return self._utf8.held()

    def snapshot(self, limit: int | None = None) -> bytes:
        """The current screen (protocol/screen.py), at most about `limit` bytes."""
        return b"" if self.screen is None else self.screen.snapshot(limit)

    def _publish(self, data: bytes) -> None:
        self.last_output = time.time()
        if b"\x1b]" in data:
            for m in _TITLE.finditer(data):
                self.title = m.group(1).decode("utf-8", "replace")
        if self.screen is not None:
            self.screen.append(data)
        for sink in self.sinks:
            sink.feed(data)
        if self.recording is not None:
            self.recording.output(data)
