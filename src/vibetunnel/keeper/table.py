"""The keeper's sessions, as kept on disk in `<home>/sessions.json` (mode 0600).

Written whole (temporary file, fsync, rename) after every burst of changes, off the keeper's
loop (see Keeper._changed), so a keeper that is killed leaves a table the next keeper reads:
what ran under it is then reported lost, with why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vibetunnel.files import write_private
from vibetunnel.protocol.values import is_int, is_number

log = logging.getLogger("vibetunnel.keeper")

TABLE = "sessions.json"


@dataclass
class Entry:
    """What is known of one session besides its live parts: all a server lists."""

    id: str
    name: str
    command: str
    args: list[str]
    cwd: str
    cols: int
    rows: int
    pid: int
    createdAt: float  # noqa: N815 (the wire's spelling)
    record: bool = True
    recordInput: bool = False  # noqa: N815
    exitCode: int | None = None  # noqa: N815
    exitedAt: float | None = None  # noqa: N815
    lost: str | None = None

    @property
    def running(self) -> bool:
        return self.exitedAt is None

    def to_json(self) -> dict[str, Any]:
        # vars(), not dataclasses.asdict: asdict deep-copies field by field, a tenth of the
        # keeper's time when 300 sessions start at once. Only `args` is mutable.
        obj = dict(vars(self))
        obj["args"] = list(self.args)
        return obj

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Entry:
        """Raises TypeError or ValueError on a malformed entry."""
        fields = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        entry = cls(**fields)
        for name in ("id", "name", "command", "cwd"):
            if not isinstance(getattr(entry, name), str):
                raise ValueError(f"{name} must be a string")
        if not isinstance(entry.args, list) or not all(isinstance(a, str) for a in entry.args):
            raise ValueError("args must be strings")
        for name in ("cols", "rows", "pid"):
            if not is_int(getattr(entry, name)):
                raise ValueError(f"{name} must be an integer")
        if not is_number(entry.createdAt):
            raise ValueError("createdAt must be a number")
        if entry.exitCode is not None and not is_int(entry.exitCode):
            raise ValueError("exitCode must be an integer or null")
        if entry.exitedAt is not None and not is_number(entry.exitedAt):
            raise ValueError("exitedAt must be a number or null")
        if entry.lost is not None and not isinstance(entry.lost, str):
            raise ValueError("lost must be a string or null")
        entry.record, entry.recordInput = entry.record is True, entry.recordInput is True
        return entry


def encode(keeper_pid: int, entries: list[Entry]) -> bytes:
    """The table's bytes, for `write` (on another thread: they are a snapshot)."""
    data = {"keeper": keeper_pid, "sessions": [e.to_json() for e in entries]}
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def write(home: Path, payload: bytes) -> None:
    """Replace the table whole with `payload` (from `encode`)."""
    write_private(home / TABLE, payload)


def save(home: Path, keeper_pid: int, entries: list[Entry]) -> None:
    """Replace the table whole (a burst of changes is one write: see Keeper._changed)."""
    write(home, encode(keeper_pid, entries))


def left(home: Path) -> bool:
    """Whether a previous keeper left a table with any session in it (a cheap look: a
    server with none to list starts no keeper)."""
    try:
        raw = json.loads((home / TABLE).read_bytes())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # let a keeper read it, and say what is wrong in its log
    return not isinstance(raw, dict) or raw.get("sessions") != []


def load(home: Path) -> list[Entry]:
    """The table a previous keeper left. Sessions it still ran are lost: it is gone (we hold
    the keeper lock), and with it the last holder of their terminals."""
    path = home / TABLE
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable, starting empty: %s", path, exc)
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get("sessions"), list):
        return []
    old = raw.get("keeper")
    when = time.time()
    with contextlib.suppress(OSError):
        when = path.stat().st_mtime
    entries = []
    for obj in raw["sessions"]:
        try:
            entry = Entry.from_json(obj)
        except (TypeError, ValueError, KeyError) as exc:
            log.warning("%s: entry skipped: %s", path, exc)
            continue
        if entry.running:
            entry.exitedAt = when
            entry.lost = (
                f"the keeper (pid {old}) that held it was killed or crashed; "
                "the program was hung up and its exit code is unknown"
            )
        entries.append(entry)
    return entries
