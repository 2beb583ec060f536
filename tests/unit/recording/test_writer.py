"""CastWriter: one shared thread, whole lines only, never stalls the caller."""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clock import FakeClock
from tests.conftest import UNIT
from vibetunnel.recording import asciicast
from vibetunnel.recording import writer as writer_module
from vibetunnel.recording.asciicast import parse, valid_prefix_length
from vibetunnel.recording.writer import CastWriter, flush_all

TIMEOUT = 10.0 * UNIT
SRC = Path(__file__).resolve().parents[3] / "src"


def new_writer(path: Path, clock: FakeClock | None = None, **kwargs: object) -> CastWriter:
    options: dict[str, object] = {
        "width": 80,
        "height": 24,
        "command": "bash",
        "title": "t",
        "env": {"SHELL": "/bin/bash", "TERM": "xterm-256color"},
        "timestamp": 1704067200.5,
    }
    options.update(kwargs)
    if clock is not None:
        options["clock"] = clock
    return CastWriter(path, **options)  # type: ignore[arg-type]


def flushed() -> None:
    assert flush_all(TIMEOUT), "the writer thread did not drain the queue in time"


def open_fds_to(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            pass
    return count


@pytest.fixture
def cast(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "rec.cast"
    flushed()


def test_header_and_events(cast: Path) -> None:
    clock = FakeClock(100.0)
    w = new_writer(cast, clock)
    clock.now += 0.5
    w.output("$ ls\r\n")
    clock.now += 0.25
    w.input("l")
    clock.now += 1.0
    w.resize(100, 30)
    w.close()
    flushed()
    header, events = parse(cast.read_text(encoding="utf-8"))
    assert header["version"] == 2
    assert (header["width"], header["height"], header["timestamp"]) == (80, 24, 1704067200)
    assert header["env"] == {"SHELL": "/bin/bash", "TERM": "xterm-256color"}
    assert (header["command"], header["title"]) == ("bash", "t")
    assert events == [(0.5, "o", "$ ls\r\n"), (0.75, "i", "l"), (1.75, "r", "100x30")]


def test_file_mode_is_0600_even_over_an_existing_file(cast: Path) -> None:
    cast.write_text("old content that must go\n" * 100)
    os.chmod(cast, 0o644)
    w = new_writer(cast)
    w.close()
    flushed()
    assert stat.S_IMODE(cast.stat().st_mode) == 0o600
    assert "old content" not in cast.read_text()


def test_missing_parent_folders_are_made(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "rec.cast"
    w = new_writer(path)
    w.output("x")
    w.close()
    flushed()
    assert parse(path.read_text())[1][0][2] == "x"


@pytest.mark.parametrize(
    "data",
    [
        'quotes " and \\ backslashes',
        "\x1b[?1049h\x1b[H\x1b[2J\x1b]0;title\x07",
        "".join(chr(c) for c in range(32)),
        "newlines\n\r\n\r",
        "emoji 😀👍🏽👨‍👩‍👧 CJK 漢字 한국어 combining e\u0301",
        "\u2028\u2029\x85",
    ],
)
def test_data_round_trips(cast: Path, data: str) -> None:
    w = new_writer(cast)
    w.output(data)
    w.input(data)
    w.close()
    flushed()
    text = cast.read_text(encoding="utf-8")
    assert len(text.split("\n")) == 4  # header, two events, "" after the last newline
    assert [e[2] for e in parse(text)[1]] == [data, data]


def test_times_never_decrease(cast: Path) -> None:
    clock = FakeClock(100.0)
    w = new_writer(cast, clock)
    for now in [100.1, 100.3, 100.2, 99.0, 100.5, 100.5, 100.4]:
        clock.now = now
        w.output("x")
    w.close()
    flushed()
    times = [t for t, _, _ in parse(cast.read_text())[1]]
    assert times == sorted(times)
    assert times[0] == pytest.approx(0.1) and times[-1] == pytest.approx(0.5)
    assert all(t >= 0 for t in times)


def test_real_clock_times_are_monotonic(cast: Path) -> None:
    w = new_writer(cast, clock=None)
    for i in range(1000):
        w.output(str(i))
    w.close()
    flushed()
    events = parse(cast.read_text())[1]
    assert [e[2] for e in events] == [str(i) for i in range(1000)]
    times = [e[0] for e in events]
    assert times == sorted(times)


def test_encoding_happens_in_the_writer_thread(cast: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: set[str] = set()
    real = asciicast.event_bytes

    def spy(t: float, kind: str, data: str) -> bytes:
        threads.add(threading.current_thread().name)
        return real(t, kind, data)

    monkeypatch.setattr("vibetunnel.recording.writer.event_bytes", spy)
    w = new_writer(cast)
    w.output("x")
    w.close()
    flushed()
    assert threads == {"vibetunnel-cast-writer"}


def test_one_thread_for_all_writers(tmp_path: Path) -> None:
    writers = [new_writer(tmp_path / f"{i}.cast") for i in range(20)]
    for w in writers:
        w.output("x")
        w.close()
    flushed()
    names = [t.name for t in threading.enumerate()]
    assert names.count("vibetunnel-cast-writer") == 1


def test_close_is_idempotent_and_later_events_are_ignored(cast: Path) -> None:
    w = new_writer(cast)
    w.output("before")
    w.close()
    w.close()
    assert w.closed
    w.output("after")
    w.input("after")
    w.resize(1, 1)
    flushed()
    assert [e[2] for e in parse(cast.read_text())[1]] == ["before"]
    assert open_fds_to(cast) == 0


def test_close_does_not_block(cast: Path) -> None:
    w = new_writer(cast)
    w.output("x" * 1_000_000)
    started = time.monotonic()
    w.close()
    assert time.monotonic() - started < 0.5 * TIMEOUT
    flushed()
    assert open_fds_to(cast) == 0


def test_a_forgotten_writer_is_closed_when_collected(cast: Path) -> None:
    w = new_writer(cast)
    w.output("x")
    flushed()
    assert open_fds_to(cast) == 1
    del w
    gc.collect()
    flushed()
    assert open_fds_to(cast) == 0
    assert parse(cast.read_text())[1][0][2] == "x"


def test_bytes_written_is_the_file_size(cast: Path) -> None:
    w = new_writer(cast)
    assert w.bytes_written == 0 or w.bytes_written == cast.stat().st_size
    w.output("héllo 😀")
    w.resize(10, 10)
    flushed()
    assert w.bytes_written == cast.stat().st_size > 0
    w.close()
    flushed()
    assert w.bytes_written == cast.stat().st_size


def test_flush_all_with_nothing_queued() -> None:
    assert flush_all(TIMEOUT)
    assert flush_all(TIMEOUT)


def test_many_writers_from_many_threads(tmp_path: Path) -> None:
    def record(i: int) -> None:
        w = new_writer(tmp_path / f"{i}.cast")
        for n in range(300):
            w.output(f"{i}:{n}\r\n")
        w.close()

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    flushed()
    for i in range(8):
        events = parse((tmp_path / f"{i}.cast").read_text())[1]
        assert [e[2] for e in events] == [f"{i}:{n}\r\n" for n in range(300)]


def test_a_big_flood_is_written_in_whole_lines(cast: Path) -> None:
    w = new_writer(cast)
    chunk = "y" * 65536
    for _ in range(200):  # 13 MB: several batches
        w.output(chunk)
    w.close()
    flushed()
    data = cast.read_bytes()
    assert valid_prefix_length(data) == len(data)
    assert len(parse(data.decode())[1]) == 200


def test_open_failure_is_logged_once_and_the_thread_lives_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    bad = new_writer(blocker / "rec.cast")
    for _ in range(5):
        bad.output("x")
    bad.close()
    good_path = tmp_path / "good.cast"
    good = new_writer(good_path)
    good.output("ok")
    good.close()
    with caplog.at_level(logging.ERROR, logger="vibetunnel.recording.writer"):
        flushed()
    assert len([r for r in caplog.records if "open failed" in r.getMessage()]) == 1
    assert parse(good_path.read_text())[1][0][2] == "ok"


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_a_link_in_place_of_the_file_is_never_written_through(
    tmp_path: Path, link: str, caplog: pytest.LogCaptureFixture
) -> None:
    # O_CREAT | O_TRUNC followed a symbolic link, and truncated a hard link's other name.
    outside = tmp_path / "precious.txt"
    outside.write_text("precious\n")
    path = tmp_path / "rec.cast"
    if link == "symbolic":
        path.symlink_to(outside)
    else:
        os.link(outside, path)
    w = new_writer(path)
    w.output("x")
    w.close()
    with caplog.at_level(logging.ERROR, logger="vibetunnel.recording.writer"):
        flushed()
    assert outside.read_text() == "precious\n"
    assert any("open failed" in r.getMessage() for r in caplog.records)


def test_disk_full_keeps_whole_lines_logs_once_and_recovers(
    cast: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = new_writer(cast)
    w.output("first")
    flushed()
    real_write = os.write
    full = threading.Event()
    full.set()

    def write(fd: int, data: bytes | memoryview) -> int:
        if full.is_set():
            # Half of it lands on disk, then the disk is full.
            done = real_write(fd, bytes(data[: max(1, len(data) // 2)]))
            if done < len(data):
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(writer_module, "_os_write", write)
    with caplog.at_level(logging.ERROR, logger="vibetunnel.recording.writer"):
        for i in range(3):
            w.output(f"lost {i}")
            flushed()
        data = cast.read_bytes()
        assert valid_prefix_length(data) == len(data)
        assert w.bytes_written == len(data)
        full.clear()  # space was freed
        w.output("second")
        w.close()
        flushed()
    assert [e[2] for e in parse(cast.read_text())[1]] == ["first", "second"]
    assert len([r for r in caplog.records if "write failed" in r.getMessage()]) == 1


def test_a_write_that_cannot_be_undone_stops_that_file_only(
    cast: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    w = new_writer(cast)
    w.output("first")
    flushed()

    def fail(fd: int, data: bytes | memoryview) -> int:
        raise OSError(errno.EIO, "I/O error")

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(writer_module, "_os_write", fail)
    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with caplog.at_level(logging.ERROR, logger="vibetunnel.recording.writer"):
        w.output("lost")
        flushed()
    monkeypatch.undo()
    w.output("also dropped: the file is given up")
    w.close()
    other = cast.with_name("other.cast")
    o = new_writer(other)
    o.output("fine")
    o.close()
    flushed()
    assert [e[2] for e in parse(cast.read_text())[1]] == ["first"]
    assert [e[2] for e in parse(other.read_text())[1]] == ["fine"]
    assert open_fds_to(cast) == 0


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from vibetunnel.recording.writer import CastWriter
w = CastWriter(Path(sys.argv[1]), width=80, height=24, command="c", title="t", env={})
i = 0
while True:
    w.output("line %d é😀 \\x1b[0m \\"q\\" \\\\ " % i + "z" * (i % 5000) + "\\r\\n")
    i += 1
    if i % 100 == 0:
        time.sleep(0.0005)
"""


@pytest.mark.parametrize("round_", range(3))
def test_sigkill_at_any_moment_leaves_a_valid_prefix(tmp_path: Path, round_: int) -> None:
    path = tmp_path / "killed.cast"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)], env=env)
    try:
        deadline = time.monotonic() + TIMEOUT
        target = 200_000 * (round_ + 1)
        while not path.exists() or path.stat().st_size < target:
            assert time.monotonic() < deadline, "the recorder never wrote enough"
            assert proc.poll() is None, "the recorder died"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT)
    data = path.read_bytes()
    good = valid_prefix_length(data)
    # At most the last line is torn.
    assert b"\n" not in data[good:]
    header, events = parse(data.decode("utf-8", "replace"))
    assert header["version"] == 2
    assert len(events) > 10
    for n, (_, kind, text) in enumerate(events):
        assert kind == "o" and text.startswith(f"line {n} ")


def test_the_real_asciinema_player_reads_our_files(tmp_path: Path) -> None:
    path = tmp_path / "real.cast"
    chunks = [
        "$ echo 'héllo' \"world\" \\\r\n",
        "\x1b[1;32mgreen\x1b[0m 😀 漢字 e\u0301\r\n",
        "tab\there\u2028sep\r\n",
    ]
    clock = FakeClock(100.0)
    w = new_writer(path, clock)
    for chunk in chunks:
        clock.now += 0.01
        w.output(chunk)
        w.input("typed")
        w.resize(90, 30)
    w.close()
    flushed()
    result = subprocess.run(
        [sys.executable, "-m", "asciinema", "cat", str(path)],
        capture_output=True,
        timeout=TIMEOUT * 3,
        # No controlling terminal: `asciinema cat` then leaves the tty mode alone.
        start_new_session=True,
        env={**os.environ, "ASCIINEMA_CONFIG_HOME": str(tmp_path / "asciinema")},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode("utf-8") == "".join(chunks)
    # And its own v2 reader agrees with ours on the header.
    header = json.loads(path.read_text().split("\n", 1)[0])
    assert header["version"] == 2 and header["width"] == 80


async def test_output_bytes_and_text_make_one_event(cast: Path) -> None:
    # A PTY's output comes as UTF-8 bytes, decoded on the writer thread; text still works,
    # and a lone surrogate in it is replaced there, as before.
    w = new_writer(cast)
    w.output("café ".encode())
    w.output("and \ud800 text ")
    w.output("😀".encode())
    w.close()
    flushed()
    _, events = parse(cast.read_text(encoding="utf-8"))
    assert [(e[1], e[2]) for e in events] == [("o", "café and \ufffd text 😀")]
