"""One session, live (GET /api/sessions/{id}/events): what a terminal page follows the size with."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.conftest import UNIT, RunningServer, create, start_server
from vibetunnel.auth import TokenService, load_or_create_secret


def next_event(lines: Iterator[str], check: Callable[[str, Any], bool]) -> None:
    """Read server-sent events until one (`event` name, parsed `data`) passes `check`."""
    deadline = time.monotonic() + 10 * UNIT
    name = "message"
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            if check(name, json.loads(line[6:])):
                return
            name = "message"
        assert time.monotonic() < deadline, "no matching event in time"
    raise AssertionError("event stream ended")


def test_one_session_is_pushed_on_each_change_to_it(shared_server: RunningServer) -> None:
    with shared_server.client() as api:
        s = create(api, command="/bin/sh", cols=90, rows=30)
        other = create(api, command="/bin/sh")
        sid = s["id"]
        with api.stream("GET", f"/api/sessions/{sid}/events") as events:
            assert events.status_code == 200
            assert events.headers["content-type"].startswith("text/event-stream")
            lines = events.iter_lines()
            next_event(lines, lambda _, x: x["id"] == sid and (x["cols"], x["rows"]) == (90, 30))
            # A change to another session is not sent; a resize of this one is.
            assert api.delete(f"/api/sessions/{other['id']}").status_code == 204
            assert api.post(f"/api/sessions/{sid}/resize", json={"cols": 61, "rows": 17}).is_success
            next_event(lines, lambda _, x: (x["cols"], x["rows"]) == (61, 17))
            assert api.delete(f"/api/sessions/{sid}").status_code == 204
            next_event(lines, lambda name, x: name == "gone" and x == {})
            assert not any(lines)  # the stream ends with the session


def test_unknown_session_is_a_404(shared_server: RunningServer) -> None:
    with shared_server.client() as api:
        r = api.get("/api/sessions/no-such-session/events")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "session_not_found"


def test_a_share_token_follows_its_own_session_only(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", env={"VIBETUNNEL_PASSWORD": "pw"})
    try:
        service = TokenService(load_or_create_secret(srv.home))
        with srv.client(service.issue("tester", 600)) as api:
            mine = create(api, command="/bin/sh")["id"]
            theirs = create(api, command="/bin/sh")["id"]
        share = service.issue("tester", 600, session_id=mine, read_only=True)
        with srv.client(share) as c:
            with c.stream("GET", f"/api/sessions/{mine}/events") as events:
                assert events.status_code == 200
                next_event(events.iter_lines(), lambda _, x: x["id"] == mine)
            assert c.get(f"/api/sessions/{theirs}/events").status_code == 403
    finally:
        srv.stop()
