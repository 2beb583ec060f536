"""Refresh tokens in a real, shared redis-server: each `RedisLink` here is one node."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio

from tests.aio import DEADLINE, debug_loop  # noqa: F401
from tests.clock import FakeClock
from tests.redis_server import RedisServer, free_port, redis_server  # noqa: F401
from vibetunnel.auth.redislink import ClusterUnavailable, RedisLink, where
from vibetunnel.auth.redisrefresh import RedisRefreshStore
from vibetunnel.auth.refresh import token_hash
from vibetunnel.errors import AuthError

TTL = 1000.0
Nodes = Callable[[int], list[RedisRefreshStore]]


@pytest.fixture
async def links(redis_server: RedisServer) -> AsyncIterator[Callable[..., RedisLink]]:  # noqa: F811
    made: list[RedisLink] = []

    def make(url: str | None = None, **kwargs: object) -> RedisLink:
        link = RedisLink(url or redis_server.url, **kwargs)  # type: ignore[arg-type]
        made.append(link)
        return link

    yield make
    for link in made:
        await link.close()


@pytest.fixture
def nodes(links: Callable[..., RedisLink]) -> Nodes:
    return lambda n: [RedisRefreshStore(links(), ttl=TTL) for _ in range(n)]


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:  # noqa: F811
    client = redis.asyncio.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def eventually(check: Callable[[], Awaitable[object]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def refused(call: Awaitable[object]) -> str:
    with pytest.raises(AuthError) as caught:
        await call
    return caught.value.message


async def test_rotation_across_nodes(nodes: Nodes) -> None:
    a, b = nodes(2)
    first = await a.issue("alice")
    sub, second = await b.rotate(first)
    assert sub == "alice" and second != first
    sub, third = await a.rotate(second)
    assert sub == "alice" and third not in (first, second)


async def test_reuse_on_another_node_revokes_the_family(nodes: Nodes) -> None:
    a, b = nodes(2)
    first = await a.issue("alice")
    _, second = await a.rotate(first)
    other = await a.issue("alice")  # another login: another family, untouched
    assert "reused" in await refused(b.rotate(first))
    assert "unknown" in await refused(a.rotate(second))  # the family's newest token is gone too
    assert (await b.rotate(other))[0] == "alice"


async def test_a_familys_device_key_follows_it_across_nodes(
    nodes: Nodes, raw: redis.asyncio.Redis
) -> None:
    a, b = nodes(2)
    key = "k" * 43
    first = await a.issue("alice", key)
    plain = await a.issue("alice")
    assert await b.bound_key(first) == key and await b.bound_key(plain) is None
    _, second = await b.rotate(first)
    assert await a.bound_key(second) == key
    assert await a.bound_key(first) == key  # spent, still known: its replay needs the proof
    assert await raw.hget(f"vt:refresh:token:{token_hash(second)}", "key") == key.encode()
    assert await raw.hget(f"vt:refresh:token:{token_hash(plain)}", "key") is None
    _, after_plain = await b.rotate(plain)
    assert await a.bound_key(after_plain) is None
    await a.revoke(second)
    assert await b.bound_key(second) is None and await b.bound_key(first) is None


async def test_concurrent_rotations_exactly_one_wins(nodes: Nodes) -> None:
    stores = nodes(8)
    token = await stores[0].issue("alice")
    results = await asyncio.gather(*(s.rotate(token) for s in stores), return_exceptions=True)
    wins = [r for r in results if isinstance(r, tuple)]
    losses = [r for r in results if isinstance(r, AuthError)]
    assert len(wins) == 1 and len(losses) == 7, results
    # A second rotation of a spent token is a replay: the winner's new token is revoked too.
    assert "unknown" in await refused(stores[0].rotate(wins[0][1]))


async def test_logout_revokes_the_family_everywhere(nodes: Nodes) -> None:
    a, b = nodes(2)
    first = await a.issue("alice")
    _, second = await a.rotate(first)
    await b.revoke(first)
    assert "unknown" in await refused(a.rotate(second))
    await b.revoke("never-issued")  # a no-op


async def test_unknown_token_refused(nodes: Nodes) -> None:
    (a,) = nodes(1)
    assert "unknown" in await refused(a.rotate("x" * 43))
    with pytest.raises(ValueError):
        await a.issue("")


async def test_only_hashes_are_stored_with_the_tokens_lifetimes(
    nodes: Nodes, raw: redis.asyncio.Redis
) -> None:
    (a,) = nodes(1)
    first = await a.issue("alice")
    _, second = await a.rotate(first)
    keys = sorted(k.decode() for k in await raw.keys("*"))
    assert len(keys) == 3 and all(k.startswith("vt:refresh:") for k in keys)
    assert f"vt:refresh:token:{token_hash(first)}" in keys
    assert f"vt:refresh:token:{token_hash(second)}" in keys
    dump = repr([await raw.dump(k) for k in keys]) + repr(keys)
    assert first not in dump and second not in dump
    for key in keys:
        ttl = await raw.pttl(key)
        assert TTL * 1000 - 5000 < ttl <= TTL * 1000, (key, ttl)
    assert await raw.hget(f"vt:refresh:token:{token_hash(first)}", "spent") == b"1"


async def test_refresh_tokens_expire(
    links: Callable[..., RedisLink], raw: redis.asyncio.Redis
) -> None:
    store = RedisRefreshStore(links(), ttl=0.2)
    token = await store.issue("alice")
    key = f"vt:refresh:token:{token_hash(token)}"
    assert await raw.exists(key)

    async def gone() -> bool:
        return not await raw.keys("vt:refresh:*")

    await eventually(gone, "the token and its family to expire")
    assert "expired" in await refused(store.rotate(token))


async def test_use_once_across_nodes_until_it_expires(
    links: Callable[..., RedisLink], raw: redis.asyncio.Redis
) -> None:
    clock = FakeClock(time.time())
    a = RedisRefreshStore(links(), clock=clock)
    b = RedisRefreshStore(links(), clock=clock)
    assert await a.use_once("jti-1", clock.now + 300)
    assert not await b.use_once("jti-1", clock.now + 300)
    assert await b.use_once("jti-2", clock.now + 300)
    assert 299_000 < await raw.pttl("vt:refresh:once:jti-1") <= 300_000
    assert await a.use_once("short", clock.now + 0.1)

    async def free_again() -> bool:
        return await b.use_once("short", clock.now + 300)

    await eventually(free_again, "the used login token to expire")


async def test_redis_down_is_503_fast_then_works_again(
    redis_server: RedisServer,  # noqa: F811
    links: Callable[..., RedisLink],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(0.0)
    store = RedisRefreshStore(links(timeout=0.5, clock=clock), ttl=TTL)
    token = await store.issue("alice")
    redis_server.stop()
    started = time.monotonic()
    for call in (store.issue("alice"), store.rotate(token), store.use_once("j", 2e9)):
        with pytest.raises(ClusterUnavailable) as caught:
            await call
        assert caught.value.status == 503 and caught.value.code == "cluster_unavailable"
    assert time.monotonic() - started < 1.0  # refused, then skipped: no waiting per call
    warnings = [r for r in caplog.records if r.name == "vibetunnel.auth.redislink"]
    assert (
        len(warnings) == 1
        and warnings[0].levelno == logging.WARNING
        and "unreachable" in warnings[0].getMessage()
    )
    redis_server.start()  # empty: what it held is lost, as with any Redis without persistence
    with pytest.raises(ClusterUnavailable):  # still within retry_every: not tried yet
        await store.issue("alice")
    clock.advance(1.0)
    again = await store.issue("alice")
    assert (await store.rotate(again))[0] == "alice"
    assert "reachable again" in caplog.records[-1].getMessage()


async def test_the_password_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there
    url = f"rediss://user:s3cret-pw@127.0.0.1:{port}/0"
    assert where(url) == f"127.0.0.1:{port}"
    link = RedisLink(url, timeout=0.5)
    try:
        with pytest.raises(ClusterUnavailable) as caught:
            await RedisRefreshStore(link).issue("alice")
    finally:
        await link.close()
    logged = caplog.text + str(caught.value)
    assert "unreachable" in logged and "127.0.0.1" in logged
    assert "s3cret-pw" not in logged and "user:" not in logged


def test_where_is_host_and_port_only() -> None:
    assert where("redis://:pw@redis.example:6380/2") == "redis.example:6380"
    assert where("rediss://u:pw@[::1]/0") == "[::1]:6379"
    assert where("redis://localhost") == "localhost:6379"
