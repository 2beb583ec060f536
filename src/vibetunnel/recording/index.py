"""`<home>/recordings/metadata.json`: the index of recordings, always whole JSON.

Every save writes the whole index with `files.write_private` (a temporary file in
the same folder, fsynced, renamed over the old one), so a crash leaves either the
old index or the new one. The fsync happens outside the lock that guards the
entries: a reader (GET /api/recordings) never waits for the disk. Changes made with
`save=False` stay in memory until the next `save()`, which writes them all at once
(and a save finds nothing to do if a concurrent one already wrote its changes): the
server's index worker saves once per batch of queued changes, not once per change. A lost or
damaged index is rebuilt from the .cast files themselves (header, last event
time); a .cast whose last line was torn by a crash is truncated back to its
whole lines.

File format: `{"version": 1, "recordings": [entry, ...]}`, where an entry is
`{id, name, command, argv, cwd, size, startedAt, endedAt, duration, exitCode, bytes}`:
`command` is the command line (shell-quoted), `argv` the program and its arguments, or null
when only the line is known (an entry rebuilt from a .cast header, or written before argv).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, BinaryIO

from vibetunnel.errors import RecordingNotFound
from vibetunnel.files import (
    is_plain,
    open_plain,
    private_dir,
    remove_stale_temps,
    write_private,
)
from vibetunnel.protocol.ids import ID_PATTERN
from vibetunnel.protocol.sessions import (
    MAX_ARGS,
    MAX_EXIT,
    id_problem,
    int_problem,
    stamp_problem,
    text_problem,
)
from vibetunnel.protocol.times import EARLIEST, LATEST, iso, unix
from vibetunnel.protocol.values import is_number
from vibetunnel.recording.asciicast import (
    CastFormatError,
    Event,
    parse_event,
    parse_header,
    valid_prefix_length,
)

log = logging.getLogger(__name__)

INDEX_NAME = "metadata.json"
INDEX_VERSION = 1
SUFFIX = ".cast"

Entry = dict[str, Any]

_MAX_HEADER = 1024 * 1024
_TAIL_BLOCK = 64 * 1024
_DEFAULTS: Entry = {
    "name": "",
    "command": "",
    "argv": None,
    "cwd": None,
    "size": "80x24",
    "endedAt": None,
    "duration": None,
    "exitCode": None,
    "bytes": 0,
}


_SIZE = re.compile(r"[1-9][0-9]{0,5}x[1-9][0-9]{0,5}")
"""COLSxROWS, as a .cast header gives them (any positive size, within reason)."""
MAX_BYTES = 2**63 - 1
MAX_DURATION = LATEST - EARLIEST


def _is_argv(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(a, str) for a in value)


def _is_duration(value: object) -> bool:
    return is_number(value) and 0 <= value <= MAX_DURATION


def _entry_problem(entry: object) -> str | None:
    """What is wrong with one entry read from metadata.json, or None: the shape, and every
    value a route formats or computes with (times it can write again, sizes, counts)."""
    if not isinstance(entry, dict):
        return "an entry must be a JSON object"
    size = entry.get("size")
    checks = (
        id_problem(entry.get("id")),
        text_problem("name", entry.get("name"), MAX_ARGS),
        text_problem("command", entry.get("command"), MAX_ARGS),
        None if entry.get("argv") is None or _is_argv(entry.get("argv")) else "bad argv",
        text_problem("cwd", entry.get("cwd"), null=True),
        None if isinstance(size, str) and _SIZE.fullmatch(size) else "size must be COLSxROWS",
        stamp_problem("startedAt", entry.get("startedAt")),
        stamp_problem("endedAt", entry.get("endedAt"), null=True),
        None
        if entry.get("duration") is None or _is_duration(entry.get("duration"))
        else "duration must be a number of seconds, 0 or more, or null",
        int_problem("exitCode", entry.get("exitCode"), 0, MAX_EXIT, null=True),
        int_problem("bytes", entry.get("bytes"), 0, MAX_BYTES),
    )
    return next((problem for problem in checks if problem is not None), None)


def _valid_entry(entry: object) -> bool:
    return _entry_problem(entry) is None


class _CastInfo:
    __slots__ = ("header", "last", "size")

    def __init__(self, header: dict[str, Any], last: Event | None, size: int) -> None:
        self.header = header
        self.last = last
        """The last event, None if there is none."""
        self.size = size

    @property
    def last_t(self) -> float:
        return 0.0 if self.last is None else self.last[0]


def _read_tail(f: IO[bytes], start: int, size: int) -> tuple[int, bytes]:
    """The end of the file from a line boundary, holding the last two whole lines.

    Reads backwards in blocks, so a long recording costs no more than a short one.
    """
    pos = size
    buf = b""
    while pos > start and buf.count(b"\n") < 3:
        step = min(_TAIL_BLOCK, pos - start)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
    if pos > start:
        cut = buf.index(b"\n") + 1  # the first piece may begin mid-line
        pos, buf = pos + cut, buf[cut:]
    return pos, buf


def _inspect_cast(path: Path, repair: bool) -> _CastInfo | None:
    """Header, last event and size of a .cast; truncate a torn tail if `repair`.

    Only a plain file is read (and cut): a link named `<id>.cast` would have the repair
    truncate the file it points to, outside the folder.
    """
    try:
        fd = open_plain(path, os.O_RDWR if repair else os.O_RDONLY)
        with os.fdopen(fd, "r+b" if repair else "rb") as f:
            first = f.readline(_MAX_HEADER)
            try:
                header = parse_header(first.decode("utf-8"))
            except (UnicodeDecodeError, CastFormatError) as e:
                log.warning("recording %s skipped: %s", path, e)
                return None
            size = f.seek(0, os.SEEK_END)
            tail_at, tail = _read_tail(f, len(first), size)
            good = valid_prefix_length(tail, header=False)
            if good < len(tail):
                if repair:
                    f.truncate(tail_at + good)
                    size = tail_at + good
                    log.warning("recording %s: torn last line removed", path)
                tail = tail[:good]
    except OSError as e:
        log.warning("recording %s skipped: %s", path, e)
        return None
    last = None
    lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
    if lines[-1]:
        last = parse_event(lines[-1].decode("utf-8"))
    return _CastInfo(header, last, size)


def repair_cast(path: Path) -> Event | None:
    """Cut a torn last line off a .cast (a writer killed mid-line); its last event then (None:
    it has none, or it cannot be read)."""
    info = _inspect_cast(path, repair=True)
    return None if info is None else info.last


def _entry_from_cast(recording_id: str, info: _CastInfo) -> Entry:
    header = info.header
    started = header.get("timestamp")
    started_at = float(started) if is_number(started) else 0.0
    title, command = header.get("title"), header.get("command")
    size = f"{header['width']}x{header['height']}"
    try:
        started_iso, ended_iso = iso(started_at), iso(started_at + info.last_t)
    except (OverflowError, ValueError, OSError):
        # A header or event time no calendar holds: keep the file listed anyway.
        started_iso = ended_iso = iso(0.0)
    return {
        "id": recording_id,
        "name": title if isinstance(title, str) else "",
        "command": command if isinstance(command, str) else "",
        "argv": None,  # the header has the line only
        "cwd": None,
        "size": size if _SIZE.fullmatch(size) else _DEFAULTS["size"],
        "startedAt": started_iso,
        "endedAt": ended_iso,
        "duration": info.last_t if _is_duration(info.last_t) else None,
        "exitCode": None,
        "bytes": info.size,
    }


def _by_id(entry: Entry) -> str:
    return str(entry["id"])


def _document(recordings: Iterable[Entry]) -> bytes:
    """metadata.json's bytes: one entry a line (readable, and each line made by json's C
    encoder: `indent` would take its pure-Python one, 5-10x slower)."""
    lines = ",\n".join(json.dumps(e, ensure_ascii=False) for e in recordings)
    head = f'{{"version": {INDEX_VERSION}, "recordings": [\n'
    return (head + lines + ("\n]}\n" if lines else "]}\n")).encode("utf-8")


class RecordingIndex:
    """The recordings of one folder and their metadata.json.

    Methods are synchronous (the server calls them with `asyncio.to_thread`) and
    thread-safe. Call `load()` once before use, before any `CastWriter` of this
    folder is writing.

    Two locks: `_lock` guards the entries and is held only for work in memory;
    `_write_lock` puts the writes of metadata.json in order and is held across the
    fsync. A save takes its snapshot after taking `_write_lock`, so the last write
    always holds the latest entries; a save whose changes an earlier one already
    wrote (a group commit) writes nothing.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.index_path = self.folder / INDEX_NAME
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._active: set[str] = set()
        """Ids started and not finished by this process: their files are being written."""
        self._version = 0
        """Changes made to the entries so far (under `_lock`)."""
        self._written = 0
        """The `_version` that metadata.json holds (under `_write_lock`)."""

    # -- loading -------------------------------------------------------------

    def _read_index(self) -> dict[str, Entry]:
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            log.warning("%s unreadable (%s): rebuilding it", self.index_path, e)
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            log.warning("%s is not JSON: rebuilding it from the .cast files", self.index_path)
            return {}
        recordings = data.get("recordings") if isinstance(data, dict) else None
        if not isinstance(recordings, list):
            log.warning("%s has the wrong shape: rebuilding it", self.index_path)
            return {}
        entries: dict[str, Entry] = {}
        for i, entry in enumerate(recordings):
            problem = _entry_problem(entry)
            if problem is None:
                entries[entry["id"]] = {
                    key: entry.get(key) for key in ("id", *_DEFAULTS, "startedAt")
                }
            else:
                named = entry.get("id") if isinstance(entry, dict) else None
                log.warning(
                    "%s: entry %d (id %.40r) dropped: %.200s; it is rebuilt from its .cast",
                    self.index_path,
                    i,
                    named,
                    problem,
                )
        return entries

    def load(self, *, repair: bool = True) -> None:
        """Read metadata.json, rebuilding and repairing what a crash left behind.

        Entries whose .cast is gone are dropped; a .cast without a (valid) entry
        gets one built from its header and last event; a torn last line is cut
        off; a recording that never finished (the server died) gets its end from
        its last event. With `repair=False` nothing on disk changes and stored
        entries are taken as they are (for a second process, such as the CLI,
        while a server may be writing).
        """
        # Once, before use: holding the lock over the .cast inspection costs no reader.
        with self._lock:
            if repair:
                private_dir(self.folder)
                remove_stale_temps(self.index_path)
            stored = self._read_index()
            entries: dict[str, Entry] = {}
            try:
                names = sorted(os.listdir(self.folder))
            except OSError:  # missing, or not a folder: no recordings (Recordings says why)
                names = []
            for name in names:
                recording_id = name[: -len(SUFFIX)]
                if not name.endswith(SUFFIX) or not ID_PATTERN.fullmatch(recording_id):
                    continue
                if not is_plain(self.folder / name):
                    # A link, a folder, a FIFO: never listed, served or repaired.
                    log.warning("recording %s skipped: not a plain file", self.folder / name)
                    continue
                if recording_id in self._active:
                    entries[recording_id] = self._entries[recording_id]
                    continue
                entry = stored.get(recording_id)
                if entry is not None and not repair:
                    # Read as stored: without repair, an unfinished entry may
                    # well be a recording another process is writing.
                    entries[recording_id] = entry
                    continue
                info = _inspect_cast(self.folder / name, repair)
                if entry is None:
                    if info is not None:
                        entries[recording_id] = _entry_from_cast(recording_id, info)
                    continue
                if entry["endedAt"] is None and info is not None:
                    # Interrupted by a crash: it ended with its last event.
                    with contextlib.suppress(OverflowError, ValueError, OSError):
                        entry["endedAt"] = iso(unix(entry["startedAt"]) + info.last_t)
                        entry["duration"] = info.last_t
                if info is not None:
                    entry["bytes"] = info.size
                entries[recording_id] = entry
            self._entries = entries
            self._version += 1  # written once repaired, even if nothing changed
        if repair:
            self.save()

    # -- saving --------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Changes are in memory that metadata.json does not hold yet."""
        with self._lock:
            return self._version != self._written

    def save(self) -> None:
        """Write the whole index atomically if it changed since the last write.

        Call it without holding `_lock`. Raises OSError if the write fails (the changes
        then stay pending: the next save writes them).
        """
        with self._write_lock:
            with self._lock:
                version = self._version
                if version == self._written:
                    return  # an earlier save wrote these changes
                recordings = sorted((dict(e) for e in self._entries.values()), key=_by_id)
            write_private(self.index_path, _document(recordings))
            self._written = version

    def _size(self, id: str) -> int | None:
        """The size of a recording's file now, or None if it cannot be read."""
        try:
            return (self.folder / f"{id}{SUFFIX}").lstat().st_size
        except OSError:
            return None

    # -- queries and changes -------------------------------------------------

    def start(self, entry: dict[str, Any], *, save: bool = True) -> None:
        """Add (or replace) the entry of a recording that starts now.

        `entry` needs an `id`; missing fields get defaults, `startedAt` may be a
        Unix time or an ISO string (default: now). Unknown keys are ignored. With
        `save=False` the change waits in memory for the next `save()`.
        """
        recording_id = entry.get("id")
        if not isinstance(recording_id, str) or not ID_PATTERN.fullmatch(recording_id):
            raise ValueError(f"bad recording id {recording_id!r}")
        new: Entry = {"id": recording_id}
        for key, default in _DEFAULTS.items():
            new[key] = entry.get(key, default)
        started = entry.get("startedAt")
        if started is None:
            started = time.time()
        if is_number(started):
            started = iso(started)
        new["startedAt"] = started
        if not _valid_entry(new):
            raise ValueError(f"bad recording entry {entry!r}")
        with self._lock:
            self._entries[recording_id] = new
            self._active.add(recording_id)
            self._version += 1
        if save:
            self.save()

    def finish(
        self, id: str, exit_code: int | None, ended_at: float | None, *, save: bool = True
    ) -> None:
        """Record the end of a recording: end time, duration, exit code, file size.

        Call it after the writer is closed and flushed so `bytes` is final. `ended_at` None:
        the recording ended before its session (at its size limit, finished then), which
        now gives its exit code. Raises `RecordingNotFound` if the id is unknown (deleted
        meanwhile). With `save=False` the change waits in memory for the next `save()`.
        """
        size = self._size(id)
        with self._lock:
            entry = self._entries.get(id)
            if entry is None:
                raise RecordingNotFound()
            self._active.discard(id)
            if ended_at is None and entry["endedAt"] is None:
                ended_at = time.time()
            if ended_at is not None:
                entry["endedAt"] = iso(ended_at)
                entry["duration"] = max(0.0, ended_at - unix(entry["startedAt"]))
            entry["exitCode"] = exit_code
            if size is not None:
                entry["bytes"] = size
            self._version += 1
        if save:
            self.save()

    def _copies(self, ids: Iterable[str] | None = None) -> builtins.list[Entry]:
        """Copies of the entries (all, or those of `ids` that exist), with live sizes."""
        with self._lock:
            chosen = (
                self._entries.values()
                if ids is None
                else (self._entries[i] for i in ids if i in self._entries)
            )
            copies = [dict(e) for e in chosen]
            active = set(self._active)
        for copy in copies:
            if copy["id"] in active:
                # Still being written: its current size, not the one at start.
                size = self._size(copy["id"])
                if size is not None:
                    copy["bytes"] = size
        return copies

    def list(self) -> builtins.list[Entry]:
        """Copies of every entry, newest first."""
        entries = self._copies()
        entries.sort(key=_by_id, reverse=True)
        entries.sort(key=lambda e: unix(e["startedAt"]), reverse=True)
        return entries

    def get(self, id: str) -> Entry:
        """A copy of one entry; `RecordingNotFound` if unknown."""
        found = self._copies([id]) if isinstance(id, str) else []
        if not found:
            raise RecordingNotFound()
        return found[0]

    def open(self, id: str) -> BinaryIO:
        """The .cast file of a recording, open for reading, for serving it.

        Only a plain id (letters, digits, "_" and "-", at most 128, no leading
        "-" or "_") whose file in the folder is a plain file (regular, one link,
        opened without following a link) is accepted: anything else, traversal
        attempts, symbolic and hard links included, raises `RecordingNotFound`.
        """
        if not isinstance(id, str) or not ID_PATTERN.fullmatch(id):
            raise RecordingNotFound()
        try:
            fd = open_plain(self.folder / f"{id}{SUFFIX}", os.O_RDONLY)
        except OSError:
            raise RecordingNotFound() from None
        return os.fdopen(fd, "rb")

    def delete(self, id: str, *, save: bool = True) -> None:
        """Remove a recording's file and entry; `RecordingNotFound` if unknown. With
        `save=False` the entry's removal waits in memory for the next `save()`."""
        if not isinstance(id, str) or not ID_PATTERN.fullmatch(id):
            raise RecordingNotFound()
        path = self.folder / f"{id}{SUFFIX}"
        # Only a plain file is a recording: anything else under its name stays (and stays
        # unlisted); unlink would never follow a link, but a folder would be an error.
        existed = is_plain(path)
        if existed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        with self._lock:
            known = self._entries.pop(id, None) is not None
            self._active.discard(id)
            if known:
                self._version += 1
        if known:
            if save:
                self.save()
        elif not existed:
            raise RecordingNotFound()

    def prune(self, older_than_days: float, now: float | None = None) -> builtins.list[str]:
        """Delete the finished recordings that ended more than `older_than_days` ago.

        Returns their ids, sorted. Recordings still being written are kept.
        """
        cutoff = (time.time() if now is None else now) - older_than_days * 86400
        with self._lock:
            old = [
                id
                for id, entry in self._entries.items()
                if id not in self._active
                and entry["endedAt"] is not None
                and unix(entry["endedAt"]) < cutoff
            ]
        removed: builtins.list[str] = []
        for id in old:
            try:
                (self.folder / f"{id}{SUFFIX}").unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("recording %s not pruned: %s", id, e)
                continue
            removed.append(id)
        if removed:
            with self._lock:
                for id in removed:
                    self._entries.pop(id, None)
                self._version += 1
            self.save()
        return sorted(removed)
