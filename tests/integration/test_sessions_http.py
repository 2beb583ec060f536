"""Every route of the sessions API and its status codes, against a real server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import UNIT, RunningServer, create, wait_until


def test_health_has_the_contract_fields(api: httpx.Client) -> None:
    r = api.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    # The contract's four, and the two docs/protocol.md adds for a cluster (extra fields
    # break no client).
    assert set(body) == {"status", "version", "uptime", "sessions", "node", "cluster"}
    assert body["cluster"] is None  # not in a cluster


def test_create_defaults_to_login_shell_home_80x24(api: httpx.Client) -> None:
    r = api.post("/api/sessions", json={})
    assert r.status_code == 201
    s = r.json()
    assert r.headers["location"] == f"/api/sessions/{s['id']}"
    assert (s["cols"], s["rows"], s["status"], s["exitCode"]) == (80, 24, "running", None)
    assert s["args"] == ["-l"] and s["cwd"].startswith("/")
    uuid.UUID(s["id"])


def test_create_with_every_option(api: httpx.Client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sid = str(uuid.uuid4())
    s = create(
        api,
        id=sid,
        name="n1",
        cols=100,
        rows=30,
        cwd=str(tmp_path),
        env={"GREETING": "hello"},
        command="/bin/sh",
        args=["-c", 'echo "$GREETING $TERM $(pwd) $(stty size)" > out.txt'],
    )
    assert (s["id"], s["name"], s["cols"], s["rows"]) == (sid, "n1", 100, 30)
    out = tmp_path / "out.txt"
    text = wait_until(lambda: out.exists() and out.read_text(), what="out.txt")
    assert text == f"hello xterm-256color {tmp_path} 30 100\n"


def test_exited_session_stays_listed_with_code(api: httpx.Client) -> None:
    s = create(api, command="/bin/sh", args=["-c", "exit 7"])
    done = wait_until(lambda: api.get(f"/api/sessions/{s['id']}").json()["status"] == "exited")
    assert done
    got = api.get(f"/api/sessions/{s['id']}").json()
    assert got["exitCode"] == 7 and got["exitedAt"] is not None
    assert s["id"] in [x["id"] for x in api.get("/api/sessions").json()]


def test_bad_fields_are_400_naming_the_field(api: httpx.Client) -> None:
    cases = {
        "cols": {"cols": 0},
        "rows": {"rows": 1001},
        "cols ": {"cols": "80"},
        "rows ": {"rows": 24.5},
        "cwd": {"cwd": "/no/such/dir"},
        "command": {"command": "/no/such/program"},
        "args": {"args": "not-a-list"},
        "env": {"env": {"A": 1}},
        "id": {"id": "not-a-uuid"},
        "surprise": {"surprise": True},
    }
    for field, body in cases.items():
        r = api.post("/api/sessions", json=body)
        assert r.status_code == 400, (field, r.text)
        err = r.json()["error"]
        assert err["message"].startswith(field.strip()), (field, err)
        assert err["code"] == "bad_request" and err["requestId"] == r.headers["x-request-id"]


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"A=B": "x"}, "name 'A=B' holds '='"),
        ({"": "x"}, "a name must not be empty"),
        ({"A\u0000B": "x"}, "name 'A\\x00B' holds NUL"),
        ({"A": "x\u0000y"}, "the value of 'A' holds NUL"),
    ],
)
def test_an_environment_exec_cannot_pass_is_400_at_once(
    shared_server: RunningServer, env: dict[str, str], problem: str
) -> None:
    # A few units, not the keeper's 30 s: it is refused before any program is started.
    with httpx.Client(base_url=shared_server.url, timeout=3 * UNIT) as api:
        r = api.post("/api/sessions", json={"command": "true", "env": env})
        assert r.status_code == 400, r.text
        message = r.json()["error"]["message"]
        assert message.startswith("env: ") and problem in message, message
        assert api.get("/api/health").status_code == 200


def test_not_json_is_400_or_415(api: httpx.Client) -> None:
    r = api.post("/api/sessions", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    # Without auth (this server), a body of another type is a 415 (tests/integration/test_edge).
    r = api.post("/api/sessions", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "Content-Type" in r.json()["error"]["message"]


def test_duplicate_id_is_409(api: httpx.Client) -> None:
    sid = str(uuid.uuid4())
    create(api, id=sid, command="/bin/cat")
    r = api.post("/api/sessions", json={"id": sid, "command": "/bin/cat"})
    assert r.status_code == 409 and sid in r.json()["error"]["message"]


def test_unknown_session_is_404_everywhere(api: httpx.Client) -> None:
    sid = str(uuid.uuid4())
    for method, path, body in [
        ("GET", f"/api/sessions/{sid}", None),
        ("DELETE", f"/api/sessions/{sid}", None),
        ("POST", f"/api/sessions/{sid}/input", {"data": "x"}),
        ("POST", f"/api/sessions/{sid}/resize", {"cols": 10, "rows": 10}),
    ]:
        r = api.request(method, path, json=body)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["code"] == "session_not_found"


def test_delete_kills_and_forgets(api: httpx.Client) -> None:
    s = create(api, command="/bin/sleep", args=["100"])
    r = api.delete(f"/api/sessions/{s['id']}")
    assert r.status_code == 204 and r.content == b""
    assert api.get(f"/api/sessions/{s['id']}").status_code == 404
    wait_until(lambda: not _alive(s["pid"]), what="process gone")


def test_delete_escalates_past_sighup(api: httpx.Client) -> None:
    # A program that ignores SIGHUP and SIGTERM still ends: SIGKILL comes last.
    s = create(
        api,
        command="/bin/sh",
        args=["-c", "trap '' HUP TERM; echo ready; while :; do sleep 1; done"],
    )
    wait_until(lambda: _alive(s["pid"]))
    r = api.delete(f"/api/sessions/{s['id']}")
    assert r.status_code == 204
    wait_until(lambda: not _alive(s["pid"]), what="process killed")


def test_input_and_resize(api: httpx.Client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "size.txt"
    s = create(api, command="/bin/sh", cwd=str(tmp_path))
    r = api.post(f"/api/sessions/{s['id']}/resize", json={"cols": 132, "rows": 43})
    assert r.status_code == 200 and (r.json()["cols"], r.json()["rows"]) == (132, 43)
    r = api.post(f"/api/sessions/{s['id']}/input", json={"data": "stty size > size.txt\n"})
    assert r.status_code == 204
    assert wait_until(lambda: out.exists() and out.read_text()) == "43 132\n"


def test_input_and_resize_validate(api: httpx.Client) -> None:
    s = create(api, command="/bin/cat")
    base = f"/api/sessions/{s['id']}"
    for path, body, field in [
        ("/input", {}, "data"),
        ("/input", {"data": 5}, "data"),
        ("/resize", {"cols": 0, "rows": 5}, "cols"),
        ("/resize", {"cols": 5}, "rows"),
        ("/resize", {"cols": 5, "rows": True}, "rows"),
    ]:
        r = api.post(base + path, json=body)
        assert r.status_code == 400, (path, body)
        assert r.json()["error"]["message"].startswith(field)


def test_input_with_a_lone_surrogate_is_400(api: httpx.Client) -> None:
    # A JSON escape can carry a lone surrogate, which no terminal can be sent.
    s = create(api, command="/bin/cat")
    r = api.post(
        f"/api/sessions/{s['id']}/input",
        content=b'{"data": "a\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("data")


def test_one_huge_input_to_a_program_that_does_not_read_is_refused(api: httpx.Client) -> None:
    # At most 16 MiB is queued whatever the size of one write: one 20 MiB paste is a 429
    # (or, refused before it is read, a 413), never queued whole.
    s = create(api, command="/bin/sh", args=["-c", "exec sleep 60"])
    url = f"/api/sessions/{s['id']}/input"
    r = api.post(url, json={"data": "x" * (20 * 1024 * 1024)})
    assert r.status_code in (413, 429), r.text
    assert r.json()["error"]["code"] in ("too_many_requests", "payload_too_large"), r.text
    assert api.post(url, json={"data": "ok"}).status_code == 204  # nothing of it was queued
    api.delete(f"/api/sessions/{s['id']}")


def test_input_to_exited_session_is_400(api: httpx.Client) -> None:
    s = create(api, command="/bin/true")
    wait_until(lambda: api.get(f"/api/sessions/{s['id']}").json()["status"] == "exited")
    r = api.post(f"/api/sessions/{s['id']}/input", json={"data": "x"})
    assert r.status_code == 400 and "exited" in r.json()["error"]["message"]


def test_request_id_echoed_when_sane(api: httpx.Client) -> None:
    r = api.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = api.get("/api/health", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] not in ("", "bad id with spaces")
    r = api.get("/api/nowhere")
    assert r.status_code == 404 and r.json()["error"]["requestId"] == r.headers["x-request-id"]


def test_client_version(api: httpx.Client) -> None:
    assert api.get("/api/health", headers={"X-Client-Version": "1.4.2"}).status_code == 200
    r = api.get("/api/health", headers={"X-Client-Version": "2.0.0"})
    assert r.status_code == 400 and "1.x" in r.json()["error"]["message"]
    assert api.get("/api/health", headers={"X-Session-ID": str(uuid.uuid4())}).status_code == 200


def test_session_limit_is_429(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import start_server

    srv = start_server(tmp_path / "home", "--no-auth", "--max-sessions", "2")
    try:
        with srv.client() as api:
            create(api, command="/bin/cat")
            create(api, command="/bin/cat")
            r = api.post("/api/sessions", json={"command": "/bin/cat"})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert "limit" in r.json()["error"]["message"]
    finally:
        srv.stop()


def test_openapi_describes_the_real_routes(api: httpx.Client) -> None:
    doc = api.get("/api/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/api/sessions"]) == {"get", "post"}
    assert set(paths["/api/sessions/{session_id}"]) == {"get", "delete", "patch"}
    assert "201" in paths["/api/sessions"]["post"]["responses"]
    assert "409" in paths["/api/sessions"]["post"]["responses"]
    assert "204" in paths["/api/sessions/{session_id}"]["delete"]["responses"]
    assert (
        "/api/sessions/{session_id}/input" in paths and "/api/sessions/{session_id}/resize" in paths
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_wrong_method_is_405_with_allow(api: httpx.Client) -> None:
    r = api.request("TRACE", "/api/sessions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


def test_session_list_is_pushed_as_events(shared_server: RunningServer) -> None:
    # The live list: one event now, then one for each change (create, clients, exit, delete).
    def next_list(lines: Iterator[str], check: Callable[[list[dict[str, Any]]], bool]) -> None:
        deadline = time.monotonic() + 10 * UNIT
        for line in lines:
            if line.startswith("data: ") and check(json.loads(line[6:])):
                return
            assert time.monotonic() < deadline, "no matching event in time"
        raise AssertionError("event stream ended")

    with shared_server.client() as api, api.stream("GET", "/api/sessions/events") as events:
        assert events.status_code == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        next_list(lines, lambda sessions: isinstance(sessions, list))
        s = create(api, command="/bin/sh", args=["-c", "read x; exit 3"])
        next_list(lines, lambda sessions: any(x["id"] == s["id"] for x in sessions))
        api.post(f"/api/sessions/{s['id']}/input", json={"data": "\n"})
        next_list(
            lines,
            lambda sessions: any(x["id"] == s["id"] and x["exitCode"] == 3 for x in sessions),
        )
        assert api.delete(f"/api/sessions/{s['id']}").status_code == 204
        next_list(lines, lambda sessions: all(x["id"] != s["id"] for x in sessions))


def test_session_shows_the_programs_title_and_activity(api: httpx.Client) -> None:
    s = create(api, command="/bin/sh", args=["-c", r"printf '\033]0;building docs\007'; exec cat"])
    assert "title" in s and "activityAt" in s
    got = wait_until(
        lambda: (r := api.get(f"/api/sessions/{s['id']}").json())["title"] and r,
        what="the title set by the program",
    )
    assert got["title"] == "building docs"
    assert got["activityAt"] is not None and got["activityAt"] >= got["createdAt"]


def test_a_missing_asset_is_404(api: httpx.Client) -> None:
    # In a checkout whose web app is not built, /assets had no folder: a 500 (found by the fuzz).
    r = api.get("/assets/nothing-here.js")
    assert r.status_code == 404, r.text
