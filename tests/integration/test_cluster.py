"""Three nodes and one real redis-server on loopback (docs/cluster.md)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import UNIT, RunningServer, processes_of, start_server, wait_until
from tests.integration.test_vt import ECHO, Terminal, vt_env
from tests.integration.wsclient import TermClient
from tests.redis_server import RedisServer, free_port, redis_server  # noqa: F401

NAMES = ("alpha", "beta", "gamma")
TTL = "2"


@dataclass
class Cluster:
    redis: RedisServer
    nodes: dict[str, RunningServer]

    def api(self, name: str) -> httpx.Client:
        return self.nodes[name].client()

    def start(self, name: str, home: Path) -> RunningServer:
        args = ("--no-auth", "--rate-limit", "100000", "--redis", self.redis.url)
        args += ("--node", name, "--node-ttl", TTL)
        server = start_server(home, *args)
        self.nodes[name] = server
        return server


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[Cluster]:  # noqa: F811
    c = Cluster(redis_server, {})
    try:
        for name in NAMES:
            c.start(name, tmp_path / name)
        for name in NAMES:  # every node sees the two others
            with c.api(name) as api:
                wait_until(
                    lambda api=api: sum(n["online"] for n in api.get("/api/nodes").json()) == 3,
                    what=f"{name} to see three nodes online",
                )
        yield c
    finally:
        for server in c.nodes.values():
            server.stop()
        for server in c.nodes.values():
            assert processes_of(server.home) == [], "nothing of a node is left running"


def make(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def test_every_node_lists_every_session_with_its_node(cluster: Cluster) -> None:
    with cluster.api("alpha") as a, cluster.api("beta") as b, cluster.api("gamma") as g:
        made = make(a, command="cat")
        assert made["node"] == "alpha"
        for api in (b, g):
            listed = wait_until(
                lambda api=api: {s["id"]: s for s in api.get("/api/sessions").json()}.get(
                    made["id"]
                ),
                what="the session on the other nodes",
            )
            assert listed["node"] == "alpha"
            assert api.get(f"/api/sessions/{made['id']}").json()["node"] == "alpha"
        nodes = {n["name"]: n for n in b.get("/api/nodes").json()}
        assert set(nodes) == set(NAMES)
        assert list(nodes)[0] == "beta"  # the node asked comes first
        assert b.get("/api/health").json()["cluster"] == "ok"


async def test_a_session_on_one_node_driven_from_the_two_others(cluster: Cluster) -> None:
    with cluster.api("alpha") as a, cluster.api("beta") as b, cluster.api("gamma") as g:
        made = make(a, command="cat")
        sid = made["id"]
        wait_until(lambda: b.get(f"/api/sessions/{sid}").status_code == 200, what="listing")
        wait_until(lambda: g.get(f"/api/sessions/{sid}").status_code == 200, what="listing")
        viewer = await TermClient.connect(f"{cluster.nodes['beta'].ws_url}/api/sessions/{sid}/ws")
        other = await TermClient.connect(f"{cluster.nodes['gamma'].ws_url}/api/sessions/{sid}/ws")
        await viewer.type("from-beta\r")
        await viewer.see("from-beta")
        await other.see("from-beta")
        # Viewers through the other nodes count, on every node.
        for api in (a, b, g):
            wait_until(
                lambda api=api: api.get(f"/api/sessions/{sid}").json()["clients"] == 2,
                what="two remote viewers counted",
            )
        assert (
            g.post(f"/api/sessions/{sid}/input", json={"data": "from-gamma\r"}).status_code == 204
        )
        await viewer.see("from-gamma")
        resized = g.post(f"/api/sessions/{sid}/resize", json={"cols": 100, "rows": 30})
        assert resized.status_code == 200 and resized.json()["cols"] == 100
        assert a.get(f"/api/sessions/{sid}").json()["cols"] == 100
        renamed = b.patch(f"/api/sessions/{sid}", json={"name": "shared"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "shared"
        # Errors come back as the owner gave them.
        bad = b.post(f"/api/sessions/{sid}/resize", json={"cols": 0, "rows": 30})
        assert bad.status_code == 400
        assert b.delete(f"/api/sessions/{sid}").status_code == 204
        assert await viewer.closed() == (1000, "session ended")
        assert await other.closed() == (1000, "session ended")
        assert a.get(f"/api/sessions/{sid}").status_code == 404
        wait_until(lambda: b.get(f"/api/sessions/{sid}").status_code == 404, what="gone on beta")
        # Its output stream outlives it a while (late mirrors see its end), then expires.
        with redis.Redis.from_url(cluster.redis.url) as r:
            wait_until(lambda: 0 < r.ttl(f"vt:out:{sid}") <= 3600, what="the stream's expiry")
        missing = b.post(f"/api/sessions/{sid}/input", json={"data": "x"})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "session_not_found"


def test_create_on_a_chosen_node(cluster: Cluster) -> None:
    with cluster.api("beta") as b, cluster.api("gamma") as g:
        made = make(b, command="cat", node="gamma")
        assert made["node"] == "gamma"
        assert g.get(f"/api/sessions/{made['id']}").json()["node"] == "gamma"
        unknown = b.post("/api/sessions", json={"command": "cat", "node": "nowhere"})
        assert unknown.status_code == 400
        assert "nowhere" in unknown.json()["error"]["message"]
        failed = b.post("/api/sessions", json={"command": "/no/such/program", "node": "gamma"})
        assert failed.status_code == 400
        assert "not found" in failed.json()["error"]["message"]


async def test_exited_remote_session_replays_then_ends(cluster: Cluster) -> None:
    with cluster.api("alpha") as a, cluster.api("beta") as b:
        made = make(a, command="sh", args=["-c", "echo done-here; exit 3"])
        sid = made["id"]
        wait_until(
            lambda: (b.get(f"/api/sessions/{sid}").json() or {}).get("status") == "exited",
            what="the exit on beta",
        )
        viewer = await TermClient.connect(f"{cluster.nodes['beta'].ws_url}/api/sessions/{sid}/ws")
        await viewer.see("done-here")
        assert await viewer.closed() == (1000, "session ended")
        assert {"type": "exit", "code": 3} in viewer.messages


def numbers(text: str, word: str) -> list[int]:
    return [int(n) for n in re.findall(rf"{word}-(\d+)\r?\n", text)]


async def test_a_gateway_killed_mid_stream_loses_nothing(cluster: Cluster) -> None:
    count = 300
    script = f"i=0; while [ $i -lt {count} ]; do i=$((i+1)); echo line-$i; sleep 0.01; done; cat"
    with cluster.api("alpha") as a, cluster.api("beta") as b, cluster.api("gamma") as g:
        sid = make(a, command="sh", args=["-c", script])["id"]
        for api in (b, g):
            wait_until(lambda api=api: api.get(f"/api/sessions/{sid}").status_code == 200)
    viewer = await TermClient.connect(f"{cluster.nodes['beta'].ws_url}/api/sessions/{sid}/ws")
    await viewer.until(lambda c: len(numbers(c.output, "line")) >= 20, what="some lines")
    cluster.nodes["beta"].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    code, _ = await viewer.closed()
    assert code == 1006  # no close frame: the gateway is gone
    seen_before = numbers(viewer.output, "line")
    assert seen_before[-1] < count, "the gateway died before the end of the output"
    again = await TermClient.connect(f"{cluster.nodes['gamma'].ws_url}/api/sessions/{sid}/ws")
    await again.until(lambda c: f"line-{count}\r\n" in c.output, timeout=15 * UNIT)
    # The replay and what followed it: every line once, in order, none missing.
    assert numbers(again.output, "line") == list(range(1, count + 1))


async def test_a_node_killed_is_offline_then_back(cluster: Cluster) -> None:
    alpha = cluster.nodes["alpha"]
    with cluster.api("alpha") as a:
        sid = make(a, command="cat")["id"]
    with cluster.api("beta") as b:
        wait_until(lambda: b.get(f"/api/sessions/{sid}").status_code == 200)
        viewer = await TermClient.connect(f"{cluster.nodes['beta'].ws_url}/api/sessions/{sid}/ws")
        await viewer.type("before\r")
        await viewer.see("before")
        alpha.stop(signal.SIGKILL, keep_sessions=True)  # its keeper runs the program on
        nodes = wait_until(
            lambda: {n["name"]: n for n in b.get("/api/nodes").json() if not n["online"]},
            timeout=10 * UNIT,
            what="alpha reported offline",
        )
        assert set(nodes) == {"alpha"}
        # Its session stays listed, on an offline node; orders for it say so.
        assert b.get(f"/api/sessions/{sid}").json()["node"] == "alpha"
        refused = b.post(f"/api/sessions/{sid}/input", json={"data": "x"})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "node_offline"
        assert (await viewer.closed())[0] == 1001
        late = await TermClient.connect(f"{cluster.nodes['beta'].ws_url}/api/sessions/{sid}/ws")
        assert await late.closed() == (1001, "node alpha is offline")
        alpha.start()  # same home, same port: the program is still there
        wait_until(
            lambda: all(n["online"] for n in b.get("/api/nodes").json()),
            timeout=10 * UNIT,
            what="alpha back online",
        )
        back = await TermClient.connect(f"{cluster.nodes['beta'].ws_url}/api/sessions/{sid}/ws")
        await back.see("before")  # the replay
        await back.type("after\r")
        await back.see("after")


async def test_redis_restarted_under_load(cluster: Cluster) -> None:
    script = "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.02; done"
    with cluster.api("alpha") as a, cluster.api("beta") as b:
        sid = make(a, command="sh", args=["-c", script])["id"]
        wait_until(lambda: b.get(f"/api/sessions/{sid}").status_code == 200)
        local = await TermClient.connect(f"{cluster.nodes['alpha'].ws_url}/api/sessions/{sid}/ws")
        remote = await TermClient.connect(f"{cluster.nodes['beta'].ws_url}/api/sessions/{sid}/ws")
        await remote.until(lambda c: len(numbers(c.output, "tick")) > 5, what="ticks on beta")
        cluster.redis.stop(kill=True)
        wait_until(
            lambda: a.get("/api/health").json()["cluster"] == "degraded",
            timeout=10 * UNIT,
            what="alpha to say degraded",
        )
        # Alone, alpha still serves its own session: new output, and a new session.
        mark = await local.until(lambda c: max(numbers(c.output, "tick"), default=0))
        await local.until(lambda c: max(numbers(c.output, "tick")) > mark + 5, what="ticks")
        make(a, command="cat")
        assert all(n["online"] is False for n in a.get("/api/nodes").json()[1:])
        cluster.redis.start()  # empty: everything is said again
        for name in NAMES:
            with cluster.api(name) as api:
                wait_until(
                    lambda api=api: (
                        api.get("/api/health").json()["cluster"] == "ok"
                        and sum(n["online"] for n in api.get("/api/nodes").json()) == 3
                    ),
                    timeout=15 * UNIT,
                    what=f"{name} to rejoin",
                )
        wait_until(lambda: len(b.get("/api/sessions").json()) == 2, what="both sessions on beta")
        mark = await local.until(lambda c: max(numbers(c.output, "tick")))
        await remote.until(
            lambda c: max(numbers(c.output, "tick")) > mark, timeout=15 * UNIT, what="live again"
        )
        assert not remote.messages  # never closed: it went on after a resync


def test_the_redis_password_never_shows(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    folder.mkdir()
    secret = "pw-" + "s3cr3t" * 4
    redis = RedisServer(port=free_port(), folder=folder, password=secret).start()
    env = {"VIBETUNNEL_REDIS_URL": redis.url}
    args = ("--no-auth", "--rate-limit", "100000", "--node-ttl", "2", "-v")
    server = start_server(tmp_path / "home", *args, env=env)
    try:
        with server.client() as api:
            wait_until(lambda: api.get("/api/health").json()["cluster"] == "ok", what="joined")
            assert secret not in (Path(f"/proc/{server.process.pid}/cmdline").read_text())  # type: ignore[union-attr]
            redis.stop(kill=True)
            wait_until(lambda: api.get("/api/health").json()["cluster"] == "degraded")
            redis.start()
            wait_until(lambda: api.get("/api/health").json()["cluster"] == "ok", what="rejoined")
        log = "".join(server.output)
        assert f"Redis at 127.0.0.1:{redis.port} unreachable" in log
        assert "reachable again" in log
        assert secret not in log
    finally:
        server.stop()
        redis.stop()


def test_without_redis_one_node_and_no_cluster(server: RunningServer) -> None:
    with server.client() as api:
        health = api.get("/api/health").json()
        assert health["cluster"] is None and health["node"]
        nodes = api.get("/api/nodes").json()
        assert [(n["name"], n["online"]) for n in nodes] == [(health["node"], True)]
        made = make(api, command="cat", node=health["node"])
        assert made["node"] == health["node"]
        other = api.post("/api/sessions", json={"command": "cat", "node": "elsewhere"})
        assert other.status_code == 400
        assert "not in a cluster" in other.json()["error"]["message"]


async def test_vt_registers_with_its_node_and_is_seen_from_the_others(cluster: Cluster) -> None:
    term = Terminal()
    try:
        alpha = cluster.nodes["alpha"]
        term.run(["--name", "from-vt", "sh", "-c", ECHO], vt_env(alpha.home))
        term.expect("hello-42")
        with cluster.api("beta") as b:
            found = wait_until(
                lambda: next(
                    (s for s in b.get("/api/sessions").json() if s["name"] == "from-vt"), None
                ),
                what="the vt session on beta",
            )
        assert found["node"] == "alpha"
        viewer = await TermClient.connect(
            f"{cluster.nodes['beta'].ws_url}/api/sessions/{found['id']}/ws"
        )
        await viewer.see("hello-42")
        await viewer.type("via-beta\r")
        term.expect("got:via-beta")
        term.type("\x04")
        assert term.wait() == 7
        assert await viewer.closed() == (1000, "session ended")
    finally:
        term.close()


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "a/b"])
def test_a_bad_node_name_is_refused(tmp_path: Path, name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vibetunnel", "serve", "--port", "0"]
        + ["--redis", "redis://127.0.0.1:1/0", "--node", name],
        env={**os.environ, "VIBETUNNEL_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
    )
    assert done.returncode == 2
    assert "--node must be 1 to 64 letters" in done.stderr
