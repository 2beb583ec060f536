"""One connection pool to the shared Redis (`serve --redis URL`), and what an outage means.

Rate limits and refresh tokens live there when servers share it (docs/security.md, "Many
machines"). `redis` is imported here, lazily: a server without `--redis` never loads it.

Outages: every command has a short socket timeout and one immediate retry (for a pooled
connection an earlier outage broke), so a Redis that is gone costs a request at most twice
`timeout` seconds. After a failure the link is `down` and skips Redis for
`retry_every` seconds, so that during an outage requests answer at once; then one request tries
again. One warning is logged when an outage starts and one when it ends, never one per request.
What a caller does meanwhile is its own choice: the rate limiter counts in memory, refresh
answers 503 (`ClusterUnavailable`).

The URL may hold a password and may be `rediss://` (TLS): only `host:port` is ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urlsplit

from ..errors import VibeTunnelError

if TYPE_CHECKING:
    import redis.asyncio

T = TypeVar("T")
logger = logging.getLogger(__name__)

REDIS_TIMEOUT = 1.5
"""Seconds one Redis command (and connecting) may take before it counts as an outage."""
BLOCK = 1.0
"""Seconds a blocking read (the cluster's XREAD BLOCK and BLPOP) waits on the server at most;
those run on a client of their own whose socket timeout allows for it."""
RETRY_EVERY = 1.0
"""Seconds after a failure during which Redis is not tried again."""


class ClusterUnavailable(VibeTunnelError):
    """The shared Redis cannot be reached: state that must be the same on every node (refresh
    tokens, one-time login tokens) cannot be checked, so the request is refused, not guessed."""

    status = 503
    code = "cluster_unavailable"


def where(url: str) -> str:
    """`host:port` of a Redis URL: all of it that may be logged (never the password)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 6379
    except ValueError:
        return "redis (unparsable URL)"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class RedisLink:
    """The pool, the client on it, and whether Redis is currently reachable."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = REDIS_TIMEOUT,
        retry_every: float = RETRY_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.where = where(url)
        self._secret = unquote(urlsplit(url).password or "") if "@" in url else ""
        # One immediate retry, no more: a connection of the pool broken by an outage that is
        # over (Redis restarted) fails once, and is replaced by the retry; redis-py's default
        # (three, with backoff) would turn one lost Redis into seconds per request.
        self.pool: redis.asyncio.ConnectionPool = redis.asyncio.ConnectionPool.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self.client: redis.asyncio.Redis = redis.asyncio.Redis(connection_pool=self.pool)
        self.blocking: redis.asyncio.Redis = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=timeout + BLOCK,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self.on_change: list[Callable[[], None]] = []
        """Called when an outage starts and when it ends (the cluster re-publishes)."""
        self.errors: tuple[type[BaseException], ...] = (
            redis.RedisError,
            OSError,
            asyncio.TimeoutError,
        )
        self._retry_every = retry_every
        self._clock = clock
        self._down_since: float | None = None
        self._last_success = float("-inf")
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        """Whether the last attempt failed (an outage is going on, as far as we know)."""
        return self._down_since is not None

    def worth_trying(self) -> bool:
        """False while an outage is recent: callers skip Redis without waiting for it."""
        return self._down_since is None or self._clock() >= self._next_try

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """`await call()`, keeping track of outages; raises ClusterUnavailable when Redis
        fails or is skipped (see `worth_trying`)."""
        if not self.worth_trying():
            raise ClusterUnavailable(f"the shared Redis ({self.where}) is unreachable")
        started = self._clock()
        try:
            result = await call()
        except self.errors as exc:
            self.failed(exc, started)
            raise ClusterUnavailable(f"the shared Redis ({self.where}) is unreachable") from None
        self.succeeded()
        return result

    def failed(self, exc: BaseException, started: float | None = None) -> None:
        """A command failed. One that began before another succeeded (a connection of the
        pool broken by an outage that is already over) is no news of an outage."""
        now = self._clock()
        if started is not None and self._last_success > started:
            return
        self._next_try = now + self._retry_every
        if self._down_since is None:
            self._down_since = now
            logger.warning(
                "Redis at %s unreachable (%s): this node serves its own sessions only, rate "
                "limits count on this node only, refresh and login links answer 503 until it "
                "is back",
                self.where,
                self._scrub(f"{type(exc).__name__}: {exc}"),
            )
            self._changed()

    def succeeded(self) -> None:
        self._last_success = self._clock()
        if self._down_since is not None:
            logger.warning(
                "Redis at %s is reachable again after %.1f s",
                self.where,
                self._clock() - self._down_since,
            )
            self._down_since = None
            self._changed()

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    async def close(self) -> None:
        await self.blocking.aclose()
        await self.client.aclose()
        await self.pool.disconnect()

    def _scrub(self, text: str) -> str:
        # redis-py's messages name host:port only; this is in case one ever quotes the URL.
        text = text.replace(self.url, self.where)
        return text.replace(self._secret, "***") if self._secret else text
