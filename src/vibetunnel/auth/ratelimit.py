"""Per-client request counting over a moving one-minute window, with the `limits` library.

A moving window (not a fixed one) so that a client cannot send twice the limit across a minute
boundary. Refused hits are not counted: a client that keeps knocking while blocked is let in
again as soon as its oldest counted hit is a minute old.

The same class limits failed logins (`RateLimiter(FAILED_LOGINS_PER_MINUTE)`): `peek` before
checking the password, `hit` only when the password was wrong.

`hit` and `peek` are coroutines, so that `SharedRateLimiter` (servers sharing one Redis, with
the `limits` library's own Redis storage) and the memory one are used alike. The memory one
never waits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

if TYPE_CHECKING:
    import limits.aio.strategies

    from .redislink import RedisLink

FAILED_LOGINS_PER_MINUTE = 10
LIMITS_PREFIX = "vt:limits"
"""Prefix of the `limits` library's keys in a shared Redis: `vt:limits:LIMITER/<name>/<key>/
<limit>/1/minute`, each a list of hit times that expires a minute after its newest hit."""


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


class Limiter(Protocol):
    """What the gate and the login route use: `RateLimiter` or `SharedRateLimiter`."""

    per_minute: int

    async def hit(self, key: str) -> tuple[bool, RateState]: ...

    async def peek(self, key: str) -> tuple[bool, RateState]: ...


def _state(per_minute: int, stats: tuple[float, int]) -> RateState:
    reset_time, remaining = stats
    return RateState(
        limit=per_minute,
        remaining=max(0, remaining),
        # The first whole second strictly after the oldest hit leaves the window: `limits`
        # still counts a hit exactly 60 s old, so a retry at the reset second must succeed.
        reset=math.floor(reset_time) + 1,
    )


class RateLimiter:
    """At most `per_minute` hits per key in any 60 seconds, in memory. Thread-safe.

    `name` keeps limiters apart when they share a storage (see SharedRateLimiter)."""

    def __init__(self, per_minute: int, name: str = "requests") -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.name = name
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def hit(self, key: str) -> tuple[bool, RateState]:
        """Count one request for `key`; return whether it is allowed, and the state after it."""
        allowed = self._limiter.hit(self._item, self.name, key)
        return allowed, self._state(key)

    async def peek(self, key: str) -> tuple[bool, RateState]:
        """Whether one more hit for `key` would be allowed, without counting it."""
        return self._limiter.test(self._item, self.name, key), self._state(key)

    def _state(self, key: str) -> RateState:
        stats = self._limiter.get_window_stats(self._item, self.name, key)
        return _state(self.per_minute, (stats.reset_time, stats.remaining))


class SharedRateLimiter:
    """The same limit counted in the shared Redis, so that every node sees every hit.

    While Redis is unreachable, hits are counted in this node's memory instead (a client then
    gets up to the limit per node, for the outage only): an outage of Redis must not lock
    everyone out, nor let anyone through unlimited. The memory count is not carried over when
    Redis returns. Times are each node's own clock (`limits` stamps hits with `time.time()`):
    keep the nodes' clocks in sync (NTP), as the tokens' expiry needs anyway.
    """

    def __init__(self, per_minute: int, link: RedisLink, name: str = "requests") -> None:
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow

        self.local = RateLimiter(per_minute, name)
        self.per_minute = per_minute
        self.name = name
        self._link = link
        self._item = RateLimitItemPerMinute(per_minute)
        # The link's pool: its short timeouts and no retries (limits' own client has neither).
        storage = RedisStorage(
            "async+" + link.url,
            implementation="redispy",
            key_prefix=LIMITS_PREFIX,
            # Any: limits and redis-py annotate the pool each their own way, by release.
            connection_pool=cast(Any, link.pool),
        )
        self._limiter: limits.aio.strategies.MovingWindowRateLimiter = AsyncMovingWindow(storage)

    async def hit(self, key: str) -> tuple[bool, RateState]:
        """As RateLimiter.hit, counted in Redis (in memory during an outage)."""
        return await self._ask(self._limiter.hit, self.local.hit, key)

    async def peek(self, key: str) -> tuple[bool, RateState]:
        """As RateLimiter.peek, against Redis (memory during an outage)."""
        return await self._ask(self._limiter.test, self.local.peek, key)

    async def _ask(
        self,
        check: Callable[[RateLimitItem, str, str], Awaitable[bool]],
        local: Callable[[str], Awaitable[tuple[bool, RateState]]],
        key: str,
    ) -> tuple[bool, RateState]:
        """`check` in Redis and the state after it; `local` instead while it is out."""
        if not self._link.worth_trying():
            return await local(key)
        try:
            allowed = await check(self._item, self.name, key)
            state = await self._state(key)
        except self._link.errors as exc:
            self._link.failed(exc)
            return await local(key)
        self._link.succeeded()
        return allowed, state

    async def _state(self, key: str) -> RateState:
        stats = await self._limiter.get_window_stats(self._item, self.name, key)
        return _state(self.per_minute, (stats.reset_time, stats.remaining))
