"""CastWriter.resume: carry on a recording another process began, with honest times."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from tests.conftest import UNIT
from vibetunnel.recording.asciicast import parse
from vibetunnel.recording.writer import CastWriter, flush_all

HEADER = {"version": 2, "width": 80, "height": 24, "timestamp": 1700000000}


def flushed() -> None:
    assert flush_all(5 * UNIT), "the writer thread did not drain the queue in time"


def begun(path: Path, *events: tuple[float, str, str]) -> bytes:
    """A recording as another process left it: whole lines."""
    lines = [json.dumps(HEADER)] + [json.dumps(list(e)) for e in events]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(data)
    return data


def test_appends_after_the_existing_lines_with_times_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "s.cast"
    before = begun(path, (1.0, "o", "$ "), (2.5, "o", "ls\r\n"))
    started_at = time.time() - 100
    w = CastWriter.resume(path, started_at)
    low = time.time() - started_at
    w.output("more €\r\n")
    w.input("q")
    w.resize(100, 30)
    high = time.time() - started_at
    w.close()
    flushed()
    data = path.read_bytes()
    assert data.startswith(before)  # nothing rewritten, no second header
    assert data.count(b'"version"') == 1
    header, events = parse(data.decode("utf-8"))
    assert header == HEADER
    assert [(k, d) for _, k, d in events] == [
        ("o", "$ "),
        ("o", "ls\r\n"),
        ("o", "more €\r\n"),
        ("i", "q"),
        ("r", "100x30"),
    ]
    new_times = [t for t, _, _ in events[2:]]
    assert new_times == sorted(new_times)
    assert all(low - 0.001 <= t <= high + 0.001 for t in new_times)  # about 100 s in
    assert min(new_times) >= 2.5
    assert w.bytes_written == len(data)


def test_the_clock_drives_times_after_resuming(tmp_path: Path) -> None:
    path = tmp_path / "s.cast"
    begun(path)
    now = [1000.0]
    started_at = time.time() - 50
    w = CastWriter.resume(path, started_at, clock=lambda: now[0])
    now[0] += 7.0
    w.input("x")
    w.close()
    flushed()
    _, [(t, kind, data)] = parse(path.read_text(encoding="utf-8"))
    assert (kind, data) == ("i", "x")
    assert 57.0 - 0.01 <= t <= 57.0 + UNIT  # 50 s before the resume, 7 after


def test_a_start_in_the_future_counts_from_now(tmp_path: Path) -> None:
    path = tmp_path / "s.cast"
    begun(path)
    w = CastWriter.resume(path, time.time() + 3600, clock=lambda: 10.0)
    w.input("x")
    w.close()
    flushed()
    _, [(t, _, _)] = parse(path.read_text(encoding="utf-8"))
    assert t == 0.0


def test_a_symlink_is_not_followed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "elsewhere.cast"
    before = begun(target, (1.0, "o", "keep me"))
    link = tmp_path / "s.cast"
    link.symlink_to(target)
    with caplog.at_level(logging.ERROR, logger="vibetunnel.recording.writer"):
        w = CastWriter.resume(link, time.time() - 10)
        w.output("through the link?")
        w.close()
        flushed()
    assert target.read_bytes() == before
    assert link.is_symlink()
    assert w.bytes_written == 0
    assert any("reopen" in r.getMessage() and str(link) in r.getMessage() for r in caplog.records)


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "gone.cast"
    w = CastWriter.resume(path, time.time() - 10)
    w.output("nowhere")
    w.close()
    flushed()
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_a_torn_tail_is_repaired_first(tmp_path: Path) -> None:
    path = tmp_path / "s.cast"
    begun(path, (1.0, "o", "whole\r\n"))
    with path.open("ab") as f:
        f.write(b'[1.5, "o", "torn by a ki')
    w = CastWriter.resume(path, time.time() - 10)
    w.output("after\r\n")
    w.close()
    flushed()
    _, events = parse(path.read_text(encoding="utf-8"))
    assert [d for _, _, d in events] == ["whole\r\n", "after\r\n"]


def test_a_hard_link_is_never_appended_to(tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    before = begun(outside, (1.0, "o", "mine"))
    os.link(outside, tmp_path / "s.cast")
    w = CastWriter.resume(tmp_path / "s.cast", time.time())
    w.output("appended")
    w.close()
    flushed()
    assert outside.read_bytes() == before
