"""The cluster's pure pieces: errors carried between nodes, and the checks of what is read
back from Redis (orders, answers, node entries, session lists)."""

from __future__ import annotations

import logging

import pytest

from vibetunnel.auth.redislink import RedisLink
from vibetunnel.cluster.gateway import Gateway, raise_or_return
from vibetunnel.cluster.node import owned_session
from vibetunnel.cluster.owner import error_json, order_problem
from vibetunnel.cluster.readback import Complaints, listed_problem, node_name, node_problem
from vibetunnel.errors import (
    BadRequest,
    NodeUnavailable,
    SessionNotFound,
    TooManyRequests,
    VibeTunnelError,
)


@pytest.mark.parametrize(
    "error",
    [
        SessionNotFound(),
        BadRequest("cols: must be 1..1000"),
        TooManyRequests("slow down", retry_after=7),
        NodeUnavailable("node x is offline"),
    ],
)
def test_an_error_comes_back_as_it_was_raised(error: VibeTunnelError) -> None:
    with pytest.raises(type(error)) as caught:
        raise_or_return({"error": error_json(error)})
    assert (caught.value.status, caught.value.code) == (error.status, error.code)
    assert caught.value.message == error.message
    if isinstance(error, TooManyRequests):
        assert isinstance(caught.value, TooManyRequests) and caught.value.retry_after == 7


def test_an_unknown_error_keeps_its_status() -> None:
    with pytest.raises(VibeTunnelError) as caught:
        raise_or_return({"error": {"code": "new_kind", "status": 418, "message": "teapot"}})
    assert (caught.value.status, caught.value.code) == (418, "new_kind")


def test_an_answer_without_error_is_its_result() -> None:
    assert raise_or_return({"ok": {"id": "x"}}) == {"id": "x"}
    assert raise_or_return({"ok": None}) is None


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        "ok",
        {"error": "boom"},
        {"error": {"code": "bad_request"}},  # no message
        {"error": {"code": ["x"], "message": 5}},
    ],
)
def test_a_malformed_answer_is_node_unavailable(answer: object) -> None:
    with pytest.raises(NodeUnavailable, match="node beta sent a malformed answer"):
        raise_or_return(answer, "beta")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        ({"code": ["x"], "message": "m"}, 500, "internal_error"),
        ({"code": "new_kind", "status": 99, "message": "m"}, 500, "new_kind"),
        ({"code": "new_kind", "status": "418", "message": "m"}, 500, "new_kind"),
    ],
)
def test_an_odd_error_is_a_plain_error(error: dict[str, object], status: int, code: str) -> None:
    with pytest.raises(VibeTunnelError) as caught:
        raise_or_return({"error": error})
    assert (caught.value.status, caught.value.code) == (status, code)


def test_a_rate_limit_with_an_odd_retry_after_waits_a_second() -> None:
    answer = {"error": {"code": "too_many_requests", "message": "m", "retryAfter": "soon"}}
    with pytest.raises(TooManyRequests) as caught:
        raise_or_return(answer)
    assert caught.value.retry_after == 1


GOOD_ORDERS: list[dict[str, object]] = [
    {"op": "input", "id": "s1", "data": "ls\r"},
    {"op": "watch", "id": "s1", "gateway": "beta", "clients": 2},
    {"op": "resize", "id": "s1", "cols": 100, "rows": 30, "reply": "a" * 32},
    {"op": "snapshot", "id": "s1", "token": "b" * 32, "reply": "c" * 32},
    {"op": "create", "options": {"command": "cat", "cols": 80}, "reply": "d" * 32},
    {"op": "delete", "id": "s1", "reply": "e" * 32},
    {"op": "rename", "id": "s1", "name": "new", "reply": "f" * 32},
]


@pytest.mark.parametrize("order", GOOD_ORDERS)
def test_the_orders_gateways_send_pass(order: dict[str, object]) -> None:
    assert order_problem(order) is None


