"""A share link is a client of its own (contract, "Limits at the edge, round three"): its own
rate-limit budget and its own small connection cap, so a link, however busy, cannot lock its
owner out. Against a real server, at its default limits unless a test says otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import UNIT, RunningServer, create, start_server
from tests.integration.test_redis_shared import SECRET, start_pair, stop_all
from tests.integration.wsclient import TermClient
from tests.redis_server import RedisServer, redis_server  # noqa: F401
from vibetunnel.api.security import SHARE_CONNECTIONS
from vibetunnel.auth import TokenService, load_or_create_secret, token_key


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Auth on, every limit at its default (100 requests a minute, 256 connections)."""
    server = start_server(tmp_path_factory.mktemp("home"))
    try:
        yield server
    finally:
        server.stop()


def tokens(srv: RunningServer) -> TokenService:
    return TokenService(load_or_create_secret(srv.home))


def session(srv: RunningServer, owner: str) -> str:
    """A new session that has printed `hello`, then echoes what it is sent (cat)."""
    with srv.client(owner) as c:
        sid: str = create(c, command="/bin/sh", args=["-c", "echo hello; exec cat"])["id"]
    return sid


def socket_url(srv: RunningServer, sid: str, token: str) -> str:
    return f"{srv.ws_url}/api/sessions/{sid}/ws?token={token}"


async def viewer(url: str) -> TermClient | None:
    """A WebSocket that the server accepted and kept (it sent the screen), else None: it was
    accepted and closed with 1011 saying why (asserted)."""
    t = await TermClient.connect(url)
    try:
        await t.see("hello")
    except AssertionError:
        code, reason = t.ws.close_code, t.ws.close_reason or ""
        assert code == 1011 and "share link" in reason, (code, reason)
        return None
    return t


async def viewer_soon(url: str) -> TermClient:
    """A viewer accepted once a slot is free (the server frees it when the socket is gone)."""
    for _ in range(int(50 * UNIT)):
        if (t := await viewer(url)) is not None:
            return t
    raise AssertionError("no share-link slot came free")


def test_a_share_link_spends_its_own_budget_not_its_owner_s(srv: RunningServer) -> None:
    service = tokens(srv)
    mine = service.issue("budget-owner", 600)
    sid = session(srv, mine)
    share = service.issue("budget-owner", 600, session_id=sid, read_only=True)
    with srv.client(mine) as owner, srv.client(share) as link:
        before = int(owner.get("/api/sessions").headers["x-ratelimit-remaining"])
        codes = [link.get(f"/api/sessions/{sid}").status_code for _ in range(101)]
        assert codes == [200] * 100 + [429]
        r = owner.get("/api/sessions")  # the owner's budget is whole
        assert r.status_code == 200
        assert int(r.headers["x-ratelimit-remaining"]) == before - 1
        r = link.get(f"/api/sessions/{sid}")  # the link's own next request
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
        assert int(r.headers["retry-after"]) >= 1
    # The same link spelled another way (PyJWT takes trailing base64 padding) is no new
    # budget: refused as spent, or as no token at all.
    with srv.client(share + "=") as respelled:
        assert respelled.get(f"/api/sessions/{sid}").status_code in (401, 429)
    # Another link is another client.
    with srv.client(service.issue("budget-owner", 600, session_id=sid)) as other:
        assert other.get(f"/api/sessions/{sid}").status_code == 200


