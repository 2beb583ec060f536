"""Binary terminal frames: 0xBF, a u32 big-endian length, then that many UTF-8 bytes."""

from __future__ import annotations

import codecs
import struct

from vibetunnel.errors import FrameError as FrameError  # raised here; importable from here

MAGIC = 0xBF
HEADER = struct.Struct(">BI")
HEADER_SIZE = HEADER.size
MAX_FRAME = 64 * 1024
"""Bytes of data one frame carries at most (cut at a character boundary; docs/decisions.md)."""


def encode(data: bytes) -> bytes:
    """One frame carrying `data`, which must already be whole UTF-8."""
    return HEADER.pack(MAGIC, len(data)) + data


def decode(buf: bytes) -> tuple[bytes, bytes]:
    """Split the first frame off `buf`: (its data, the rest). Raises FrameError."""
    if len(buf) < HEADER_SIZE:
        raise FrameError(f"frame too short: {len(buf)} bytes")
    magic, length = HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise FrameError(f"bad magic byte 0x{magic:02X}")
    end = HEADER_SIZE + length
    if len(buf) < end:
        raise FrameError(f"frame says {length} bytes, has {len(buf) - HEADER_SIZE}")
    return buf[HEADER_SIZE:end], buf[end:]


class Utf8Stream:
    """Turns PTY reads into whole, valid UTF-8.

    A character split across two reads is held back until its last byte arrives; bytes that
    are not UTF-8 become U+FFFD. The fast path (pure ASCII or whole UTF-8) costs one C call.
    """

    def __init__(self, held: bytes = b"") -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._dirty = bool(held)
        """The decoder may hold the start of a character (the last read was not ASCII)."""
        if held:
            self._decoder.decode(held)

    def feed(self, data: bytes) -> bytes:
        """Bytes of whole characters ready to send; may be empty."""
        return self.text(data).encode("utf-8")

    def finish(self) -> bytes:
        """Whatever is held back, as U+FFFD: the stream has ended mid-character."""
        return self.finish_text().encode("utf-8")

    def text(self, data: bytes) -> str:
        """`feed`, as text."""
        self._dirty = True
        return self._decoder.decode(data)

    def whole(self, data: bytes) -> bytes:
        """`feed`, cheaper: `data` itself when it is whole, valid UTF-8 with nothing held
        before or after it (nearly every read), else its whole characters re-encoded. Clean
        ASCII is not even decoded."""
        if not data:
            return b""
        if data.isascii():  # nothing is held after ASCII
            if not self._dirty:
                return data
            self._dirty = False
            return self._decoder.decode(data).encode("utf-8")
        text = self._decoder.decode(data)
        held: bytes = self._decoder.getstate()[0]
        whole = not self._dirty and not held and "\ufffd" not in text
        self._dirty = bool(held)
        return data if whole else text.encode("utf-8")

    def finish_text(self) -> str:
        self._dirty = False  # a final decode leaves nothing held
        return self._decoder.decode(b"", final=True)

    def held(self) -> bytes:
        """The first bytes of a character still waiting for the rest (at most 3)."""
        data: bytes = self._decoder.getstate()[0]
        return data


def split_utf8(data: bytes | bytearray, limit: int) -> int:
    """The largest cut point <= limit that does not split a UTF-8 character of `data`.

    Always > 0 for non-empty data: a first character longer than `limit` is kept whole.
    """
    if len(data) <= limit:
        return len(data)
    cut = limit
    # Continuation bytes are 0b10xxxxxx: step back to the start of the character.
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    if cut == 0:
        # One character longer than the limit: send it whole rather than split it.
        cut = 1
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut += 1
    return cut


def cut_off(pending: bytearray, limit: int) -> bytes:
    """Cut the next frame's data (at most `limit` bytes of whole characters) off `pending`."""
    cut = split_utf8(pending, limit)
    data = bytes(pending[:cut])
    del pending[:cut]
    return data


def take(pending: bytearray, limit: int) -> bytes:
    """Cut the next frame (at most `limit` bytes of whole characters) off `pending`."""
    return encode(cut_off(pending, limit))


class SharedFrames:
    """`take` for the clients of one session: a frame is built once for all in step.

    Clients that are in step (the same pending bytes, which is every client that keeps up)
    get the same frame object, so a transport below can frame it once for all of them too
    (api/wsconn.py). The check is one compare of the pending bytes with the last frame's.
    """

    __slots__ = ("_data", "_frame")

    def __init__(self) -> None:
        self._data = b""
        self._frame = b""

    def take(self, pending: bytearray, limit: int) -> bytes:
        """As `take`."""
        n = len(pending)
        if n <= limit and n == len(self._data) and pending == self._data:
            pending.clear()
            return self._frame
        self._data = cut_off(pending, limit)
        self._frame = encode(self._data)
        return self._frame