@pytest.mark.parametrize(
    ("order", "problem"),
    [
        ([1, 2], "an order must be a JSON object"),
        ({"op": "format-disk"}, "op: unknown order 'format-disk'"),
        ({"op": ["input"]}, "op: unknown order"),
        ({"op": "input"}, "input: id must be a session id"),
        ({"op": "input", "id": "../x", "data": "x"}, "input: id must be a session id"),
        ({"op": "input", "id": "s1", "data": 5}, "input: data must be text"),
        ({"op": "input", "id": "s1", "data": "\ud800"}, "input: data must be text"),
        ({"op": "watch", "id": "s1", "gateway": "a b", "clients": 1}, "watch: gateway"),
        ({"op": "watch", "id": "s1", "gateway": "b", "clients": -1}, "watch: clients"),
        ({"op": "resize", "id": "s1", "cols": "x", "rows": 5}, "resize: cols must be 1..1000"),
        ({"op": "resize", "id": "s1", "cols": 80, "rows": 10**9}, "resize: rows must be"),
        ({"op": "snapshot", "id": "s1", "token": None}, "snapshot: token must be a token"),
        ({"op": "create", "options": []}, "create: options must be"),
        ({"op": "create", "options": {"shell": "sh"}}, "create: options must be"),
        ({"op": "rename", "id": "s1", "name": ""}, "rename: name must be 1 to 256"),
        ({"op": "delete", "id": "s1", "reply": {"x": 1}}, "reply must be a token"),
        ({"op": "delete", "id": "s1", "reply": "../x"}, "reply must be a token"),
    ],
)
def test_a_malformed_order_is_named(order: object, problem: str) -> None:
    found = order_problem(order)
    assert found is not None and found.startswith(problem)


def test_a_complaint_is_said_once_per_distinct_item(caplog: pytest.LogCaptureFixture) -> None:
    complain = Complaints(remember=2)
    with caplog.at_level(logging.WARNING, "vibetunnel.cluster"):
        for _ in range(3):  # three refreshes reading the same junk
            complain("node x", b"junk", "not JSON")
            complain("node y", b"junk", "not JSON")
        complain("node x", b"other junk", "not JSON")  # new junk where the old was: said
        complain("node y", b"junk", "not JSON")  # still remembered
        complain("node x", b"junk", "not JSON")  # forgotten (two remembered): said again
    lines = [r.getMessage() for r in caplog.records]
    x, y = "cluster: node x skipped: not JSON", "cluster: node y skipped: not JSON"
    assert lines == [x, y, x, x]


@pytest.mark.parametrize(
    ("raw", "name"),
    [(b"alpha", "alpha"), (b"a.b_c-9", "a.b_c-9"), (b"", None), (b"a b", None), (b"\xff", None)],
)
def test_node_names_read_back(raw: bytes, name: str | None) -> None:
    assert node_name(raw) == name


@pytest.mark.parametrize(
    ("about", "ok"),
    [
        ({"lastSeen": 1700000000.5, "sessions": 2}, True),
        ({"lastSeen": 1e20}, False),
        ({"lastSeen": "x"}, False),
        ({}, False),
        ([], False),
    ],
)
def test_node_entries_read_back(about: object, ok: bool) -> None:
    assert (node_problem(about) is None) is ok


def test_a_listed_session_belongs_to_its_node_and_key() -> None:
    from tests.unit.protocol.test_sessions import listed

    session = listed()  # node alpha, id s-1
    assert listed_problem("alpha", b"s-1", session) is None
    assert "its node is 'alpha'" in str(listed_problem("beta", b"s-1", session))
    assert listed_problem("alpha", b"s-2", session) == "it is listed under another id"
    assert listed_problem("alpha", b"s-1", {**session, "cols": 0}) is not None


async def test_a_refresh_that_fails_unforeseen_is_said_once_and_the_task_goes_on(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = RedisLink("redis://127.0.0.1:1/0")  # never reached: the refresh is replaced
    gateway = Gateway(link, "alpha", 15.0, lambda: None)
    calls = []

    async def broken() -> None:
        calls.append(1)
        raise RuntimeError("a fault nobody foresaw")

    monkeypatch.setattr(gateway, "refresh", broken)
    with caplog.at_level(logging.WARNING, "vibetunnel.cluster"):
        for _ in range(3):
            await gateway.refresh_once()  # raises nothing: the task calling it goes on
    assert len(calls) == 3
    (line,) = [r.getMessage() for r in caplog.records]
    assert "a refresh skipped: RuntimeError: a fault nobody foresaw" in line
    await link.close()


@pytest.mark.parametrize(
    "answer",
    [None, "created", {"id": "s-1"}, {"node": "beta"}],
)
def test_an_owner_answering_with_no_session_is_node_unavailable(answer: object) -> None:
    with pytest.raises(NodeUnavailable, match="node alpha answered with a malformed session"):
        owned_session("alpha", answer)


def test_an_owner_answering_with_another_nodes_session_is_node_unavailable() -> None:
    from tests.unit.protocol.test_sessions import listed

    session = listed()  # alpha's
    assert owned_session("alpha", session) is session
    with pytest.raises(NodeUnavailable, match="its node is 'alpha', not 'beta'"):
        owned_session("beta", session)
