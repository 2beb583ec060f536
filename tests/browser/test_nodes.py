"""The session list and the "New session" form with nodes (a cluster of servers sharing Redis).

Three levels: a single real server (no grouping chrome, GET /api/nodes answered or absent);
a real server whose node list and session list a route makes a cluster of three (the grouping,
the offline marks and the picker, on a desktop and a phone); and two real nodes on a real
redis-server, which needs the cluster backend (skipped until `vibetunnel.cluster` exists).
"""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    MS,
    PASSWORD,
    access_token,
    create_session,
    expect,
    page_wait,
    screenshot,
    status,
)
from tests.browser.test_pages import axe_violations
from tests.browser.test_phone import PHONE, no_horizontal_scroll
from tests.conftest import UNIT, RunningServer, start_server, wait_until
from tests.redis_server import RedisServer, redis_server  # noqa: F401  (a fixture)

CLUSTER_READY = importlib.util.find_spec("vibetunnel.cluster") is not None

NODES = re.compile(r"/api/nodes$")
SESSIONS = re.compile(r"/api/sessions$")
EVENTS = re.compile(r"/api/sessions/events(\?|$)")


def groups(page: Any) -> Any:
    return page.locator("section.node-group")


def test_single_server_shows_no_node_chrome(server: RunningServer, page: Any) -> None:
    """One server: the page looks as it always did, whatever GET /api/nodes answers."""
    nodes_answers: list[int] = []
    posts: list[dict[str, Any]] = []
    page.on("response", lambda r: nodes_answers.append(r.status) if NODES.search(r.url) else None)
    page.on(
        "request",
        lambda r: (
            posts.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and SESSIONS.search(r.url)
            else None
        ),
    )
    with server.client() as api:
        made = create_session(api, name="lonely")
    page.goto(server.url)
    card = page.locator(f"li[data-id='{made['id']}']")
    expect(card).to_contain_text("lonely")
    # The node list was asked for (404 from a server without clusters, one node from one with).
    page_wait(page, lambda: bool(nodes_answers), 10 * UNIT, "GET /api/nodes")
    assert nodes_answers[0] in (200, 404), nodes_answers
    expect(page.get_by_role("list", name="Sessions")).to_be_visible()
    expect(groups(page)).to_have_count(0)
    expect(card).not_to_have_class(re.compile(r"\boffline\b"))
    expect(card.get_by_role("button", name="Kill")).to_be_visible()

    page.get_by_role("button", name="New session").click()
    expect(page.get_by_label("Command")).to_be_visible()
    expect(page.get_by_label("Node")).to_be_hidden()
    page.get_by_label("Name", exact=True).fill("from-form")
    page.get_by_role("button", name="Create").click()
    expect(status(page)).to_have_text("Connected")
    assert len(posts) == 1 and "node" not in posts[0], posts


def session_json(sid: str, name: str, node: str, created: str) -> dict[str, Any]:
    return {
        "id": sid,
        "name": name,
        "command": "/bin/sh",
        "args": [],
        "cwd": "/tmp",
        "cols": 80,
        "rows": 24,
        "status": "running",
        "exitCode": None,
        "pid": 4242,
        "createdAt": created,
        "exitedAt": None,
        "clients": 0,
        "node": node,
    }


CLUSTER_SESSIONS = [
    session_json("a1", "alpha-old", "alpha", "2024-01-01T00:00:01Z"),
    session_json("a2", "alpha-new", "alpha", "2024-01-01T00:00:02Z"),
    session_json("b1", "beta-job", "beta", "2024-01-01T00:00:03Z"),
]
CLUSTER_NODES = [
    {"name": "gamma", "online": True, "sessions": 0, "lastSeen": "2024-01-01T00:00:00Z"},
    {"name": "beta", "online": False, "sessions": 1, "lastSeen": "2024-01-01T00:00:00Z"},
    {"name": "alpha", "online": True, "sessions": 2, "lastSeen": "2024-01-01T00:00:00Z"},
]


class FakeCluster:
    """Routes that turn one real server into node "alpha" of three, as its page sees it."""

    def __init__(self, page: Any) -> None:
        self.nodes: list[dict[str, Any]] = [CLUSTER_NODES[2]]
        self.sessions = [s for s in CLUSTER_SESSIONS if s["node"] == "alpha"]
        self.nodes_asked = 0
        self.posts: list[dict[str, Any]] = []
        page.route(NODES, self.answer_nodes)
        page.route(SESSIONS, self.answer_sessions)
        page.route(EVENTS, self.answer_events)

    def answer_events(self, route: Any) -> None:
        # The live list: one event with the list, then the stream ends (the page reconnects).
        route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"},
            body=f"data: {json.dumps(self.sessions)}\n\n",
        )

    def answer_nodes(self, route: Any) -> None:
        self.nodes_asked += 1
        route.fulfill(status=200, json=self.nodes)

    def answer_sessions(self, route: Any) -> None:
        request = route.request
        if request.method == "GET":
            route.fulfill(status=200, json=self.sessions)
            return
        body = json.loads(request.post_data or "{}")
        self.posts.append(body)
        if body.get("node") == "gamma":
            # As a node that went offline after the picker was drawn answers.
            error = {"code": "node_offline", "message": "node gamma is offline", "requestId": "r1"}
            route.fulfill(status=503, json={"error": error})
        else:
            route.continue_()


