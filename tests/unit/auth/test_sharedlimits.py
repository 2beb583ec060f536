"""Rate limits counted in a real, shared redis-server: each `RedisLink` here is one node."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio

from tests.aio import debug_loop  # noqa: F401
from tests.clock import FakeClock
from tests.redis_server import RedisServer, redis_server  # noqa: F401
from vibetunnel.auth.ratelimit import SharedRateLimiter
from vibetunnel.auth.redislink import RedisLink

Node = Callable[..., SharedRateLimiter]


@pytest.fixture
async def node(redis_server: RedisServer) -> AsyncIterator[Node]:  # noqa: F811
    made: list[RedisLink] = []

    def make(
        per_minute: int, name: str = "requests", clock: FakeClock | None = None
    ) -> SharedRateLimiter:
        link = RedisLink(redis_server.url, timeout=0.5, clock=clock or FakeClock(0.0))
        made.append(link)
        return SharedRateLimiter(per_minute, link, name)

    yield make
    for link in made:
        await link.close()


async def test_hits_on_every_node_count_together(
    node: Node,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    a, b = node(3), node(3)
    seen = [await a.hit("sub:alice"), await b.hit("sub:alice"), await a.hit("sub:alice")]
    assert [(ok, st.remaining) for ok, st in seen] == [(True, 2), (True, 1), (True, 0)]
    allowed, state = await b.hit("sub:alice")
    assert not allowed and state.remaining == 0 and state.retry_after() >= 1
    assert (await b.hit("sub:bob"))[0]  # another client
    assert (await node(3, "logins").hit("sub:alice"))[0]  # another limit
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        keys = {k.decode() for k in await client.keys("*")}
    finally:
        await client.aclose()
    assert keys == {
        "vt:limits:LIMITER/requests/sub:alice/3/1/minute",
        "vt:limits:LIMITER/requests/sub:bob/3/1/minute",
        "vt:limits:LIMITER/logins/sub:alice/3/1/minute",
    }


async def test_peek_does_not_count(node: Node) -> None:
    a, b = node(2), node(2)
    for _ in range(3):
        allowed, state = await a.peek("k")
        assert allowed and state.remaining == 2
    await b.hit("k")
    await b.hit("k")
    allowed, state = await a.peek("k")
    assert not allowed and state.remaining == 0


async def test_outage_counts_in_memory_then_redis_again(
    node: Node,
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(0.0)
    a = node(2, clock=clock)
    assert (await a.hit("k"))[0]
    redis_server.stop()
    # Counted on this node alone from zero: never a refusal because Redis is gone, never
    # unlimited either.
    assert [(await a.hit("k"))[0] for _ in range(3)] == [True, True, False]
    assert not (await a.peek("k"))[0]
    warnings = [r for r in caplog.records if r.name == "vibetunnel.auth.redislink"]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    redis_server.start()  # empty
    clock.advance(1.0)
    allowed, state = await a.hit("k")
    assert allowed and state.remaining == 1  # Redis's count, not the memory one
    warnings = [r for r in caplog.records if r.name == "vibetunnel.auth.redislink"]
    assert len(warnings) == 2 and "reachable again" in warnings[1].getMessage()


def test_without_redis_nothing_imports_redis(tmp_path: Path) -> None:
    script = (
        "import sys, pathlib\n"
        "from vibetunnel.api.app import create_app\n"
        "from vibetunnel.auth import OffLoop, RateLimiter\n"
        "from vibetunnel.config import Config\n"
        "app = create_app(Config(home=pathlib.Path(sys.argv[1])))\n"
        "assert isinstance(app.state.refresh, OffLoop)\n"
        "assert isinstance(app.state.security.limiter, RateLimiter)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'coredis')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_with_redis_the_app_shares_limits_and_refresh_tokens(tmp_path: Path) -> None:
    from vibetunnel.api.app import create_app
    from vibetunnel.auth import RedisRefreshStore
    from vibetunnel.config import Config

    app = create_app(Config(home=tmp_path / "home", redis_url="redis://:pw@127.0.0.1:1/0"))
    assert isinstance(app.state.refresh, RedisRefreshStore)
    assert isinstance(app.state.security.limiter, SharedRateLimiter)
    assert isinstance(app.state.security.failed_logins, SharedRateLimiter)
