"""The connection to Redis, and whether it works: a node whose Redis is unreachable keeps
serving its own sessions and says the cluster is degraded until Redis answers again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("vibetunnel.cluster")


def redacted(url: str) -> str:
    """The URL without its user and password: what logs and messages may show."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    auth = "***@" if parts.username or parts.password else ""
    return f"{parts.scheme}://{auth}{host}{port}{parts.path}"


class RedisLink:
    """One Redis client (a pool) and the cluster's health as this node sees it."""

    def __init__(self, url: str, on_change: Callable[[], None] = lambda: None) -> None:
        import redis.asyncio as redis  # only with --redis

        self.shown = redacted(url)
        self._password = urlsplit(url).password
        # Short timeouts: a Redis that is gone must not hang a request for long. Blocking
        # reads wait at most 1 s on the server, well within the socket timeout.
        self.redis: Redis = redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=15
        )
        self.ok = False
        """Redis answered the last command; False at first and during an outage."""
        self.on_change = on_change
        self._said_down = False

    @staticmethod
    def errors() -> tuple[type[BaseException], ...]:
        """What a command raises when Redis is unreachable or misbehaves."""
        from redis.exceptions import RedisError

        return (RedisError, OSError, TimeoutError)

    def succeeded(self) -> None:
        if not self.ok:
            self.ok = True
            if self._said_down:
                log.warning("cluster: Redis at %s answers again: rejoined", self.shown)
            self._said_down = False
            self.on_change()

    def failed(self, exc: BaseException) -> None:
        """Once per outage: say so, serve this node's sessions alone."""
        was_ok, self.ok = self.ok, False
        if not self._said_down:
            self._said_down = True
            log.warning(
                "cluster: Redis at %s unreachable (%s); serving this node's sessions only",
                self.shown,
                self.scrub(str(exc) or type(exc).__name__),
            )
        if was_ok:
            self.on_change()

    def scrub(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    async def close(self) -> None:
        await self.redis.aclose()

    async def call(self, command: Any) -> Any:
        """Await a command, noting whether Redis answered; raises what the command raised."""
        try:
            result = await command
        except self.errors() as exc:
            self.failed(exc)
            raise
        self.succeeded()
        return result