@pytest.fixture
def cluster_page(server: RunningServer, new_page: Callable[..., Any]) -> Iterator[Any]:
    def make(**options: Any) -> tuple[Any, FakeCluster]:
        page = new_page(**options)
        fake = FakeCluster(page)
        # First one node: the page learns it is "alpha"; then the cluster grows.
        page.goto(server.url)
        page_wait(page, lambda: fake.nodes_asked > 0, 10 * UNIT, "GET /api/nodes")
        expect(page.locator("li[data-id='a1']")).to_be_visible()
        expect(groups(page)).to_have_count(0)
        fake.nodes, fake.sessions = CLUSTER_NODES, CLUSTER_SESSIONS
        page.reload()
        return page, fake

    yield make


def test_cluster_list_groups_by_node(cluster_page: Callable[..., Any]) -> None:
    page, fake = cluster_page()
    expect(groups(page)).to_have_count(3)
    # Own node first, then the others by name.
    assert groups(page).evaluate_all("els => els.map(e => e.dataset.node)") == [
        "alpha",
        "beta",
        "gamma",
    ]
    alpha, beta, gamma = (
        page.locator(f"section[data-node='{n}']") for n in ["alpha", "beta", "gamma"]
    )
    expect(alpha.get_by_role("heading")).to_have_text(re.compile(r"alpha\s*this server\s*online"))
    expect(beta.get_by_role("heading")).to_have_text(re.compile(r"beta\s*offline"))
    expect(gamma.get_by_role("heading")).to_have_text(re.compile(r"gamma\s*online"))
    expect(page.get_by_role("list", name="Sessions", exact=True)).to_be_hidden()
    # Sessions newest first within their node.
    expect(alpha.locator("li.card .card-title")).to_have_text(["alpha-new", "alpha-old"])
    # An offline node's session stays listed, marked as its last known state, still openable.
    card = beta.locator("li[data-id='b1']")
    expect(card).to_have_class(re.compile(r"\boffline\b"))
    expect(card).to_contain_text("running · last known")
    expect(card).to_contain_text("Node beta is offline")
    expect(card.get_by_role("link", name="Open")).to_be_visible()
    expect(card.get_by_role("button", name="Kill")).to_be_hidden()
    expect(alpha.locator("li[data-id='a1']").get_by_role("button", name="Kill")).to_be_visible()
    expect(gamma).to_contain_text("No sessions on this node.")
    # The node list is polled while the page is in front.
    asked = fake.nodes_asked
    page_wait(page, lambda: fake.nodes_asked > asked, 10 * UNIT, "the next poll of the nodes")
    screenshot(page, "sessions-nodes", full_page=True)
    assert axe_violations(page) == []


def test_cluster_own_node_from_health(server: RunningServer, page: Any) -> None:
    """A server that names its node in GET /api/health is "this server" at once."""
    fake = FakeCluster(page)
    fake.nodes, fake.sessions = CLUSTER_NODES, CLUSTER_SESSIONS

    def health(route: Any) -> None:
        answer = route.fetch().json()
        route.fulfill(status=200, json={**answer, "node": "gamma"})

    page.route(re.compile(r"/api/health$"), health)
    page.goto(server.url)
    expect(groups(page)).to_have_count(3)
    expect(groups(page).first).to_have_attribute("data-node", "gamma")
    expect(groups(page).first.get_by_role("heading")).to_contain_text("this server")
    page.get_by_role("button", name="New session").click()
    expect(page.get_by_label("Node").locator("option")).to_have_text(
        ["gamma (this server)", "alpha", "beta (offline)"]
    )


def test_cluster_picker(cluster_page: Callable[..., Any]) -> None:
    page, fake = cluster_page()
    expect(groups(page)).to_have_count(3)
    page.get_by_role("button", name="New session").click()
    picker = page.get_by_label("Node")
    expect(picker).to_be_visible()
    options = picker.locator("option")
    expect(options).to_have_text(["alpha (this server)", "beta (offline)", "gamma"])
    assert options.evaluate_all("os => os.map(o => o.disabled)") == [False, True, False]
    expect(picker).to_have_value("")
    assert axe_violations(page) == []

    # Another node: `node` is sent; the server's refusal is shown.
    picker.select_option("gamma")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("alert")).to_have_text("node gamma is offline")
    assert fake.posts[-1]["node"] == "gamma"
    # The pick survives the next poll of the nodes.
    asked = fake.nodes_asked
    page_wait(page, lambda: fake.nodes_asked > asked, 10 * UNIT, "the next poll of the nodes")
    expect(picker).to_have_value("gamma")

    # The default: no `node`, the serving server makes it.
    picker.select_option("")
    page.get_by_role("button", name="Create").click()
    expect(status(page)).to_have_text("Connected")
    assert "node" not in fake.posts[-1], fake.posts


