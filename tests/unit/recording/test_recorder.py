"""Recordings' index worker: changes are applied in order and written once per batch."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import UNIT, wait_until
from vibetunnel.recording.recorder import Recordings

T0 = 1704067200.0


def entry(session_id: str) -> dict[str, object]:
    return {"id": session_id, "command": "cat", "argv": ["cat"], "startedAt": T0}


def stored(folder: Path) -> list[dict[str, Any]]:
    data = json.loads((folder / "metadata.json").read_text())
    recordings: list[dict[str, Any]] = data["recordings"]
    return recordings


def test_sessions_started_at_once_are_one_index_write(
    tmp_path: Path, writes: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "recordings"
    recordings = Recordings(folder)
    assert recordings.error is None and len(writes) == 1  # load() writes the repaired index
    # Hold the worker in the first change while 100 more sessions start and some end.
    gate, held = threading.Event(), threading.Event()
    real_start = recordings.index.start

    def gated(e: dict[str, Any], *, save: bool = True) -> None:
        if e["id"] == "s000":
            held.set()
            assert gate.wait(10 * UNIT)
        real_start(e, save=save)

    monkeypatch.setattr(recordings.index, "start", gated)
    try:
        for i in range(101):
            recordings.started(entry(f"s{i:03}"))
        assert held.wait(5 * UNIT)
        recordings.finished("s007", 3, T0 + 2)
        dropped = recordings.forget_unwritten("s008")  # no .cast: a registration only
    finally:
        gate.set()
        recordings.close()
    assert dropped.result(5 * UNIT) is True
    assert len(writes) == 2, "one write for the whole batch"
    on_disk = {e["id"]: e for e in stored(folder)}
    assert sorted(on_disk) == sorted(f"s{i:03}" for i in range(101) if i != 8)
    assert on_disk["s007"]["exitCode"] == 3
    assert on_disk["s007"]["endedAt"] is not None
    assert {e["id"] for e in recordings.index.list()} == set(on_disk)


def test_each_quiet_change_is_written_before_the_worker_idles(
    tmp_path: Path, writes: list[bytes]
) -> None:
    folder = tmp_path / "recordings"
    recordings = Recordings(folder)
    try:
        recordings.started(entry("a"))
        recordings.forget_unwritten("zz").result(5 * UNIT)  # waits for the worker's queue
        assert [e["id"] for e in stored(folder)] == ["a"]
        recordings.finished("a", 0, T0 + 1)
    finally:
        recordings.close()
    assert stored(folder)[0]["exitCode"] == 0
    assert not recordings.index.dirty


def test_a_change_soon_after_a_write_is_written_a_moment_later(
    tmp_path: Path, writes: list[bytes]
) -> None:
    folder = tmp_path / "recordings"
    recordings = Recordings(folder)
    try:
        for name in ("a", "b", "c"):  # one after the other, each on a worker gone idle
            recordings.started(entry(name))
            recordings.forget_unwritten("zz").result(5 * UNIT)
        wait_until(
            lambda: [e["id"] for e in stored(folder)] == ["a", "b", "c"],
            what="the changes put off by SAVE_GAP on disk",
        )
        assert len(writes) <= 4  # load, then at most one per change
    finally:
        recordings.close()


def test_close_writes_a_change_put_off(tmp_path: Path, writes: list[bytes]) -> None:
    folder = tmp_path / "recordings"
    recordings = Recordings(folder)
    recordings.started(entry("a"))
    recordings.forget_unwritten("zz").result(5 * UNIT)
    recordings.started(entry("b"))  # most likely within SAVE_GAP of a's write
    recordings.close()
    assert [e["id"] for e in stored(folder)] == ["a", "b"]
    assert not recordings.index.dirty
