"""sessions.json: written whole with mode 0600; what a dead keeper ran comes back lost."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from vibetunnel.keeper.table import TABLE, Entry, load, save


def entry(session_id: str, **changes: Any) -> Entry:
    fields: dict[str, Any] = {
        "id": session_id,
        "name": "bash €",
        "command": "/bin/bash",
        "args": ["-l"],
        "cwd": "/tmp",
        "cols": 80,
        "rows": 24,
        "pid": 4242,
        "createdAt": 1700000000.25,
    }
    return Entry(**{**fields, **changes})


def test_round_trip_of_ended_sessions_with_mode_0600(tmp_path: Path) -> None:
    entries = [
        entry("a", exitCode=0, exitedAt=1700000100.5),
        entry("b", exitCode=None, exitedAt=1700000200.0, lost="why", record=False),
        entry("c", exitCode=130, exitedAt=1700000300.0, recordInput=True),
    ]
    save(tmp_path, 999, entries)
    path = tmp_path / TABLE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text(encoding="utf-8"))["keeper"] == 999
    assert load(tmp_path) == entries
    assert sorted(p.name for p in tmp_path.iterdir()) == [TABLE]  # no temporary file left


def test_save_replaces_the_table(tmp_path: Path) -> None:
    save(tmp_path, 1, [entry("a", exitedAt=1.0), entry("b", exitedAt=2.0)])
    save(tmp_path, 1, [entry("b", exitedAt=2.0)])
    assert [e.id for e in load(tmp_path)] == ["b"]


def test_running_entries_of_a_dead_keeper_are_lost(tmp_path: Path) -> None:
    save(tmp_path, 31337, [entry("run"), entry("done", exitCode=3, exitedAt=1700000100.0)])
    mtime = (tmp_path / TABLE).stat().st_mtime
    running, done = load(tmp_path)
    assert running.id == "run" and not running.running
    assert running.exitedAt == mtime  # the last time the dead keeper wrote it
    assert running.exitCode is None
    assert running.lost is not None and "keeper (pid 31337)" in running.lost
    assert "exit code is unknown" in running.lost
    assert done == entry("done", exitCode=3, exitedAt=1700000100.0)


def test_missing_table_loads_empty(tmp_path: Path) -> None:
    assert load(tmp_path) == []


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b"[]", b'{"keeper": 1}', b'{"sessions": {}}', b""],
    ids=["not-json", "not-utf8", "a-list", "no-sessions", "sessions-not-a-list", "empty"],
)
def test_damaged_table_loads_empty(tmp_path: Path, content: bytes) -> None:
    (tmp_path / TABLE).write_bytes(content)
    assert load(tmp_path) == []


def test_malformed_entries_are_skipped(tmp_path: Path) -> None:
    good = entry("good", exitCode=0, exitedAt=5.0).to_json()
    missing = {k: v for k, v in good.items() if k != "cwd"}
    bad = [
        missing,
        {**good, "args": "-l"},
        {**good, "args": ["-l", 3]},
        {**good, "name": None},
        {**good, "id": 7},
        "a string",
        42,
        None,
    ]
    (tmp_path / TABLE).write_text(json.dumps({"keeper": 1, "sessions": [*bad, good]}))
    assert load(tmp_path) == [entry("good", exitCode=0, exitedAt=5.0)]


def test_unknown_fields_are_ignored(tmp_path: Path) -> None:
    obj = {**entry("a", exitedAt=1.0).to_json(), "fromTheFuture": True}
    (tmp_path / TABLE).write_text(json.dumps({"keeper": 1, "sessions": [obj]}))
    assert load(tmp_path) == [entry("a", exitedAt=1.0)]


@pytest.mark.parametrize("bad", [{"cols": None}, {"pid": "x"}, {"createdAt": None}])
def test_entries_with_numbers_that_are_not_numbers_are_skipped(
    tmp_path: Path, bad: dict[str, Any]
) -> None:
    obj = {**entry("a", exitedAt=1.0).to_json(), **bad}
    (tmp_path / TABLE).write_text(json.dumps({"keeper": 1, "sessions": [obj]}))
    assert load(tmp_path) == []


HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("created-far-future", {"createdAt": 1e20}),
    ("created-far-past", {"createdAt": -1e20}),
    ("created-nan", {"createdAt": float("nan")}),
    ("created-infinite", {"createdAt": float("inf")}),
    ("exited-far-future", {"exitedAt": 1e20}),
    ("cols-huge", {"cols": 10**9}),
    ("rows-negative", {"rows": -5}),
    ("cols-zero", {"cols": 0}),
    ("id-traversal", {"id": "../etc"}),
    ("id-empty", {"id": ""}),
    ("id-too-long", {"id": "x" * 129}),
    ("pid-zero", {"pid": 0}),
    ("pid-negative", {"pid": -1}),
    ("pid-huge", {"pid": 2**40}),
    ("exit-code-huge", {"exitCode": 10**6}),
    ("exit-code-negative", {"exitCode": -1}),
    ("name-too-long", {"name": "n" * 5000}),
    ("cwd-too-long", {"cwd": "/" * 5000}),
    ("lost-too-long", {"lost": "x" * 10000}),
]
"""Values a sessions.json may hold that no session has (tests/integration uses them too)."""


def hostile_table(good: list[dict[str, Any]]) -> str:
    """sessions.json with `good` and one entry for each HOSTILE value (id `bad-N`, unless the
    value is the id): NaN and Infinity as Python's json writes and reads them."""
    bad = [
        {**entry(f"bad-{i}", exitCode=0, exitedAt=1700000100.0).to_json(), **changes}
        for i, (_, changes) in enumerate(HOSTILE)
    ]
    return json.dumps({"keeper": 1, "sessions": [*good, *bad]})


def test_hostile_values_are_skipped_with_one_line_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = entry("good", exitCode=0, exitedAt=1700000100.5)
    (tmp_path / TABLE).write_text(hostile_table([good.to_json()]))
    with caplog.at_level(logging.WARNING, "vibetunnel.keeper"):
        assert load(tmp_path) == [good]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == len(HOSTILE)
    for i, (line, (_, changes)) in enumerate(zip(lines, HOSTILE, strict=True)):
        field = next(iter(changes))
        assert f"entry {i + 1} " in line and "skipped" in line and field in line


def test_the_largest_legal_values_are_kept(tmp_path: Path) -> None:
    big = entry(
        "x" * 128,
        name="n" * 4096,
        cwd="/" * 4096,
        cols=1000,
        rows=1,
        pid=2**31 - 1,
        createdAt=253402300799.0,
        exitCode=255,
        exitedAt=0.0,
    )
    save(tmp_path, 1, [big])
    assert load(tmp_path) == [big]
