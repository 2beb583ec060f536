"""Per-client request counting over a moving one-minute window, with the `limits` library.

A moving window (not a fixed one) so that a client cannot send twice the limit across a minute
boundary. Refused hits are not counted: a client that keeps knocking while blocked is let in
again as soon as its oldest counted hit is a minute old.

The same class limits failed logins (`RateLimiter(FAILED_LOGINS_PER_MINUTE)`): `peek` before
checking the password, `hit` only when the password was wrong.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

FAILED_LOGINS_PER_MINUTE = 10


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
    """At most `per_minute` hits per key in any 60 seconds, in memory. Thread-safe."""

    def __init__(self, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> tuple[bool, RateState]:
        """Count one request for `key`; return whether it is allowed, and the state after it."""
        allowed = self._limiter.hit(self._item, key)
        return allowed, self._state(key)

    def peek(self, key: str) -> tuple[bool, RateState]:
        """Whether one more hit for `key` would be allowed, without counting it."""
        return self._limiter.test(self._item, key), self._state(key)

    def _state(self, key: str) -> RateState:
        stats = self._limiter.get_window_stats(self._item, key)
        return RateState(
            limit=self.per_minute,
            remaining=max(0, stats.remaining),
            # The first whole second strictly after the oldest hit leaves the window: `limits`
            # still counts a hit exactly 60 s old, so a retry at the reset second must succeed.
            reset=math.floor(stats.reset_time) + 1,
        )