def test_cluster_on_a_phone(cluster_page: Callable[..., Any]) -> None:
    page, _ = cluster_page(**PHONE)
    expect(groups(page)).to_have_count(3)
    page.get_by_role("button", name="New session").click()
    picker = page.get_by_label("Node")
    expect(picker).to_be_in_viewport()
    expect(page.locator("section[data-node='beta'] li[data-id='b1']")).to_be_visible()
    assert no_horizontal_scroll(page)
    box = picker.bounding_box()
    assert (
        box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["viewport"]["width"]
    )


# -- Two real nodes ---------------------------------------------------------------------------


@pytest.mark.skipif(not CLUSTER_READY, reason="needs the cluster backend (vibetunnel.cluster)")
def test_two_nodes(tmp_path: Path, redis_server: RedisServer, page: Any) -> None:  # noqa: F811
    env = {"VIBETUNNEL_PASSWORD": PASSWORD, "VIBETUNNEL_JWT_SECRET": secrets.token_hex(32)}
    # The page and the test's polling share one token, and so one rate limit.
    cluster = ("--redis", redis_server.url, "--rate-limit", "100000")
    alpha = start_server(tmp_path / "alpha", *cluster, "--node", "alpha", env=env)
    try:
        beta = start_server(tmp_path / "beta", *cluster, "--node", "beta", env=env)
        try:
            two_nodes(alpha, beta, page)
        finally:
            beta.stop()
    finally:
        alpha.stop()


def two_nodes(alpha: RunningServer, beta: RunningServer, page: Any) -> None:
    token = access_token(alpha)  # one node's token works on the other
    with alpha.client(token) as api:
        on_alpha = create_session(api, name="on-alpha")
    with beta.client(token) as api:
        create_session(api, name="on-beta")
        wait_until(lambda: len(api.get("/api/nodes").json()) == 2, timeout=20 * UNIT)

    page.goto(f"{beta.url}/?token={token}")
    expect(groups(page)).to_have_count(2)
    expect(page.locator("section[data-node='alpha']")).to_contain_text("on-alpha")
    expect(page.locator("section[data-node='beta']")).to_contain_text("on-beta")

    # Made here without naming a node: on beta, the page's own node (which it learns from
    # GET /api/health, or else from this session's `node`).
    page.get_by_role("button", name="New session").click()
    options = page.get_by_label("Node").locator("option")
    expect(options.first).to_have_attribute("value", "")
    expect(page.get_by_label("Node").locator("option[value='alpha']")).to_be_enabled()
    page.get_by_label("Name", exact=True).fill("default-here")
    page.get_by_role("button", name="Create").click()
    expect(status(page)).to_have_text("Connected")
    page.get_by_role("link", name="Back to sessions").click()
    expect(groups(page).first).to_have_attribute("data-node", "beta")
    expect(page.locator("section[data-node='beta'] h2")).to_contain_text("this server")
    expect(page.locator("section[data-node='beta']")).to_contain_text("default-here")

    # Picked: made on alpha through beta.
    page.get_by_role("button", name="New session").click()
    expect(options).to_have_text(["beta (this server)", "alpha"])
    page.get_by_label("Node").select_option("alpha")
    page.get_by_label("Name", exact=True).fill("picked-alpha")
    page.get_by_role("button", name="Create").click()
    expect(status(page)).to_have_text("Connected")
    sid = page.url.rsplit("/", 1)[1]
    with beta.client(token) as api:
        assert api.get(f"/api/sessions/{sid}").json()["node"] == "alpha"
    page.get_by_role("link", name="Back to sessions").click()

    # alpha dies (no goodbye): it is marked offline, its sessions stay listed as last seen.
    alpha.stop(signal.SIGKILL, keep_sessions=True)
    section = page.locator("section[data-node='alpha']")
    expect(section).to_have_class(re.compile(r"\boffline\b"), timeout=45 * MS)
    card = section.locator(f"li[data-id='{on_alpha['id']}']")
    expect(card).to_contain_text("last known")
    page.get_by_role("button", name="New session").click()
    alpha_option = page.get_by_label("Node").locator("option[value='alpha']")
    expect(alpha_option).to_have_text("alpha (offline)")
    expect(alpha_option).to_be_disabled()
