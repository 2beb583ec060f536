"""Three nodes and one real redis-server on loopback (docs/cluster.md)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import UNIT, RunningServer, start_server, wait_until
from tests.integration.wsclient import TermClient
from tests.redis_server import RedisServer, redis_server  # noqa: F401

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
        assert g.post(f"/api/sessions/{sid}/input", json={"data": "from-gamma\r"}).status_code == 204
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
