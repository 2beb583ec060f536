"""Per-client request counting over a moving one-minute window, on an injected clock.

A moving window (not a fixed one) so that a client cannot send twice the limit across a minute
boundary. Refused hits are not counted: a client that keeps knocking while blocked is let in
again as soon as its oldest counted hit is a minute old.

The same class limits failed logins (`RateLimiter(FAILED_LOGINS_PER_MINUTE)`): `peek` before
checking the password, `hit` only when the password was wrong.

Each key keeps the times of its counted hits (at most `per_minute` of them); keys silent for a
whole window are dropped once a window, so memory follows the clients of the last minute. This
replaced the `limits` library, whose memory storage reads `time.time()` itself (tests had to
patch its module) and runs a timer thread per limiter (docs/decisions.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

FAILED_LOGINS_PER_MINUTE = 10
WINDOW = 60.0
"""Seconds of the moving window."""


@dataclass(frozen=True)
class RateState:
    """What the `X-RateLimit-*` headers say about one client."""

    limit: int
    remaining: int
    reset: int
    """Unix time (whole seconds) from which one more request is allowed again."""

    def retry_after(self, now: float | None = None) -> int:
        """Seconds for `Retry-After`: `max(1, reset - now)`."""
        current = time.time() if now is None else now
        return max(1, math.ceil(self.reset - current))

    def headers(self) -> dict[str, str]:
        """The three `X-RateLimit-*` response headers."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    """At most `per_minute` hits per key in any 60 seconds, in memory. Thread-safe.

    A hit counts while it is at most WINDOW seconds old.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.time) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = clock() + WINDOW

    def hit(self, key: str) -> tuple[bool, RateState]:
        """Count one request for `key`; return whether it is allowed, and the state after it."""
        with self._lock:
            now = self._clock()
            hits = self._window(key, now)
            allowed = len(hits) < self.per_minute
            if allowed:
                hits.append(now)
                self._hits[key] = hits
            return allowed, self._state(hits, now)

    def peek(self, key: str) -> tuple[bool, RateState]:
        """Whether one more hit for `key` would be allowed, without counting it."""
        with self._lock:
            now = self._clock()
            hits = self._window(key, now)
            return len(hits) < self.per_minute, self._state(hits, now)

    def _window(self, key: str, now: float) -> deque[float]:
        """The hits of `key` still in the window (a new, unstored deque for an unknown key)."""
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and now - hits[0] > WINDOW:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        self._hits = {k: h for k, h in self._hits.items() if h and now - h[-1] <= WINDOW}
        self._next_sweep = now + WINDOW

    def _state(self, hits: deque[float], now: float) -> RateState:
        oldest = hits[0] if hits else now
        return RateState(
            limit=self.per_minute,
            remaining=max(0, self.per_minute - len(hits)),
            # The first whole second at which the oldest hit has left the window: a hit
            # exactly WINDOW seconds old still counts, so a retry at the reset must succeed.
            reset=math.floor(oldest + WINDOW) + 1,
        )
