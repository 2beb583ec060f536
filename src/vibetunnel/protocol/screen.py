"""What a late joiner needs: the output since the last screen clear, at most `limit` bytes."""

from __future__ import annotations

# Sequences after which what came before is no longer on screen: erase display (ED 2 and
# the scrollback erase `clear` sends after it), full reset (RIS), and entering the
# alternate screen that full-screen programs draw on.
CLEAR_SEQUENCES = (b"\x1b[2J", b"\x1b[3J", b"\x1bc", b"\x1b[?1049h")
_LONGEST = max(len(s) for s in CLEAR_SEQUENCES)

REPLAY_LIMIT = 1 << 20


def last_clear(buf: bytes | bytearray, start: int = 0) -> int:
    """Index of the last clear sequence that begins at or after `start`, or -1."""
    if buf.find(b"\x1b", start) < 0:  # plain text: one memchr instead of four searches
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


class ScreenBuffer:
    """Output since the last screen clear; the oldest bytes go first when it grows too big."""

    def __init__(self, limit: int = REPLAY_LIMIT) -> None:
        self.limit = limit
        self._buf = bytearray()

    def append(self, data: bytes) -> None:
        """Add whole UTF-8 output; drop what a clear sequence in it made invisible."""
        # Look back a little, so a sequence split across two reads is still found.
        start = max(0, len(self._buf) - (_LONGEST - 1))
        self._buf += data
        i = last_clear(self._buf, start)
        if i > 0:
            del self._buf[:i]  # deleting from the front of a bytearray is O(1) in CPython
        elif len(self._buf) > 2 * self.limit:
            del self._buf[: char_start(self._buf, len(self._buf) - self.limit)]

    def snapshot(self) -> bytes:
        """The current screen's worth of output: at most `limit` bytes, whole characters.

        Never starts inside a character, even if a caller appended a character in pieces
        and a trim cut off its first bytes.
        """
        start = char_start(self._buf, max(0, len(self._buf) - self.limit))
        return bytes(self._buf[start:]) if start else bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)
