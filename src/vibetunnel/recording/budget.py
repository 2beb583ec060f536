"""The recordings budget (`serve --recordings-budget`): past it, finished recordings go,
oldest first, and never a running session's.

`choose` picks (pure: the index's entries in, the ones to delete out). `delete_unheld`
deletes one only if no writer holds its file: every CastWriter holds a shared `flock` on the
file it writes (the server's, the keeper's and vt's), so a recording still being written is
never deleted, even one the index takes for finished (a `vt` session that has not linked to
this server yet, whose entry was rebuilt from its file at start).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Container, Iterable

from vibetunnel.errors import RecordingNotFound
from vibetunnel.files import open_plain
from vibetunnel.protocol.times import unix
from vibetunnel.recording.index import SUFFIX, Entry, RecordingIndex


def _age(entry: Entry) -> tuple[float, str]:
    return unix(entry["startedAt"]), str(entry["id"])


def choose(
    entries: Iterable[Entry], budget: int, running: Container[str]
) -> tuple[int, list[Entry]]:
    """The bytes all `entries` take, and the finished ones to delete, oldest (first started)
    first, until the rest is within `budget` (every finished one, if even that is not enough).

    An entry is finished when it has an end (`endedAt`) and its id is not in `running` (a
    recording that ended at its size limit has an end while its session runs on).
    """
    entries = list(entries)
    total = sum(int(e["bytes"]) for e in entries)
    over = total - budget
    chosen: list[Entry] = []
    if over <= 0:
        return total, chosen
    finished = [e for e in entries if e["endedAt"] is not None and e["id"] not in running]
    for entry in sorted(finished, key=_age):
        if over <= 0:
            break
        chosen.append(entry)
        over -= int(entry["bytes"])
    return total, chosen


def delete_unheld(index: RecordingIndex, recording_id: str) -> bool:
    """Delete a recording (file and entry) unless a writer holds its file; whether it went.

    The exclusive lock is held across the unlink: a writer opening the file meanwhile waits,
    then finds it deleted and makes a new one (writer.py `_open_held`). Raises OSError if
    the file cannot be opened or deleted.
    """
    try:
        fd = open_plain(index.folder / f"{recording_id}{SUFFIX}", os.O_RDONLY)
    except FileNotFoundError:
        fd = -1  # gone already: the entry goes
    try:
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # being written
            except OSError:
                pass  # a file system without locks: the index's word is all there is
        with contextlib.suppress(RecordingNotFound):
            index.delete(recording_id, save=False)
        return True
    finally:
        if fd >= 0:
            os.close(fd)
