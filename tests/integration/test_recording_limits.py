"""Recordings have a budget (contract: "Limits at the edge, round three"), against a real
server, real PTYs, a real keeper and the real `asciinema`: a recording ends at
`--max-recording-size` (whole lines, a marker saying why, its session running on and saying
so), the keeper ends it at the same size while no server runs, and past
`--recordings-budget` the oldest finished recordings go, never a running session's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import UNIT, RunningServer, create, wait_until
from tests.integration.test_recordings import (
    asciinema_cat,
    cast_path,
    ended,
    entry,
    output_of,
    own_server,
    read_cast,
    servers,  # noqa: F401 (a fixture)
    ws_url,
)
from tests.integration.test_session_events import next_event
from tests.integration.wsclient import TermClient

LIMIT = 64 * 1024
STOPPED = "recording stopped at its size limit of 64 KiB (--max-recording-size)"
# Prints numbered lines forever (some 10,000 a second), once it has read a line.
PRINTER = (
    "import itertools, time\n"
    "input()\n"
    "for i in itertools.count():\n"
    "    print(f'line-{i:07}', flush=True)\n"
    "    if i % 50 == 0:\n"
    "        time.sleep(0.005)\n"
)
# Prints some 40 kB once it has read a line, then waits (running) for another.
PRINT_THEN_WAIT = "input()\nfor i in range(3000):\n    print(f'line-{i:07}')\ninput()\n"
BASH = {"command": "/bin/bash", "args": ["--norc", "--noprofile"], "env": {"PS1": "$ "}}


def capped(path: Path) -> tuple[bytes, list[list[Any]]]:
    """A recording ended at LIMIT: at most LIMIT bytes of whole lines, the last one saying
    why, and what asciinema prints of it is its output."""
    data = path.read_bytes()
    assert len(data) <= LIMIT, f"{len(data)} bytes, over the limit"
    _, events = read_cast(path)
    assert events[-1][1:] == ["m", STOPPED]
    assert asciinema_cat(path) == output_of(events)
    return data, events


def last_line(text: str) -> int:
    return max(int(n) for n in re.findall(r"line-(\d{7})\r\n", text))


def session(api: httpx.Client, sid: str) -> dict[str, Any]:
    r = api.get(f"/api/sessions/{sid}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def listed_with(sid: str, recording: bool, error: str | None) -> Any:
    """A check of the live session list's events: `sid` listed in this recording state."""

    def check(_: str, sessions: Any) -> bool:
        return any(
            (s["id"], s["recording"], s["recordingError"]) == (sid, recording, error)
            for s in sessions
        )

    return check