async def test_a_share_link_has_its_own_small_connection_cap(srv: RunningServer) -> None:
    service = tokens(srv)
    mine = service.issue("cap-owner", 600)
    sid = session(srv, mine)
    share = service.issue("cap-owner", 600, session_id=sid, read_only=True)
    url = socket_url(srv, sid, share)
    viewers = [await viewer(url) for _ in range(SHARE_CONNECTIONS + 4)]
    assert all(viewers[:SHARE_CONNECTIONS])
    assert viewers[SHARE_CONNECTIONS:] == [None] * 4  # refused with 1011, saying why
    # Its event stream is a connection too: a 429 in the error shape.
    with srv.client(share) as link, link.stream("GET", f"/api/sessions/{sid}/events") as events:
        assert events.status_code == 429
        assert int(events.headers["retry-after"]) >= 1
        error = httpx.Response(429, content=events.read()).json()["error"]
        assert error["code"] == "too_many_requests" and "share link" in error["message"]
    # The owner is free to connect and to make requests.
    own = await TermClient.connect(socket_url(srv, sid, mine))
    await own.type("mine\r")
    await own.see("mine")
    with srv.client(mine) as owner:
        assert owner.get("/api/sessions").status_code == 200
    # The link's sockets, once closed, free its slots.
    for t in viewers[:2]:
        assert t is not None
        await t.close()
    await viewer_soon(url)
    await viewer_soon(url)
    assert await viewer(url) is None


async def test_a_share_link_s_connections_leave_its_address_s_slots(tmp_path: Path) -> None:
    """With 20 connections per address: the link's 16 sockets are not the address's, so the
    owner, on the same address, still opens 20."""
    srv = start_server(tmp_path / "home", "--max-connections-per-address", "20")
    try:
        service = tokens(srv)
        mine = service.issue("owner", 600)
        sid = session(srv, mine)
        share = service.issue("owner", 600, session_id=sid, read_only=True)
        for _ in range(SHARE_CONNECTIONS):
            assert await viewer(socket_url(srv, sid, share)) is not None
        for _ in range(19):
            assert await viewer(socket_url(srv, sid, mine)) is not None
        with srv.client(mine) as owner:
            assert owner.get("/api/sessions").status_code == 200
    finally:
        srv.stop()


async def test_a_keep_alive_connection_is_its_address_s_again_after_a_share_request(
    srv: RunningServer,
) -> None:
    """One connection carries a share link's request, then the owner's event stream: that
    stream is the address's, and leaves the link all of its slots."""
    service = tokens(srv)
    mine = service.issue("keepalive-owner", 600)
    sid = session(srv, mine)
    share = service.issue("keepalive-owner", 600, session_id=sid, read_only=True)
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=srv.url, limits=one, timeout=10 * UNIT) as c:
        as_link = {"Authorization": f"Bearer {share}"}
        assert c.get(f"/api/sessions/{sid}", headers=as_link).status_code == 200
        as_owner = {"Authorization": f"Bearer {mine}"}
        with c.stream("GET", f"/api/sessions/{sid}/events", headers=as_owner) as events:
            assert events.status_code == 200
            url = socket_url(srv, sid, share)
            for _ in range(SHARE_CONNECTIONS):
                assert await viewer(url) is not None


def test_with_redis_a_share_link_s_budget_is_shared_and_its_own(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    nodes = start_pair(tmp_path, redis_server.url, rate=5)
    try:
        a, b = nodes
        service = TokenService(SECRET.encode())
        mine = service.issue("redis-owner", 600)
        sid = session(a, mine)
        share = service.issue("redis-owner", 600, session_id=sid, read_only=True)
        with a.client(share) as on_a, b.client(share) as on_b:
            codes = [c.get(f"/api/sessions/{sid}").status_code for c in (on_a, on_b) * 3]
            assert 429 not in codes[:5] and codes[5] == 429  # five between the two nodes
            assert on_a.get(f"/api/sessions/{sid}").status_code == 429
        with b.client(mine) as owner:
            r = owner.get("/api/sessions")
            assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == "3"
        with redis.Redis.from_url(redis_server.url) as client:
            keys = [k.decode() for k in client.keys("vt:limits:*")]
        assert any(f"/share:{token_key(share)}/" in k for k in keys), keys
        assert not any(part in k for k in keys for part in share.split(".")[1:])
    finally:
        stop_all(nodes)
