"""The recordings budget: finished recordings go, oldest first, never a running session's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import UNIT
from tests.unit.recording.test_writer import flushed, new_writer
from vibetunnel.protocol.times import iso
from vibetunnel.recording.budget import choose, delete_unheld
from vibetunnel.recording.index import RecordingIndex
from vibetunnel.recording.recorder import Recordings

T0 = 1704067200.0
KB = 1000


def entry(rid: str, size: int, started: float, ended: bool = True) -> dict[str, Any]:
    return {
        "id": rid,
        "startedAt": iso(T0 + started),
        "endedAt": iso(T0 + started + 1) if ended else None,
        "bytes": size,
    }


def test_nothing_goes_within_the_budget() -> None:
    entries = [entry("a", 40, 0), entry("b", 60, 1)]
    assert choose(entries, 100, set()) == (100, [])


def test_the_oldest_finished_go_first_until_the_rest_is_within() -> None:
    entries = [entry("new", 30, 3), entry("old", 30, 0), entry("mid", 30, 2), entry("b", 30, 1)]
    total, chosen = choose(entries, 65, set())
    assert total == 120 and [e["id"] for e in chosen] == ["old", "b"]


def test_ties_in_age_go_in_id_order() -> None:
    _, chosen = choose([entry("z", 10, 0), entry("a", 10, 0)], 10, set())
    assert [e["id"] for e in chosen] == ["a"]


def test_never_one_unfinished_nor_one_whose_session_runs() -> None:
    entries = [
        entry("writing", 500, 0, ended=False),  # its file is being written
        entry("cut", 500, 1),  # ended at its size limit, its session runs on
        entry("done", 50, 2),
    ]
    total, chosen = choose(entries, 100, {"cut"})
    assert total == 1050 and [e["id"] for e in chosen] == ["done"], "all it can, still over"


# -- deleting -------------------------------------------------------------------------------


def cast(folder: Path, rid: str, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{rid}.cast"
    header = b'{"version": 2, "width": 80, "height": 24, "timestamp": 1704067200}\n'
    line = b'[0.5, "o", "' + b"x" * max(0, size - len(header) - 15) + b'"]\n'
    path.write_bytes(header + line)
    return path


def test_a_file_a_writer_holds_is_never_deleted(tmp_path: Path) -> None:
    # A vt that has not linked yet: its entry was rebuilt from the file, and looks finished.
    folder = tmp_path / "recordings"
    folder.mkdir()
    w = new_writer(folder / "held.cast")
    w.output("running")
    flushed()
    index = RecordingIndex(folder)
    index.load()
    assert index.get("held")["endedAt"] is not None
    assert delete_unheld(index, "held") is False
    assert (folder / "held.cast").exists() and index.get("held")
    w.close()
    flushed()
    assert delete_unheld(index, "held") is True
    assert not (folder / "held.cast").exists() and index.list() == []


def test_an_entry_whose_file_is_gone_goes(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    cast(folder, "gone", 200).unlink()
    index = RecordingIndex(folder)
    index.load()
    index.start({"id": "gone", "startedAt": T0}, save=False)
    index.finish("gone", 0, T0 + 1, save=False)
    assert delete_unheld(index, "gone") is True and index.list() == []


def idle(recs: Recordings) -> None:
    """Wait until the index worker has done everything queued so far."""
    recs.forget_unwritten("zz").result(5 * UNIT)
    recs.forget_unwritten("zz").result(5 * UNIT)  # and what those jobs queued


def recorded(recs: Recordings, rid: str, size: int, started: float, running: bool = False) -> None:
    recs.started({"id": rid, "command": "c", "argv": ["c"], "startedAt": T0 + started})
    cast(recs.folder, rid, size)
    if not running:
        recs.finished(rid, 0, T0 + started + 1)


def test_past_the_budget_the_oldest_finished_are_deleted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recs = Recordings(tmp_path / "recordings", budget=25 * KB)
    try:
        with caplog.at_level(logging.WARNING, logger="vibetunnel.recording.recorder"):
            recorded(recs, "live", 10 * KB, 0, running=True)  # the oldest, but it runs
            for n in range(4):
                recorded(recs, f"done{n}", 5 * KB, 1 + n)
            idle(recs)
            # 30 kB over 25: the oldest finished one went (the one running is older).
            assert {e["id"] for e in recs.index.list()} == {"live", "done1", "done2", "done3"}
            recorded(recs, "last", 5 * KB, 10)  # its end checks the budget again
            idle(recs)
        left = {e["id"] for e in recs.index.list()}
        assert left == {"live", "done2", "done3", "last"}
        assert sorted(p.stem for p in recs.folder.glob("*.cast")) == sorted(left)
        deleted = [r.getMessage() for r in caplog.records if "deleted" in r.getMessage()]
        assert len(deleted) == 2 and "done0" in deleted[0] and "done1" in deleted[1]
        assert all("--recordings-budget" in m for m in deleted)
    finally:
        recs.close()


def test_only_running_ones_left_over_the_budget_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recs = Recordings(tmp_path / "recordings", budget=8 * KB)
    try:
        with caplog.at_level(logging.WARNING, logger="vibetunnel.recording.recorder"):
            recorded(recs, "a", 6 * KB, 0, running=True)
            recorded(recs, "b", 6 * KB, 1, running=True)
            for _ in range(3):  # as the server's minute does
                recs.check_budget()
                idle(recs)
        said = [r.getMessage() for r in caplog.records if "only running" in r.getMessage()]
        assert len(said) == 1 and "12 KiB" not in said[0] and "11.72 KiB" in said[0]
        assert {e["id"] for e in recs.index.list()} == {"a", "b"}
        # Under the budget again (one ended and was deleted), then over: said again.
        recs.finished("a", 0, T0 + 2)
        idle(recs)
        assert {e["id"] for e in recs.index.list()} == {"b"}
        recorded(recs, "c", 6 * KB, 3, running=True)
        recs.check_budget()
        idle(recs)
        said = [r.getMessage() for r in caplog.records if "only running" in r.getMessage()]
        assert len(said) == 2
    finally:
        recs.close()


def test_a_recording_cut_at_its_limit_is_final_and_kept_while_its_session_runs(
    tmp_path: Path,
) -> None:
    recs = Recordings(tmp_path / "recordings", budget=8 * KB)
    try:
        recorded(recs, "cut", 6 * KB, 0, running=True)
        recs.cut("cut", T0 + 5)
        recorded(recs, "other", 6 * KB, 1, running=True)
        recs.check_budget()
        idle(recs)
        got = recs.index.get("cut")
        assert got["endedAt"] == iso(T0 + 5) and got["exitCode"] is None
        assert got["bytes"] == 6 * KB
        recs.finished("cut", 3, T0 + 60)  # its session ends: only the code is news
        recs.finished("other", 0, T0 + 61)
        idle(recs)
        # Both finished now: the oldest goes, the other stays within the budget.
        assert [e["id"] for e in recs.index.list()] == ["other"]
    finally:
        recs.close()


def test_the_exit_after_a_cut_keeps_the_end_of_the_recording(tmp_path: Path) -> None:
    recs = Recordings(tmp_path / "recordings")
    try:
        recorded(recs, "cut", 6 * KB, 0, running=True)
        recs.cut("cut", T0 + 5)
        recs.finished("cut", 3, T0 + 60)
        idle(recs)
        got = recs.index.get("cut")
        assert (got["endedAt"], got["duration"], got["exitCode"]) == (iso(T0 + 5), 5.0, 3)
    finally:
        recs.close()