async def test_a_recording_ends_at_its_size_and_its_session_runs_on(
    servers: list[RunningServer],  # noqa: F811
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    srv = own_server(servers, home, "--max-recording-size", "64K")
    with srv.client() as api:
        s = create(api, command="python3", args=["-c", PRINTER])
        sid, path = s["id"], cast_path(home, s["id"])
        assert (s["recording"], s["recordingError"]) == (True, None)
        with api.stream("GET", "/api/sessions/events") as live:
            lines = live.iter_lines()
            next_event(lines, listed_with(sid, True, None))
            assert api.post(f"/api/sessions/{sid}/input", json={"data": "go\r"}).is_success
            # Pushed as it happens, to every page listing the sessions.
            next_event(lines, listed_with(sid, False, STOPPED))
        shown = session(api, sid)
        assert (shown["status"], shown["recording"], shown["recordingError"]) == (
            "running",
            False,
            STOPPED,
        )
        data, events = capped(path)
        recorded = last_line(output_of(events) + "\r\n")
        # Its entry is final (its end and size) while the session runs on.
        final = wait_until(
            lambda: (e := entry(api, sid)) is not None and e["endedAt"] is not None and e,
            what="the entry finished at the cut",
        )
        assert (final["bytes"], final["exitCode"]) == (len(data), None)
        # The session itself is unharmed: a late joiner gets its screen and the output
        # goes on, long past what the recording holds.
        t = await TermClient.connect(ws_url(srv, sid))
        await t.until(
            lambda c: "line-" in c.output and last_line(c.output) > recorded + 5000,
            10 * UNIT,
            "output well past the recording's end",
        )
        assert path.read_bytes() == data, "nothing more is written"
        assert session(api, sid)["status"] == "running"
        assert api.delete(f"/api/sessions/{sid}").status_code == 204
        done = ended(api, sid)  # the exit code is added; the end stays the cut's
        assert (done["endedAt"], done["duration"], done["bytes"]) == (
            final["endedAt"],
            final["duration"],
            len(data),
        )
        assert all(
            e["id"] != sid or e["bytes"] == len(data) for e in api.get("/api/recordings").json()
        )


async def test_the_keeper_ends_a_recording_at_the_size_its_server_said(
    servers: list[RunningServer],  # noqa: F811
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    go = tmp_path / "go"
    srv = own_server(servers, home, "--max-recording-size", "64K")
    with srv.client() as api:
        s = create(api, **BASH)
    sid, path = s["id"], cast_path(home, s["id"])
    t = await TermClient.connect(ws_url(srv, sid))
    await t.see("$ ")
    # Prints some 250 kB, once the server is gone: only the keeper reads it.
    await t.type(
        f"until [ -e {go} ]; do sleep 0.02; done; "
        "for i in $(seq 1 20000); do echo line-$i; done; echo done-$((1+1))\r"
    )
    await t.see("echo done-$((1+1))")
    await t.close()  # the server's stop need not wait for it
    srv.stop(keep_sessions=True)
    go.touch()
    wait_until(
        lambda: path.read_bytes().endswith(f'"{STOPPED}"]\n'.encode()),
        10 * UNIT,
        "the keeper to end the recording at the limit",
    )
    data, events = capped(path)
    assert "line-1\r\n" in output_of(events) and "done-2" not in output_of(events)
    srv.start()
    with srv.client() as api:
        again = wait_until(
            lambda: (j := session(api, sid))["recordingError"] is not None and j,
            what="the new server to say the recording ended",
        )
        assert (again["status"], again["recording"], again["recordingError"]) == (
            "running",
            False,
            STOPPED,
        )
        t2 = await TermClient.connect(ws_url(srv, sid))
        await t2.see("done-2")  # the keeper kept the screen
        await t2.type("echo after-$((2+2))\r")
        await t2.see("after-4")
        assert path.read_bytes() == data, "the new server writes nothing more either"
        final = wait_until(
            lambda: (e := entry(api, sid)) is not None and e["endedAt"] is not None and e,
            what="the entry finished at the cut",
        )
        assert final["bytes"] == len(data)


def test_past_the_budget_the_oldest_finished_go_never_a_running_one(
    servers: list[RunningServer],  # noqa: F811
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    limits = ("--max-recording-size", "16K", "--recordings-budget", "40K")
    srv = own_server(servers, home, *limits, "--rate-limit", "100000")  # it polls
    with srv.client() as api:
        # The oldest recording of all, its session running: ended at 16K, finished in the
        # index, and never the budget's.
        running = create(api, command="python3", args=["-c", PRINT_THEN_WAIT])["id"]
        assert api.post(f"/api/sessions/{running}/input", json={"data": "go\r"}).is_success
        wait_until(
            lambda: session(api, running)["recordingError"] is not None,
            what="the running session's recording to end at its size",
        )
        wait_until(lambda: (e := entry(api, running)) and e["endedAt"], what="its entry final")
        done = []
        for n in range(4):  # some 9 kB each: 16 + 4 x 9 is over 40
            sid = create(api, command="python3", args=["-c", f"print('{n}' * 9000)"])["id"]
            ended(api, sid)
            done.append(sid)
        listed = wait_until(
            lambda: (
                (ids := {e["id"] for e in api.get("/api/recordings").json()})
                == {running, done[2], done[3]}
                and ids
            ),
            what="the two oldest finished recordings deleted",
        )
        on_disk = {p.stem for p in (home / "recordings").glob("*.cast")}
        assert on_disk == listed
        total = sum(e["bytes"] for e in api.get("/api/recordings").json())
        assert total <= 40 * 1024
        for gone in done[:2]:
            assert api.get(f"/api/recordings/{gone}").status_code == 404
        assert session(api, running)["status"] == "running"

    def index_agrees() -> bool:
        doc = json.loads((home / "recordings" / "metadata.json").read_text())
        return {e["id"] for e in doc["recordings"]} == listed

    wait_until(index_agrees, what="metadata.json to hold what is left")
    said = [line for line in srv.output if "deleted: the recordings took" in line]
    assert len(said) == 2 and all("--recordings-budget" in line for line in said)
    assert done[0] in said[0] and done[1] in said[1]
