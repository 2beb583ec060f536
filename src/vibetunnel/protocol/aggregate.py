"""The flush policy (docs/protocol.md), per client, on an injected clock. Pure: no timers, no I/O.

- Output goes out at once when nothing was sent in the last interval, or when the session got
  input since the last send (the echo of typing never waits: TCP_NODELAY for humans).
- Otherwise it collects until one interval after the last send, or until a full frame is
  collected: timer flushes are at most 1/interval a second; full frames go as fast as the
  client reads.

The interval is 1/60 s: the specification's "16 ms" and "at most 60 a second" are the same
number, rounded; 16 ms exactly would allow 62.5 timer flushes a second (docs/decisions.md).
"""

from __future__ import annotations

import math

from vibetunnel.protocol.frames import MAX_FRAME

FLUSH_INTERVAL = 1 / 60


class FlushPolicy:
    """When a client's pending output is due. The caller owns the buffer and the timer."""

    __slots__ = ("interval", "max_frame", "last_send", "input_seen")

    def __init__(self, interval: float = FLUSH_INTERVAL, max_frame: int = MAX_FRAME) -> None:
        self.interval = interval
        self.max_frame = max_frame
        self.last_send = -math.inf
        self.input_seen = False

    def due(self, now: float, pending: int) -> float | None:
        """The time at which `pending` bytes should be sent (<= now: send now); None if empty."""
        if pending <= 0:
            return None
        if pending >= self.max_frame or self.input_seen:
            return now
        return max(now, self.last_send + self.interval)

    def note_input(self) -> None:
        """The session received input: the next output (its echo) goes out at once."""
        self.input_seen = True

    def sent(self, now: float) -> None:
        """A frame went out at `now`."""
        self.last_send = now
        self.input_seen = False
