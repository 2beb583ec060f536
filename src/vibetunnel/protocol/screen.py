"""What a late joiner needs: the current screen's worth of output, and the modes it set.

Kept per screen, as a terminal does: the normal screen's output since its last clear, and,
while a full-screen program (vim, less, htop) is on the alternate screen, that screen's output
since it was entered or cleared. When the program leaves the alternate screen, what it drew
there is dropped and the normal screen is what remains: a client joining after vim quit sees
the shell, not vim's last frame. The DEC private modes a program set (application cursor
keys, bracketed paste, mouse reporting, cursor visibility) are replayed too, so a late
joiner's keys mean what the program expects.
"""

from __future__ import annotations

import re

CLEAR_SEQUENCES = (b"\x1b[2J", b"\x1b[3J", b"\x1bc")
"""Erase display, erase scrollback (which `clear` sends after ED 2), full reset (RIS)."""
ALT_SCREEN_MODES = frozenset({1049, 1047, 47})
"""DEC private modes that switch to (h) and from (l) the alternate screen."""
REPLAYED_MODES = (1, 25, 1000, 1002, 1003, 1006, 2004)
"""Application cursor keys, cursor visible, mouse reporting (X10, button, any, SGR),
bracketed paste: a late joiner is sent the last state a program set of each."""
ENTER_ALT = b"\x1b[?1049h"
REPLAY_LIMIT = 1 << 20

_CONTROL = re.compile(rb"\x1b(?:c|\[(?:[23]J|\?(\d{1,5}(?:;\d{1,5})*)([hl])))")
_UNFINISHED = re.compile(rb"\x1b(?:\[(?:\?[\d;]{0,23}|[23])?)?\Z")
_HOLD = 32
"""An unfinished control sequence at the end of a read waits for the next (at most this)."""


def last_clear(buf: bytes | bytearray, start: int = 0) -> int:
    """Index of the last clear sequence that begins at or after `start`, or -1."""
    if buf.find(b"\x1b", start) < 0:  # plain text: one memchr instead of three searches
        return -1
    found = -1
    for seq in CLEAR_SEQUENCES:
        i = buf.rfind(seq, start)
        if i > found:
            found = i
    return found


def char_start(buf: bytes | bytearray, i: int) -> int:
    """The first index >= i that begins a UTF-8 character (skips continuation bytes)."""
    while i < len(buf) and (buf[i] & 0xC0) == 0x80:
        i += 1
    return i


def _tail(buf: bytearray, room: int) -> bytes:
    """The last `room` bytes of `buf` (or fewer), starting on a whole character."""
    if room <= 0:
        return b""
    start = char_start(buf, max(0, len(buf) - room))
    return bytes(buf[start:]) if start else bytes(buf)


class ScreenBuffer:
    """The replay of one session, fed whole UTF-8 output in order."""

    def __init__(self, limit: int = REPLAY_LIMIT) -> None:
        self.limit = limit
        self._normal = bytearray()
        self._alt: bytearray | None = None
        """The alternate screen's output while a program is on it; None on the normal one."""
        self._modes: dict[int, bool] = {}
        self._held = b""

    def append(self, data: bytes) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        if b"\x1b" not in data:
            self._add(data)
            return
        unfinished = _UNFINISHED.search(data, max(0, len(data) - _HOLD))
        if unfinished is not None:
            data, self._held = data[: unfinished.start()], data[unfinished.start() :]
        pos = 0
        for m in _CONTROL.finditer(data):
            self._add(data[pos : m.start()])
            pos = m.end()
            self._control(m.group(0), m.group(1), m.group(2))
        self._add(data[pos:])

    def _control(self, seq: bytes, params: bytes | None, action: bytes | None) -> None:
        if params is None:  # a clear: what came before on this screen is gone
            if seq == b"\x1bc":
                self._alt = None
                self._modes.clear()
                self._normal = bytearray(seq)
            elif self._alt is not None:
                self._alt = bytearray(seq)
            else:
                self._normal = bytearray(seq)
            return
        on = action == b"h"
        kept = []
        for p in params.split(b";"):
            mode = int(p)
            if mode in ALT_SCREEN_MODES:
                self._alt = bytearray() if on else None
            elif mode in REPLAYED_MODES:
                self._modes[mode] = on  # sent once, at the end of the snapshot
            else:
                kept.append(p)
        if kept:  # other modes stay in the output, where the program put them
            self._add(b"\x1b[?" + b";".join(kept) + (action or b""))

    def _add(self, data: bytes) -> None:
        if not data:
            return
        buf = self._normal if self._alt is None else self._alt
        buf += data
        if len(buf) > 2 * self.limit:
            del buf[: char_start(buf, len(buf) - self.limit)]

    def snapshot(self, limit: int | None = None) -> bytes:
        """The screen's worth of output, at most about `limit` bytes (the buffer's own limit
        by default), whole characters: the normal screen, then the alternate one if a program
        is on it, then the modes. A smaller limit keeps the end of it."""
        modes = b"".join(
            b"\x1b[?%d%s" % (mode, b"h" if on else b"l") for mode, on in self._modes.items()
        )
        room = (self.limit if limit is None else min(limit, self.limit)) - len(modes)
        room -= len(self._held)
        alt = b""
        if self._alt is not None:
            alt = ENTER_ALT + _tail(self._alt, room - len(ENTER_ALT))
        return _tail(self._normal, room - len(alt)) + alt + modes + self._held

    def __len__(self) -> int:
        return len(self._normal) + (len(self._alt) if self._alt is not None else 0)
