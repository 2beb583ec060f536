"""A recording's size limit (CastWriter `max_bytes`): whole lines up to it, a marker saying
why, nothing after; a resumed file that ended there stays ended; writers hold their files."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.clock import T0, FakeClock
from tests.conftest import UNIT, wait_until
from tests.unit.recording.test_writer import flushed, new_writer, open_fds_to
from vibetunnel.recording import writer as writer_module
from vibetunnel.recording.asciicast import parse, valid_prefix_length
from vibetunnel.recording.recorder import Recordings
from vibetunnel.recording.writer import MARKER_ROOM, STOPPED, CastWriter

LIMIT = 8 * 1024
SAID = f"{STOPPED} of 8 KiB (--max-recording-size)"


class Told:
    """An `on_error` callback: counts its calls (made on the writer thread)."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.called.set()


def whole(path: Path) -> tuple[bytes, list[tuple[float, str, str]]]:
    """The file, checked to be whole lines only, and its events."""
    data = path.read_bytes()
    assert data.endswith(b"\n") and valid_prefix_length(data) == len(data), "whole lines only"
    return data, parse(data.decode("utf-8"))[1]


def test_output_in_a_loop_stops_at_the_limit_with_a_marker(tmp_path: Path) -> None:
    path = tmp_path / "loop.cast"
    told = Told()
    w = new_writer(path, max_bytes=LIMIT, on_error=told)
    for i in range(1000):
        w.output(f"line {i} {'x' * 40}\r\n")
    flushed()
    data, events = whole(path)
    assert len(data) <= LIMIT
    *output, marker = events
    assert marker[1:] == ("m", SAID), "the last line says why it ends there"
    text = "".join(e[2] for e in output)
    assert output and all(e[1] == "o" for e in output)
    assert f"line 0 {'x' * 40}\r\n" in text and "line 999" not in text
    assert (w.error, w.ended_at) == (SAID, marker[0])
    assert told.calls == 1
    assert open_fds_to(path) == 0, "the file is closed once it ends"
    w.output("after the end")
    w.resize(100, 30)
    w.close()
    flushed()
    assert path.read_bytes() == data, "nothing after the end"
    assert told.calls == 1


def test_the_event_that_does_not_fit_is_cut_to_fill_the_room(tmp_path: Path) -> None:
    path = tmp_path / "big.cast"
    w = new_writer(path, max_bytes=LIMIT)
    flood = "".join(f'{i:05} é😀\x1b[0m "q" \\\r\n' for i in range(2000))
    w.output(flood)
    w.close()
    flushed()
    data, events = whole(path)
    assert [e[1] for e in events] == ["o", "m"]
    assert flood.startswith(events[0][2]) and len(events[0][2]) > 1000
    marker = data.rsplit(b"\n", 2)[-2] + b"\n"
    # The cut output ends within a few bytes of the room (a character is up to 6 bytes
    # escaped), and the marker fits in what is left.
    assert LIMIT - MARKER_ROOM - 6 <= len(data) - len(marker) <= LIMIT - MARKER_ROOM
    assert len(data) <= LIMIT


def test_input_and_resizes_are_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "typed.cast"
    w = new_writer(path, max_bytes=LIMIT)
    w.input("a" * (2 * LIMIT))
    w.close()
    flushed()
    _, events = whole(path)
    assert [e[1] for e in events] == ["m"]


def test_a_recording_ended_at_its_limit_stays_ended_when_resumed(tmp_path: Path) -> None:
    path = tmp_path / "resumed.cast"
    first = new_writer(path, FakeClock(100.0), max_bytes=LIMIT)
    first.output("y" * (2 * LIMIT))
    first.close()
    flushed()
    data, events = whole(path)
    told = Told()
    # A later writer (the keeper's, the next server's), even with a larger limit.
    again = CastWriter.resume(path, 0.0, max_bytes=100 * LIMIT, on_error=told)
    assert told.called.wait(5 * UNIT)
    again.output("more")
    again.close()
    flushed()
    assert path.read_bytes() == data
    assert (again.error, again.ended_at) == (SAID, events[-1][0])


def test_a_resumed_file_carries_on_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "carried.cast"
    first = new_writer(path, max_bytes=LIMIT)
    first.output("a" * 1000)
    first.close()
    flushed()
    again = CastWriter.resume(path, 0.0, max_bytes=LIMIT)
    for _ in range(20):
        again.output("b" * 1000)
    again.close()
    flushed()
    data, events = whole(path)
    assert len(data) <= LIMIT
    assert events[0][2] == "a" * 1000 and events[1][2] == "b" * 1000
    assert events[-1][1:] == ("m", SAID)


