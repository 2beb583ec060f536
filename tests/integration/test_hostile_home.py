"""What a real server reads back from its home (the keeper's sessions.json, the recordings'
metadata.json), damaged value by value: the routes still answer 200, each bad entry is
skipped with one log line, the good ones are listed as they were."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, start_server, wait_until
from tests.unit.keeper.test_table import HOSTILE, entry, hostile_table

CAST_START = 1700000000  # 2023-11-14T22:13:20Z
CAST_HEADER = {"version": 2, "width": 80, "height": 24, "timestamp": CAST_START, "title": "cast"}

GOOD_RECORDING: dict[str, Any] = {
    "id": "rec-good",
    "name": "from the index",
    "command": "sh -c 'echo hi'",
    "argv": ["sh", "-c", "echo hi"],
    "cwd": "/",
    "size": "100x30",
    "startedAt": "2024-01-01T00:00:00.000Z",
    "endedAt": "2024-01-01T00:00:02.000Z",
    "duration": 2.0,
    "exitCode": 0,
    "bytes": 0,  # set to the file's size by the load
}
HOSTILE_RECORDINGS: list[tuple[str, dict[str, Any]]] = [
    ("started-before-year-1", {"startedAt": "0001-01-01T00:00:00+05:00"}),
    ("ended-after-year-9999", {"endedAt": "9999-12-31T23:59:59-05:00"}),
    ("started-a-number", {"startedAt": 1e20}),
    ("duration-infinite", {"duration": float("inf")}),
    ("duration-nan", {"duration": float("nan")}),
    ("duration-huge", {"duration": 1e308}),
    ("duration-negative", {"duration": -1.0}),
    ("bytes-negative", {"bytes": -1}),
    ("size-not-a-size", {"size": "huge"}),
    ("size-zero", {"size": "0x24"}),
    ("exit-code-huge", {"exitCode": 10**6}),
    ("name-not-text", {"name": ["x"]}),
]


def write_cast(folder: Path, recording_id: str) -> int:
    path = folder / f"{recording_id}.cast"
    path.write_text(json.dumps(CAST_HEADER) + "\n" + json.dumps([0.5, "o", "hi\r\n"]) + "\n")
    return path.stat().st_size


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose home held a damaged sessions.json and metadata.json when it started
    (a keeper is started for the table, as after a crash). The tests only read."""
    home = tmp_path_factory.mktemp("hostile") / "home"
    recordings = home / "recordings"
    recordings.mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    good = [
        entry("good-1", exitCode=0, exitedAt=1700000100.5).to_json(),
        entry("good-2", exitCode=3, exitedAt=1700000200.0, lost="why").to_json(),
    ]
    (home / "sessions.json").write_text(hostile_table(good))
    index = [GOOD_RECORDING]
    write_cast(recordings, GOOD_RECORDING["id"])
    for i, (_, changes) in enumerate(HOSTILE_RECORDINGS):
        write_cast(recordings, f"rec-bad-{i}")
        index.append({**GOOD_RECORDING, "id": f"rec-bad-{i}", **changes})
    (recordings / "metadata.json").write_text(json.dumps({"version": 1, "recordings": index}))
    server = start_server(home, "--no-auth")
    try:
        yield server
    finally:
        server.stop()


def test_the_routes_answer_and_list_only_the_good_sessions(hostile: RunningServer) -> None:
    with hostile.client() as api:
        listed = api.get("/api/sessions")
        assert listed.status_code == 200, listed.text
        by_id = {s["id"]: s for s in listed.json()}
        assert set(by_id) == {"good-1", "good-2"}
        assert by_id["good-1"]["createdAt"] == "2023-11-14T22:13:20.250Z"
        assert (by_id["good-2"]["exitCode"], by_id["good-2"]["status"]) == (3, "exited")
        for session_id in by_id:
            assert api.get(f"/api/sessions/{session_id}").status_code == 200
        assert api.get("/api/sessions/bad-0").status_code == 404
    log = (hostile.home / "keeper.log").read_text()
    lines = [line for line in log.splitlines() if "sessions.json: entry" in line]
    assert len(lines) == len(HOSTILE), lines  # one line per bad entry, no more
    for (label, changes), line in zip(HOSTILE, lines, strict=True):
        assert next(iter(changes)) in line, (label, line)


def test_the_recordings_route_answers_with_bad_entries_rebuilt(hostile: RunningServer) -> None:
    with hostile.client() as api:
        answer = api.get("/api/recordings")
        assert answer.status_code == 200, answer.text
        by_id = {r["id"]: r for r in answer.json()}
    size = (hostile.home / "recordings" / "rec-good.cast").stat().st_size
    assert by_id["rec-good"] == {**GOOD_RECORDING, "bytes": size}  # as the index had it
    for i in range(len(HOSTILE_RECORDINGS)):
        rebuilt = by_id[f"rec-bad-{i}"]  # from its .cast: none of the bad value is left
        assert (rebuilt["name"], rebuilt["size"], rebuilt["duration"]) == ("cast", "80x24", 0.5)
        assert rebuilt["startedAt"] == "2023-11-14T22:13:20.000Z"
        assert (rebuilt["bytes"], rebuilt["exitCode"]) == (size, None)
    lines = wait_until(
        lambda: [line for line in hostile.output if "metadata.json: entry" in line],
        what="the index's log lines",
    )
    assert len(lines) == len(HOSTILE_RECORDINGS), lines
    for (label, changes), line in zip(HOSTILE_RECORDINGS, lines, strict=True):
        assert re.search(rf"\b{next(iter(changes))}\b", line), (label, line)
