"""Two real servers sharing one real redis-server: rate limits and refresh tokens are the same
on both, and a Redis outage degrades them as docs/security.md says, without a restart."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, start_server, wait_until
from tests.redis_server import RedisServer, free_port, redis_server  # noqa: F401
from vibetunnel.auth import TokenService
from vibetunnel.auth.proof import b64url, make_proof

PASSWORD = "correct horse battery staple"
SECRET = secrets.token_urlsafe(48)
ENV = {"VIBETUNNEL_JWT_SECRET": SECRET, "VIBETUNNEL_PASSWORD": PASSWORD}


def access(sub: str) -> str:
    return TokenService(SECRET.encode()).issue(sub, 600)


def start_pair(tmp_path: Path, url: str, rate: int) -> list[RunningServer]:
    nodes: list[RunningServer] = []
    try:
        for name in ("a", "b"):
            nodes.append(
                start_server(
                    tmp_path / name,
                    "--redis",
                    url,
                    "--node",
                    name,
                    "--rate-limit",
                    str(rate),
                    env=ENV,
                )
            )
    except BaseException:
        stop_all(nodes)
        raise
    return nodes


def stop_all(nodes: list[RunningServer]) -> None:
    pids = [n.process.pid for n in nodes if n.process is not None]
    for n in nodes:
        n.stop()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), f"server {pid} left running"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@pytest.fixture
def pair(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[RunningServer]]:  # noqa: F811
    nodes = start_pair(tmp_path, redis_server.url, rate=5)
    try:
        yield nodes
    finally:
        stop_all(nodes)


def login(srv: RunningServer) -> httpx.Response:
    with srv.client() as c:
        return c.post("/api/auth/login", json={"password": PASSWORD})


def refresh(srv: RunningServer, token: str) -> httpx.Response:
    with srv.client() as c:
        return c.post("/api/auth/refresh", json={"refreshToken": token})


def test_a_rate_limit_spent_on_a_is_spent_on_b(pair: list[RunningServer]) -> None:
    a, b = pair
    t = access("tester")
    with a.client(t) as on_a, b.client(t) as on_b:
        remaining = []
        for client in (on_a, on_b, on_a, on_b, on_a):
            r = client.get("/api/sessions")
            assert r.status_code == 200, r.text
            remaining.append(int(r.headers["x-ratelimit-remaining"]))
        assert remaining == [4, 3, 2, 1, 0]
        for client in (on_b, on_a):
            r = client.get("/api/sessions")
            assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
    with b.client(access("someone-else")) as other:
        assert other.get("/api/sessions").status_code == 200


def test_a_refresh_token_spent_on_a_is_spent_on_b(pair: list[RunningServer]) -> None:
    a, b = pair
    first = login(a).json()
    r = refresh(a, first["refreshToken"])
    assert r.status_code == 200
    second = r.json()["refreshToken"]
    r = refresh(b, first["refreshToken"])  # a replay, on the other node
    assert r.status_code == 401 and "reused" in r.json()["error"]["message"]
    r = refresh(b, second)  # the family is revoked: its newest token too, on both nodes
    assert r.status_code == 401
    assert refresh(a, second).status_code == 401


def test_a_browsers_sign_in_needs_its_key_on_every_node(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """The device key is kept with the family in Redis: the cookie replayed alone at another
    node yields nothing and changes nothing, and the proof works there as on the first."""
    key = b64url(secrets.token_bytes(32))

    def proof(node: RunningServer, purpose: str) -> dict[str, str]:
        with node.client() as c:
            nonce = c.post("/api/auth/nonce").json()["nonce"]
        return {"X-Refresh-Nonce": nonce, "X-Refresh-Proof": make_proof(key, nonce, purpose)}

    def with_cookie(node: RunningServer, cookie: str) -> httpx.Client:
        return httpx.Client(base_url=node.url, headers={"Cookie": f"vibetunnel_refresh={cookie}"})

    nodes = start_pair(tmp_path, redis_server.url, rate=1000)
    try:
        a, b = nodes
        with a.client() as on_a:
            r = on_a.post("/api/auth/login", json={"password": PASSWORD, "deviceKey": key})
            assert r.status_code == 200
            cookie = r.json()["refreshToken"]
        with with_cookie(b, cookie) as on_b:
            assert on_b.post("/api/auth/refresh").status_code == 401
            assert on_b.post("/api/auth/logout").status_code == 401
            r = on_b.post("/api/auth/refresh", headers=proof(a, "refresh"))  # a's nonce, on b
            assert r.status_code == 200, r.text
            assert "vibetunnel_refresh=" in r.headers["set-cookie"]
            cookie = r.json()["refreshToken"]
        with with_cookie(a, cookie) as on_a:
            assert on_a.post("/api/auth/logout", headers=proof(b, "logout")).status_code == 204
        with b.client() as on_b:
            r = on_b.post("/api/auth/refresh", json={"refreshToken": cookie})
            assert r.status_code == 401  # logged out on a: gone on b
    finally:
        stop_all(nodes)


def test_the_login_link_works_once_across_nodes(pair: list[RunningServer]) -> None:
    a, b = pair
    assert a.login_url is not None
    one_time = a.login_url.split("login=", 1)[1]
    with b.client() as c:
        assert c.post("/api/auth/exchange", json={"loginToken": one_time}).status_code == 200
    with a.client() as c:
        r = c.post("/api/auth/exchange", json={"loginToken": one_time})
        assert r.status_code == 401 and "already used" in r.json()["error"]["message"]


def test_redis_outage_local_limits_and_503_then_recovery(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    folder.mkdir()
    password = "pw-" + secrets.token_hex(8)
    redis = RedisServer(port=free_port(), folder=folder, password=password).start()
    nodes: list[RunningServer] = []
    try:
        nodes = start_pair(tmp_path, redis.url, rate=5)
        a, b = nodes
        pair = login(a).json()
        redis.stop()

        # Rate limits: this node's own count, from zero; nothing is refused for Redis's sake.
        t = access("in-the-outage")
        with a.client(t) as on_a, b.client(t) as on_b:
            assert [on_a.get("/api/sessions").status_code for _ in range(6)] == [200] * 5 + [429]
            assert on_b.get("/api/sessions").status_code == 200  # b counts on its own

        # Refresh tokens: 503, not a guess.
        for r in (refresh(a, pair["refreshToken"]), login(b)):
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "cluster_unavailable"
            assert "requestId" in r.json()["error"]

        # One warning per outage and node, naming host:port, never the password.
        for node in nodes:
            wait_until(lambda n=node: _count(n, "unreachable") == 1, what="the outage warning")

        redis.start()  # empty: tokens issued before are lost, as with any Redis that restarts
        for node in nodes:
            with node.client() as c:
                # A page only peeks at the limiter: it lets the node find Redis again.
                wait_until(
                    lambda c=c, n=node: c.get("/").status_code and _count(n, "reachable again"),
                    what="the node to reach Redis again",
                )
        r = login(b)
        assert r.status_code == 200, r.text
        r = refresh(a, r.json()["refreshToken"])
        assert r.status_code == 200, r.text
        assert refresh(b, pair["refreshToken"]).status_code == 401  # lost with Redis's data
        for node in nodes:
            assert _count(node, "unreachable") == 1
            assert f"127.0.0.1:{redis.port}" in "".join(node.output)
    finally:
        stop_all(nodes)
        redis.stop()
    for node in nodes:
        assert password not in "".join(node.output)


def _count(srv: RunningServer, text: str) -> int:
    return sum(text in line for line in list(srv.output))