def test_a_file_resumed_past_a_smaller_limit_ends_at_once_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "past.cast"
    first = new_writer(path)
    first.output("z" * (2 * LIMIT))
    first.close()
    flushed()
    data = path.read_bytes()
    told = Told()
    again = CastWriter.resume(path, 0.0, max_bytes=LIMIT, on_error=told)
    assert told.called.wait(5 * UNIT), "said before any event"
    again.close()
    flushed()
    assert path.read_bytes() == data, "no room for the marker: the file is left whole"
    assert again.error == SAID


def test_a_header_alone_over_the_limit_is_kept_and_nothing_else(tmp_path: Path) -> None:
    # A .cast has no meaning without its header: it is written whole, whatever the limit.
    path = tmp_path / "long.cast"
    w = new_writer(path, command="c" * LIMIT, max_bytes=LIMIT)
    w.output("x")
    w.close()
    flushed()
    data, events = whole(path)
    assert events == [] and data.count(b"\n") == 1
    assert w.error == SAID


def test_without_a_limit_nothing_stops(tmp_path: Path) -> None:
    path = tmp_path / "free.cast"
    w = new_writer(path)
    for _ in range(20):
        w.output("f" * LIMIT)
    w.close()
    flushed()
    data, events = whole(path)
    assert len(data) > 20 * LIMIT and {e[1] for e in events} == {"o"}
    assert w.error is None and w.ended_at is None


def test_a_writer_holds_its_file_while_it_is_open(tmp_path: Path) -> None:
    path = tmp_path / "held.cast"
    w = new_writer(path)
    w.output("x")
    flushed()
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        w.close()
        flushed()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # let go once closed
    finally:
        os.close(fd)


def test_a_file_deleted_as_it_opens_is_made_anew(tmp_path: Path) -> None:
    # A budget deleting an old recording of the same id holds it while it unlinks: the new
    # writer waits, then makes its own file rather than write into the deleted one.
    path = tmp_path / "same-id.cast"
    path.write_bytes(b"an old recording\n")
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    w = new_writer(path)
    w.output("new")
    try:
        # The writer has opened it (its descriptor and ours) and waits for the lock.
        wait_until(lambda: open_fds_to(path) == 2, what="the writer to open the old file")
        path.unlink()
    finally:
        os.close(fd)
    w.close()
    flushed()
    _, events = whole(path)
    assert [e[2] for e in events] == ["new"]


def test_asciinema_reads_a_recording_ended_at_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "played.cast"
    w = new_writer(path, max_bytes=LIMIT)
    for i in range(500):
        w.output(f"row {i}\r\n")
    w.close()
    flushed()
    _, events = whole(path)
    result = subprocess.run(
        [sys.executable, "-m", "asciinema", "cat", str(path)],
        capture_output=True,
        timeout=30 * UNIT,
        start_new_session=True,  # no controlling terminal: its tty mode is left alone
        env={**os.environ, "ASCIINEMA_CONFIG_HOME": str(tmp_path / "asciinema")},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    printed = result.stdout.decode("utf-8")
    assert printed == "".join(e[2] for e in events if e[1] == "o")
    assert printed.startswith("row 0\r\n") and STOPPED not in printed


def test_a_session_is_told_of_a_failure_and_then_of_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = Recordings(tmp_path / "recordings", max_bytes=LIMIT)
    session = SimpleNamespace(
        id="s1", name="sh", command="sh", args=[], cwd="/", cols=80, rows=24, created_at=T0
    )
    try:
        recorder = recs.for_session(session)  # type: ignore[arg-type]
        assert recorder is not None
        told: list[str | None] = []
        recorder.watch(lambda: told.append(recorder.error))
        recorder.output(b"first")
        flushed()

        def full(fd: int, data: bytes | memoryview) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(writer_module, "_os_write", full)
        recorder.output(b"lost")
        flushed()
        monkeypatch.undo()
        assert len(told) == 1 and "write failed: No space left" in str(told[0])
        for _ in range(10):
            recorder.output(b"y" * 1000)
        flushed()
        assert told[1:] == [SAID], "then the limit, which ends it"
        recs.forget_unwritten("zz").result(5 * UNIT)  # the index worker has done the cut
        got = recs.index.get("s1")
        size = (tmp_path / "recordings" / "s1.cast").stat().st_size
        assert got["endedAt"] is not None and got["bytes"] == size <= LIMIT
    finally:
        recs.close()
