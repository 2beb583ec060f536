"""RecordingIndex: metadata.json always whole, rebuilt and repaired from the .cast files."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import UNIT
from vibetunnel.errors import NotFound, RecordingNotFound
from vibetunnel.protocol.times import iso, unix
from vibetunnel.recording.asciicast import event_line, header_line, parse
from vibetunnel.recording.index import RecordingIndex

T0 = 1704067200.0  # 2024-01-01T00:00:00Z
DAY = 86400.0


def write_cast(
    folder: Path,
    id: str,
    events: list[tuple[float, str, str]] | None = None,
    *,
    timestamp: float = T0,
    tail: str = "",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{id}.cast"
    text = header_line(100, 30, timestamp, {"TERM": "xterm"}, "bash -l", f"title {id}")
    if events is None:
        events = [(0.5, "o", "hello\r\n"), (2.25, "o", "bye\r\n")]
    text += "".join(event_line(*e) for e in events)
    path.write_text(text + tail, encoding="utf-8")
    return path


def entry(id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": id,
        "name": f"name {id}",
        "command": "bash",
        "cwd": "/home/u",
        "size": "80x24",
        "startedAt": T0,
    }
    base.update(fields)
    return base


def stored(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "metadata.json").read_text())
    return data


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
def index(folder: Path) -> RecordingIndex:
    idx = RecordingIndex(folder)
    idx.load()
    return idx


def test_iso_round_trip() -> None:
    assert iso(T0) == "2024-01-01T00:00:00.000Z"
    assert iso(T0 + 1.5) == "2024-01-01T00:00:01.500Z"
    assert unix(iso(T0 + 1.5)) == T0 + 1.5
    assert unix("2024-01-01T00:00:00") == T0  # naive means UTC


def test_load_on_an_empty_home_makes_a_private_index(folder: Path) -> None:
    idx = RecordingIndex(folder)
    idx.load()
    assert idx.list() == []
    assert stored(folder) == {"version": 1, "recordings": []}
    assert stat.S_IMODE((folder / "metadata.json").stat().st_mode) == 0o600


def test_start_and_finish(index: RecordingIndex, folder: Path) -> None:
    path = write_cast(folder, "abc")
    index.start(entry("abc"))
    got = index.get("abc")
    assert got["startedAt"] == "2024-01-01T00:00:00.000Z"
    assert got["endedAt"] is None and got["duration"] is None and got["exitCode"] is None
    assert got["bytes"] == path.stat().st_size  # live size while running
    index.finish("abc", 3, T0 + 12.5)
    got = index.get("abc")
    assert got == {
        "id": "abc",
        "name": "name abc",
        "command": "bash",
        "argv": None,
        "cwd": "/home/u",
        "size": "80x24",
        "startedAt": "2024-01-01T00:00:00.000Z",
        "endedAt": "2024-01-01T00:00:12.500Z",
        "duration": 12.5,
        "exitCode": 3,
        "bytes": path.stat().st_size,
    }
    assert stored(folder)["recordings"] == [got]
    # A second index sees the same thing.
    other = RecordingIndex(folder)
    other.load()
    assert other.list() == [got]


def test_start_fills_defaults_and_accepts_iso_times(index: RecordingIndex) -> None:
    index.start({"id": "x1", "startedAt": "2024-01-01T00:00:00.000Z", "extra": 1})
    got = index.get("x1")
    assert set(got) == {
        "id", "name", "command", "argv", "cwd", "size", "startedAt",
        "endedAt", "duration", "exitCode", "bytes",
    }  # fmt: skip
    assert got["bytes"] == 0 and got["cwd"] is None


@pytest.mark.parametrize(
    "bad",
    [{}, {"id": "../x"}, {"id": ""}, {"id": 5}, entry("ok", size=5), entry("ok", startedAt="x")],
)
def test_start_rejects_bad_entries(index: RecordingIndex, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        index.start(bad)


def test_start_replaces(index: RecordingIndex) -> None:
    index.start(entry("a", name="one"))
    index.start(entry("a", name="two"))
    assert [e["name"] for e in index.list()] == ["two"]


def test_list_is_newest_first_and_returns_copies(index: RecordingIndex) -> None:
    for i, id in enumerate(["old", "mid", "new"]):
        index.start(entry(id, startedAt=T0 + i))
    listed = index.list()
    assert [e["id"] for e in listed] == ["new", "mid", "old"]
    listed[0]["name"] = "changed"
    assert index.get("new")["name"] == "name new"


def test_get_and_finish_unknown(index: RecordingIndex) -> None:
    with pytest.raises(RecordingNotFound):
        index.get("nope")
    with pytest.raises(RecordingNotFound):
        index.finish("nope", 0, T0)
    assert issubclass(RecordingNotFound, NotFound)


# -- open ---------------------------------------------------------------------


def test_open_a_real_recording(index: RecordingIndex, folder: Path) -> None:
    path = write_cast(folder, "Session_1-a")
    with index.open("Session_1-a") as f:
        assert f.read() == path.read_bytes()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "..",
        "../x",
        "../recordings/ok",
        "a/b",
        "a\\b",
        "%2e%2e",
        "%2e%2e%2fetc%2fpasswd",
        "..%2fx",
        "/etc/passwd",
        "/",
        "ok\0",
        "\0",
        "ok\n",
        "ok.cast",
        "-leading",
        "_leading",
        " ok",
        "ok ",
        "é",
        "a" * 129,
        "a" * 10_000,
        "metadata",  # no metadata.cast: a file must exist
        "missing",
    ],
)
def test_open_rejects(index: RecordingIndex, folder: Path, bad: str) -> None:
    write_cast(folder, "ok")
    (folder.parent / "x.cast").write_text("outside")
    with pytest.raises(RecordingNotFound):
        index.open(bad)


def test_open_accepts_the_longest_id(index: RecordingIndex, folder: Path) -> None:
    write_cast(folder, "a" * 128)
    with index.open("a" * 128) as f:
        assert f.read(1) == b"{"


def test_open_rejects_a_symlink_out_of_the_folder(
    index: RecordingIndex, folder: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (folder / "evil.cast").symlink_to(secret)
    with pytest.raises(RecordingNotFound):
        index.open("evil")


def test_open_rejects_a_symlink_inside_the_folder(index: RecordingIndex, folder: Path) -> None:
    write_cast(folder, "real")
    (folder / "alias.cast").symlink_to(folder / "real.cast")
    with pytest.raises(RecordingNotFound):
        index.open("alias")


def test_open_rejects_a_hard_link(index: RecordingIndex, folder: Path, tmp_path: Path) -> None:
    # A hard link is a second name for a file anywhere on the file system (~/.ssh/id_rsa):
    # nothing in the folder tells it from a recording but its link count.
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.link(secret, folder / "evil.cast")
    with pytest.raises(RecordingNotFound):
        index.open("evil")


def test_open_rejects_a_fifo_without_blocking(index: RecordingIndex, folder: Path) -> None:
    os.mkfifo(folder / "pipe.cast")
    with pytest.raises(RecordingNotFound):
        index.open("pipe")  # opened O_NONBLOCK: no writer would ever come


def test_open_rejects_a_folder_named_like_a_cast(index: RecordingIndex, folder: Path) -> None:
    (folder / "dir.cast").mkdir()
    with pytest.raises(RecordingNotFound):
        index.open("dir")


# -- delete and prune ---------------------------------------------------------


def test_delete(index: RecordingIndex, folder: Path) -> None:
    path = write_cast(folder, "gone")
    index.start(entry("gone"))
    index.delete("gone")
    assert not path.exists()
    assert index.list() == [] and stored(folder)["recordings"] == []
    with pytest.raises(RecordingNotFound):
        index.delete("gone")


def test_delete_a_file_without_entry_or_entry_without_file(
    index: RecordingIndex, folder: Path
) -> None:
    path = write_cast(folder, "fileonly")
    index.delete("fileonly")
    assert not path.exists()
    index.start(entry("entryonly"))
    index.delete("entryonly")
    assert index.list() == []


def test_delete_without_save_of_an_entry_without_file(index: RecordingIndex) -> None:
    # A vt registration that never made its file: the entry goes, in memory, no error.
    index.start(entry("entryonly"))
    index.delete("entryonly", save=False)
    assert index.list() == [] and index.dirty


@pytest.mark.parametrize("bad", ["..", "../x", "/etc/passwd", "", "a/b", "x\0"])
def test_delete_rejects_bad_ids(index: RecordingIndex, folder: Path, bad: str) -> None:
    with pytest.raises(RecordingNotFound):
        index.delete(bad)


def test_prune(index: RecordingIndex, folder: Path) -> None:
    now = T0 + 30 * DAY
    for id, ended in [("ancient", T0), ("old", now - 8 * DAY), ("recent", now - 1 * DAY)]:
        write_cast(folder, id)
        index.start(entry(id, startedAt=ended - 10))
        index.finish(id, 0, ended)
    write_cast(folder, "running")
    index.start(entry("running", startedAt=T0))  # old but still being written
    assert index.prune(7, now=now) == ["ancient", "old"]
    assert sorted(e["id"] for e in index.list()) == ["recent", "running"]
    assert sorted(p.name for p in folder.glob("*.cast")) == ["recent.cast", "running.cast"]
    assert [e["id"] for e in stored(folder)["recordings"]] == ["recent", "running"]
    assert index.prune(7, now=now) == []


def test_prune_with_the_real_clock(index: RecordingIndex, folder: Path) -> None:
    write_cast(folder, "a")
    index.start(entry("a", startedAt=T0))
    index.finish("a", 0, T0 + 1)
    assert index.prune(1) == ["a"]


# -- atomic writes ------------------------------------------------------------


def test_a_failed_write_leaves_the_old_index(
    index: RecordingIndex, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.start(entry("keep"))
    before = (folder / "metadata.json").read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        index.start(entry("new"))
    monkeypatch.undo()
    assert (folder / "metadata.json").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json"]  # no temp left


def test_a_crash_mid_write_leaves_the_old_index(
    index: RecordingIndex, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.start(entry("keep"))
    before = (folder / "metadata.json").read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def fileno(self) -> int:
            return int(self.f.fileno())

        def write(self, data: bytes) -> int:
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise KeyboardInterrupt  # even a BaseException must not replace the index

    def fdopen(fd: int, mode: str) -> HalfWriter:
        return HalfWriter(real_fdopen(fd, mode))

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(KeyboardInterrupt):
        index.finish("keep", 0, T0 + 1)
    monkeypatch.undo()
    assert (folder / "metadata.json").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json"]


def test_stale_temp_files_are_removed_on_load(folder: Path) -> None:
    folder.mkdir()
    (folder / ".metadata.json.abc123.tmp").write_text('{"half": ')
    RecordingIndex(folder).load()
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json"]


def test_concurrent_changes_are_all_kept(index: RecordingIndex, folder: Path) -> None:
    def add(n: int) -> None:
        for i in range(20):
            index.start(entry(f"t{n}-{i}"))

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(index.list()) == 120
    assert len(stored(folder)["recordings"]) == 120


def test_changes_without_save_are_written_at_once_by_the_next_save(
    index: RecordingIndex, folder: Path, writes: list[bytes]
) -> None:
    write_cast(folder, "gone")
    for i in range(50):
        index.start(entry(f"s{i:02}"), save=False)
    index.finish("s00", 0, T0 + 1, save=False)
    index.start(entry("gone"), save=False)
    index.delete("gone", save=False)
    assert index.dirty and writes == []
    assert len(index.list()) == 50  # readers see memory, not the disk
    index.save()
    assert len(writes) == 1 and not index.dirty
    ids = [e["id"] for e in stored(folder)["recordings"]]
    assert ids == [f"s{i:02}" for i in range(50)]
    assert stored(folder)["recordings"][0]["exitCode"] == 0
    index.save()  # nothing changed since: nothing written
    assert len(writes) == 1


def test_a_failed_save_keeps_the_changes_for_the_next(
    index: RecordingIndex, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.start(entry("a"), save=False)

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        index.save()
    monkeypatch.undo()
    assert index.dirty
    index.save()
    assert [e["id"] for e in stored(folder)["recordings"]] == ["a"]


def test_readers_never_wait_for_a_write_stuck_in_fsync(
    index: RecordingIndex, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow disk: the writer's fsync blocks until released. list() and get() still answer,
    # with the new entry already there (the disk lags the memory, never the other way).
    index.start(entry("old"))
    in_fsync, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        assert release.wait(10 * UNIT)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    writer = threading.Thread(target=index.start, args=(entry("new"),))
    writer.start()
    try:
        assert in_fsync.wait(5 * UNIT)
        answers: list[list[str]] = []
        reader = threading.Thread(
            target=lambda: answers.append(sorted(e["id"] for e in index.list()))
        )
        reader.start()
        reader.join(2 * UNIT)
        assert answers == [["new", "old"]], "list() waited for the fsync"
        assert index.get("new")["id"] == "new"
    finally:
        release.set()
        writer.join(5 * UNIT)
    assert [e["id"] for e in stored(folder)["recordings"]] == ["new", "old"]


# -- rebuild and repair -------------------------------------------------------


def expected_rebuilt(id: str, path: Path) -> dict[str, Any]:
    return {
        "id": id,
        "name": f"title {id}",
        "command": "bash -l",
        "argv": None,
        "cwd": None,
        "size": "100x30",
        "startedAt": "2024-01-01T00:00:00.000Z",
        "endedAt": "2024-01-01T00:00:02.250Z",
        "duration": 2.25,
        "exitCode": None,
        "bytes": path.stat().st_size,
    }


@pytest.mark.parametrize(
    "damage",
    [
        None,  # missing
        b"",
        b"not json at all",
        b'{"version": 1, "recordings": [',  # torn
        b"[]",
        b'"a string"',
        b'{"version": 1}',
        b'{"version": 1, "recordings": {"a": 1}}',
        b'{"version": 1, "recordings": [1, "x", null]}',
        b'{"version": 1, "recordings": [{"id": "rec"}]}',
        b"\xff\xfe garbage",
    ],
)
def test_rebuild_from_the_casts(folder: Path, damage: bytes | None) -> None:
    path = write_cast(folder, "rec")
    if damage is not None:
        (folder / "metadata.json").write_bytes(damage)
    idx = RecordingIndex(folder)
    idx.load()
    assert idx.list() == [expected_rebuilt("rec", path)]
    assert stored(folder)["recordings"] == [expected_rebuilt("rec", path)]


def test_good_entries_survive_beside_damaged_ones(folder: Path, index: RecordingIndex) -> None:
    write_cast(folder, "good")
    path = write_cast(folder, "bad")
    index.start(entry("good"))
    index.finish("good", 7, T0 + 5)
    document = stored(folder)
    document["recordings"].append({"id": "bad", "name": 12})
    (folder / "metadata.json").write_text(json.dumps(document))
    idx = RecordingIndex(folder)
    idx.load()
    assert idx.get("good")["exitCode"] == 7
    assert idx.get("bad") == expected_rebuilt("bad", path)


def test_entries_whose_file_is_gone_are_dropped(folder: Path, index: RecordingIndex) -> None:
    write_cast(folder, "stays")
    path = write_cast(folder, "goes")
    index.start(entry("stays"))
    index.start(entry("goes"))
    index.finish("stays", 0, T0 + 1)
    index.finish("goes", 0, T0 + 1)
    path.unlink()
    idx = RecordingIndex(folder)
    idx.load()
    assert [e["id"] for e in idx.list()] == ["stays"]
    assert [e["id"] for e in stored(folder)["recordings"]] == ["stays"]


def test_other_files_are_ignored(folder: Path) -> None:
    write_cast(folder, "rec")
    (folder / "notes.txt").write_text("x")
    (folder / "bad name.cast").write_text("x")
    (folder / ".hidden.cast").write_text("x")
    idx = RecordingIndex(folder)
    idx.load()
    assert [e["id"] for e in idx.list()] == ["rec"]


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\n", b'{"version": 2, "wid', b'{"version": 1}\n[0, "o", "x"]\n', b"\xff\n"],
)
def test_a_cast_without_a_valid_header_is_left_alone(folder: Path, content: bytes) -> None:
    write_cast(folder, "fine")
    (folder / "broken.cast").write_bytes(content)
    idx = RecordingIndex(folder)
    idx.load()
    assert [e["id"] for e in idx.list()] == ["fine"]
    assert (folder / "broken.cast").read_bytes() == content


TORN_TAILS = ['[3.5, "o", "half', "[", '[3.5, "o", "x"', "\0\0\0\0", '[3.5, "o", "\\u00']


@pytest.mark.parametrize("tail", TORN_TAILS)
def test_a_torn_cast_is_repaired(folder: Path, tail: str) -> None:
    path = write_cast(folder, "torn", tail=tail)
    whole = path.read_bytes()[: -len(tail.encode())]
    idx = RecordingIndex(folder)
    idx.load()
    assert path.read_bytes() == whole
    assert idx.get("torn") == expected_rebuilt("torn", path)
    header, events = parse(path.read_text())
    assert [e[2] for e in events] == ["hello\r\n", "bye\r\n"]


def test_a_torn_multibyte_character_is_repaired(folder: Path) -> None:
    path = write_cast(folder, "mb")
    whole = path.read_bytes()
    path.write_bytes(whole + event_line(3, "o", "😀").encode()[:-4])
    RecordingIndex(folder).load()
    assert path.read_bytes() == whole


def test_an_unterminated_whole_last_line_is_kept(folder: Path) -> None:
    path = write_cast(folder, "nonl", tail='[3.5, "o", "end"]')
    before = path.read_bytes()
    idx = RecordingIndex(folder)
    idx.load()
    assert path.read_bytes() == before
    assert idx.get("nonl")["duration"] == 3.5


def test_a_torn_header_only_cast_is_left_alone(folder: Path) -> None:
    path = folder / "h.cast"
    folder.mkdir()
    line = header_line(80, 24, T0, {}, "c", "t")
    path.write_text(line + '[0.1, "o"')
    idx = RecordingIndex(folder)
    idx.load()
    assert path.read_text() == line
    assert idx.get("h")["duration"] == 0.0


def test_repair_of_a_long_recording(folder: Path) -> None:
    events = [(i * 0.001, "o", "x" * (i % 300) + "\r\n") for i in range(20_000)]
    path = write_cast(folder, "long", events, tail='[99, "o", "to')
    whole = path.read_bytes()[: -len('[99, "o", "to')]
    idx = RecordingIndex(folder)
    idx.load()
    assert path.read_bytes() == whole
    assert idx.get("long")["duration"] == pytest.approx(19.999)


def test_a_recording_interrupted_by_a_crash_ends_at_its_last_event(folder: Path) -> None:
    path = write_cast(folder, "crashed", tail='[9.0, "o", "lo')
    before_crash = RecordingIndex(folder)
    before_crash.load()
    before_crash.start(entry("crashed", startedAt=T0))
    # The server dies here: no finish(). A new one starts.
    idx = RecordingIndex(folder)
    idx.load()
    got = idx.get("crashed")
    assert got["endedAt"] == "2024-01-01T00:00:02.250Z"
    assert got["duration"] == 2.25 and got["exitCode"] is None
    assert got["cwd"] == "/home/u"  # the stored entry, not a rebuilt one
    assert got["bytes"] == path.stat().st_size


def test_repair_never_cuts_a_file_a_symlink_points_to(folder: Path, tmp_path: Path) -> None:
    # A .cast that is a link out of the folder, with what looks like a torn tail: the
    # start-up repair used to truncate the file it points to.
    outside = tmp_path / "notes.txt"
    outside.write_text(header_line(80, 24, T0, {}, "c", "t") + '[1, "o", "precious')
    before = outside.read_bytes()
    folder.mkdir()
    (folder / "evil.cast").symlink_to(outside)
    idx = RecordingIndex(folder)
    idx.load()
    assert outside.read_bytes() == before
    assert idx.list() == []


def test_repair_never_cuts_a_hard_link(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "notes.txt"
    outside.write_text(header_line(80, 24, T0, {}, "c", "t") + '[1, "o", "precious')
    before = outside.read_bytes()
    folder.mkdir()
    os.link(outside, folder / "evil.cast")
    idx = RecordingIndex(folder)
    idx.load()
    assert outside.read_bytes() == before
    assert idx.list() == []


def test_links_fifos_and_folders_are_never_listed(folder: Path, tmp_path: Path) -> None:
    real = write_cast(folder, "real")
    (folder / "soft.cast").symlink_to(real)
    os.link(tmp_path / "recordings" / "real.cast", tmp_path / "second-name")
    os.mkfifo(folder / "pipe.cast")
    (folder / "dir.cast").mkdir()
    for repair in (True, False):
        idx = RecordingIndex(folder)
        idx.load(repair=repair)  # a FIFO opened for reading would block here: never opened
        # real.cast now has two links too: a file reachable by another name is not served.
        assert idx.list() == []
    os.unlink(tmp_path / "second-name")
    idx = RecordingIndex(folder)
    idx.load()
    assert [e["id"] for e in idx.list()] == ["real"]  # one name again: a recording again


def test_delete_removes_only_plain_files(index: RecordingIndex, folder: Path) -> None:
    (folder / "dir.cast").mkdir()
    with pytest.raises(RecordingNotFound):
        index.delete("dir")
    assert (folder / "dir.cast").is_dir()


def test_load_keeps_recordings_being_written(folder: Path, index: RecordingIndex) -> None:
    path = write_cast(folder, "live", tail='[3, "o", "partial')
    index.start(entry("live"))
    before = path.read_bytes()
    index.load()  # must not cut what the writer is in the middle of writing
    assert path.read_bytes() == before
    assert index.get("live")["endedAt"] is None


def test_load_without_repair_changes_nothing(folder: Path) -> None:
    path = write_cast(folder, "torn", tail='[3, "o", "x')
    before = path.read_bytes()
    (folder / "metadata.json").write_text("damaged")
    idx = RecordingIndex(folder)
    idx.load(repair=False)
    assert idx.list()[0]["duration"] == 2.25
    assert path.read_bytes() == before
    assert (folder / "metadata.json").read_text() == "damaged"


def test_load_without_repair_of_a_missing_folder(tmp_path: Path) -> None:
    idx = RecordingIndex(tmp_path / "nowhere")
    idx.load(repair=False)
    assert idx.list() == []
    assert not (tmp_path / "nowhere").exists()


def test_a_cast_with_absurd_times_is_still_listed(folder: Path) -> None:
    write_cast(folder, "odd", [(1e300, "o", "x")], timestamp=1e18)
    idx = RecordingIndex(folder)
    idx.load()
    assert idx.get("odd")["size"] == "100x30"


def test_an_unreadable_cast_is_skipped(folder: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    path = write_cast(folder, "locked")
    path.chmod(0)
    idx = RecordingIndex(folder)
    idx.load()
    assert idx.list() == []


def test_argv_is_kept_and_checked(index: RecordingIndex, folder: Path) -> None:
    write_cast(folder, "a")
    index.start(entry("a", command="vim 'my file'", argv=["vim", "my file"]))
    assert index.get("a")["argv"] == ["vim", "my file"]
    other = RecordingIndex(folder)
    other.load()
    assert other.get("a")["argv"] == ["vim", "my file"]
    for bad in ([], ["vim", 1], "vim"):
        with pytest.raises(ValueError):
            index.start(entry("b", argv=bad))


def test_an_index_written_before_argv_still_loads(folder: Path) -> None:
    write_cast(folder, "old")
    document = {"version": 1, "recordings": [dict(entry("old"), startedAt=iso(T0))]}
    for key in ("endedAt", "duration", "exitCode"):
        document["recordings"][0][key] = None
    document["recordings"][0]["bytes"] = 0
    (folder / "metadata.json").write_text(json.dumps(document))
    idx = RecordingIndex(folder)
    idx.load(repair=False)
    assert idx.get("old")["argv"] is None and idx.get("old")["name"] == "name old"
