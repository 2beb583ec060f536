"""Two nodes and a real redis-server: what a node reads back from Redis is checked (junk is
skipped with one log line, and nothing stops), and a node that has just started answers for
the other's sessions at once (docs/cluster.md)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import UNIT, RunningServer, processes_of, start_server, wait_until
from tests.integration.wsclient import TermClient
from tests.redis_server import HoldingProxy, RedisServer, redis_server  # noqa: F401
from tests.unit.protocol.test_sessions import listed
from vibetunnel.cluster.node import FIRST_REFRESH

TTL = "30"
"""Seconds: each node's own refresh comes every 10 s, so what a test writes to Redis without
announcing it is seen at once only by a node that asks."""


@dataclass
class Two:
    redis: RedisServer
    nodes: dict[str, RunningServer]

    def api(self, name: str) -> httpx.Client:
        return self.nodes[name].client()

    def ws(self, name: str, session_id: str) -> str:
        return f"{self.nodes[name].ws_url}/api/sessions/{session_id}/ws"

    def log(self, name: str, word: str) -> list[str]:
        return [line for line in self.nodes[name].output if word in line]


@pytest.fixture
def two(tmp_path: Path, redis_server: RedisServer) -> Iterator[Two]:  # noqa: F811
    c = Two(redis_server, {})
    try:
        for name in ("alpha", "beta"):
            args = ("--no-auth", "--rate-limit", "100000", "--redis", redis_server.url)
            c.nodes[name] = start_server(tmp_path / name, *args, "--node", name, "--node-ttl", TTL)
        for name in c.nodes:
            with c.api(name) as api:
                wait_until(
                    lambda api=api: sum(n["online"] for n in api.get("/api/nodes").json()) == 2,
                    what=f"{name} to see both nodes online",
                )
        yield c
    finally:
        for server in c.nodes.values():
            server.stop()
        for server in c.nodes.values():
            assert processes_of(server.home) == []


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:  # noqa: F811
    with redis.Redis.from_url(redis_server.url) as client:
        yield client


def make(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def ids(api: httpx.Client) -> set[str]:
    response = api.get("/api/sessions")
    assert response.status_code == 200, response.text
    return {s["id"] for s in response.json()}


def of_delta(session_id: str, **changes: Any) -> dict[str, Any]:
    """A session as a node `delta` (written here, not running) would list it."""
    return listed(**{"id": session_id, "node": "delta", "status": "running", **changes})


def test_junk_in_the_lists_is_skipped_once_and_the_refresh_goes_on(
    two: Two, r: redis.Redis
) -> None:
    now = time.time()
    good = of_delta("delta-good")
    junk_lists = {
        "no-id": json.dumps({k: v for k, v in of_delta("no-id").items() if k != "id"}),
        "not-json": "{",
        "too-wide": json.dumps(of_delta("too-wide", cols=10**9)),
        "zombie": json.dumps(of_delta("zombie", status="zombie")),
        "of-alpha": json.dumps(of_delta("of-alpha", node="alpha")),
        "misfiled": json.dumps(of_delta("filed-elsewhere")),
        "created-never": json.dumps(of_delta("created-never", createdAt=1e20)),
    }
    with two.api("alpha") as a, two.api("beta") as b:
        first = make(a, command="cat")
        wait_until(lambda: first["id"] in ids(b), what="alpha's session on beta")
        r.hset("vt:sessions:delta", mapping={"delta-good": json.dumps(good), **junk_lists})
        r.set("vt:alive:delta", "an-epoch")
        r.set("vt:sessions:epsilon", "a string, not a hash")
        r.hset(
            "vt:nodes",
            mapping={
                "delta": json.dumps({"lastSeen": now, "sessions": 1}),
                "epsilon": json.dumps({"lastSeen": now}),
                "junk-1": "not json",
                "junk-2": json.dumps({"lastSeen": "yesterday"}),
                "junk-3": json.dumps({"lastSeen": float("inf")}),
                "not a name": json.dumps({"lastSeen": now}),
                b"\xff\xfe": json.dumps({"lastSeen": now}),
            },
        )
        r.publish("vt:changes", "delta")
        wait_until(lambda: "delta-good" in ids(b), what="delta's good session on beta")
        assert ids(b) == {first["id"], "delta-good"}
        assert b.get("/api/sessions/delta-good").json()["node"] == "delta"
        for junk in junk_lists:
            assert b.get(f"/api/sessions/{junk}").status_code == 404
        # Asked of Redis past every node's list, epsilon's of the wrong type included.
        assert b.get("/api/sessions/on-no-node").status_code == 404
        nodes = b.get("/api/nodes")
        assert nodes.status_code == 200
        assert {n["name"] for n in nodes.json()} == {"alpha", "beta", "delta", "epsilon"}
        for _ in range(3):  # more refreshes read the same junk: nothing more is said
            r.publish("vt:changes", "delta")
        second = make(a, command="cat")  # the refresh task did not stop
        wait_until(lambda: second["id"] in ids(b), what="a session made after the junk")
        r.publish("vt:changes", "delta")
        third = make(a, command="cat")
        wait_until(lambda: third["id"] in ids(b), what="one more, after more refreshes")
    lines = two.log("beta", "skipped")
    expected = len(junk_lists) + 1 + 3 + 2  # the lists, epsilon's, three values, two names
    assert len(lines) == expected, "".join(lines)
    assert len(two.log("alpha", "skipped")) == expected  # alpha is a gateway too
    assert not two.log("beta", "Traceback")


async def test_junk_in_a_stream_and_in_an_order_queue_is_skipped(two: Two, r: redis.Redis) -> None:
    with two.api("alpha") as a, two.api("beta") as b:
        # One write per line typed, and nothing else: the stream is still between lines.
        script = "stty -echo; echo ready; while read l; do echo got-$l; done"
        sid = make(a, command="sh", args=["-c", script])["id"]
        wait_until(lambda: b.get(f"/api/sessions/{sid}").status_code == 200, what="listed")
        viewer = await TermClient.connect(two.ws("beta", sid))
        await viewer.see("ready")
        await viewer.type("one\r")
        await viewer.see("got-one")
        stream = f"vt:out:{sid}"
        ((_, last),) = r.xrevrange(stream, count=1)  # alpha's last: got-one
        r.xadd(stream, {"junk": "1"})
        r.xadd(stream, {"e": "x", "n": "not a number", "o": "junk output"})
        # An exit with the right epoch and the next counter, but no code: the real entry of
        # that number, when alpha writes it, is still taken.
        r.xadd(stream, {"e": last[b"e"], "n": int(last[b"n"]) + 1, "x": "not a code"})
        orders = [
            "not json",
            "[1, 2]",
            json.dumps({"op": "input"}),
            json.dumps({"op": "resize", "id": sid, "cols": "x", "rows": 5}),
            json.dumps({"op": "create", "options": {"shell": "sh"}, "reply": "tok1"}),
            json.dumps({"op": "create", "options": {"cols": "80"}, "reply": "tok2"}),
        ]
        r.rpush("vt:ctl:alpha", *orders)
        refused = r.blpop(["vt:reply:tok1"], timeout=round(5 * UNIT))
        assert refused is not None
        error = json.loads(refused[1])["error"]
        assert error["code"] == "bad_request" and "create: options" in error["message"]
        failed = r.blpop(["vt:reply:tok2"], timeout=round(5 * UNIT))
        assert failed is not None  # checked by the manager, as a POST would be
        assert json.loads(failed[1])["error"]["message"].startswith("cols must be an integer")
        # The mirror and the order queue went on: typed through beta, echoed through beta.
        await viewer.type("two\r")
        await viewer.see("got-two")
        assert b.post(f"/api/sessions/{sid}/input", json={"data": "three\r"}).status_code == 204
        await viewer.see("got-three")
        assert viewer.messages == []  # no exit, never closed
        assert b.get(f"/api/sessions/{sid}").json()["status"] == "running"
    stream_lines = two.log("beta", f"an entry of {stream} skipped")  # read before got-two
    assert len(stream_lines) == 2, stream_lines  # one per problem, however many entries
    assert "an entry without its epoch and counter" in stream_lines[0]
    assert "an exit without an exit code" in stream_lines[1]
    assert not two.log("beta", "output was lost")  # the junk was no gap: no resync
    order_lines = wait_until(
        lambda: len(two.log("alpha", "an order skipped")) == 5 and two.log("alpha", "an order"),
        what="alpha's lines",
    )
    assert len(order_lines) == 5, order_lines  # tok2's order was well formed: answered 400
    assert not two.log("alpha", "Traceback")


def node(home: Path, name: str, url: str) -> RunningServer:
    args = ("--no-auth", "--rate-limit", "100000", "--redis", url, "--node", name)
    return start_server(home, *args, "--node-ttl", TTL)


@dataclass
class Far(Two):
    proxy: HoldingProxy


@pytest.fixture
def far(tmp_path: Path, redis_server: RedisServer) -> Iterator[Far]:  # noqa: F811
    """alpha, and beta whose Redis is reached through a proxy that can hold an answer."""
    c = Far(redis_server, {}, HoldingProxy(redis_server.port))
    try:
        c.nodes["alpha"] = node(tmp_path / "alpha", "alpha", redis_server.url)
        c.nodes["beta"] = node(tmp_path / "beta", "beta", c.proxy.url())
        with c.api("beta") as b:
            wait_until(
                lambda: sum(n["online"] for n in b.get("/api/nodes").json()) == 2,
                what="beta to see both nodes online",
            )
        yield c
    finally:
        for server in c.nodes.values():
            server.stop()
        c.proxy.close()
        for server in c.nodes.values():
            assert processes_of(server.home) == []


async def test_a_node_just_restarted_answers_for_the_others_at_once(
    far: Far, r: redis.Redis
) -> None:
    with far.api("alpha") as a:
        sid = make(a, command="cat")["id"]
        assert a.post(f"/api/sessions/{sid}/input", json={"data": "before\r"}).status_code == 204
    with far.api("beta") as b:
        wait_until(lambda: b.get(f"/api/sessions/{sid}").status_code == 200, what="listed")
    # beta's first look at the other nodes is held on its way: while it is, beta must not
    # answer (its list would lack alpha's session); once it is in, beta answers in full.
    far.proxy.hold_next(b"HGETALL\r\n$8\r\nvt:nodes")
    far.nodes["beta"].restart()
    listed: list[set[str]] = []

    def ask() -> None:
        with far.api("beta") as b:
            listed.append(ids(b))

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()  # right after the listening line
    assert far.proxy.holding.wait(10 * UNIT), "beta never looked at the other nodes"
    asking.join(FIRST_REFRESH / 2)  # an answer now would be one without alpha's session
    far.proxy.release()
    asking.join(10 * UNIT)
    assert listed == [{sid}]
    with far.api("beta") as b:
        assert b.get(f"/api/sessions/{sid}").status_code == 200
    viewer = await TermClient.connect(far.ws("beta", sid))
    await viewer.see("before")
    await viewer.type("after\r")
    await viewer.see("after")
    with far.api("alpha") as a, far.api("beta") as b:
        made = make(a, command="cat")  # asked through beta as soon as alpha has published it
        wait_until(lambda: r.hexists("vt:sessions:alpha", made["id"]), what="alpha's list")
        assert b.get(f"/api/sessions/{made['id']}").status_code == 200
        # Deleted through beta: alpha's list may hold it a moment more, and beta does not
        # ask Redis of it again (it would learn it back).
        assert b.delete(f"/api/sessions/{made['id']}").status_code == 204
        assert b.get(f"/api/sessions/{made['id']}").status_code == 404
        assert made["id"] not in ids(b)


@pytest.fixture
def beta(tmp_path: Path, redis_server: RedisServer, r: redis.Redis) -> Iterator[RunningServer]:  # noqa: F811
    """One node, beta, and a node delta that Redis lists (offline, two sessions) but that
    beta has not heard of: written after its start and not announced, while its own refresh
    is 10 s away. Only asking Redis finds them."""
    args = ("--no-auth", "--rate-limit", "100000", "--redis", redis_server.url)
    server = start_server(tmp_path / "beta", *args, "--node", "beta", "--node-ttl", TTL)
    try:
        with server.client() as api:
            wait_until(lambda: api.get("/api/health").json()["cluster"] == "ok", what="joined")
        r.hset("vt:nodes", "delta", json.dumps({"lastSeen": time.time()}))
        late = ("late-http", "late-ws")
        r.hset("vt:sessions:delta", mapping={s: json.dumps(of_delta(s)) for s in late})
        yield server
    finally:
        server.stop()
        assert processes_of(server.home) == []


def test_an_id_not_heard_of_yet_is_asked_of_redis(beta: RunningServer) -> None:
    with beta.client() as b:
        found = b.get("/api/sessions/late-http")
        assert found.status_code == 200, found.text
        assert (found.json()["id"], found.json()["node"]) == ("late-http", "delta")
        assert "late-http" in ids(b)  # learned
        nowhere = "00000000-0000-4000-8000-000000000000"
        assert b.get(f"/api/sessions/{nowhere}").status_code == 404
        assert b.post(f"/api/sessions/{nowhere}/input", json={"data": "x"}).status_code == 404


async def test_a_websocket_to_an_id_not_heard_of_yet_asks_redis(beta: RunningServer) -> None:
    ws = f"{beta.ws_url}/api/sessions"
    late = await TermClient.connect(f"{ws}/late-ws/ws")
    assert await late.closed() == (1001, "node delta is offline")  # found, not "not found"
    missing = await TermClient.connect(f"{ws}/00000000-0000-4000-8000-000000000000/ws")
    assert await missing.closed() == (1000, "session not found")
