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
from vibetunnel.protocol.sessions import (
    MAX_EXIT,
    MAX_PID,
    MAX_REASON,
    args_problem,
    id_problem,
    int_problem,
    size_problem,
    text_problem,
)
from vibetunnel.protocol.times import formattable

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
        """Raises TypeError or ValueError on a malformed entry: a field missing or of the
        wrong type, or a value no session has (protocol/sessions.py has the bounds)."""
        if not isinstance(obj, dict):
            raise ValueError("an entry must be a JSON object")
        fields = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        entry = cls(**fields)
        problem = entry._problem()
        if problem is not None:
            raise ValueError(problem)
        entry.record, entry.recordInput = entry.record is True, entry.recordInput is True
        return entry

    def _problem(self) -> str | None:
        checks = (
            id_problem(self.id),
            text_problem("name", self.name),
            text_problem("command", self.command),
            args_problem(self.args),
            text_problem("cwd", self.cwd),
            size_problem("cols", self.cols),
            size_problem("rows", self.rows),
            int_problem("pid", self.pid, 1, MAX_PID),
            None if formattable(self.createdAt) else "createdAt must be a Unix time in range",
            int_problem("exitCode", self.exitCode, 0, MAX_EXIT, null=True),
            None
            if self.exitedAt is None or formattable(self.exitedAt)
            else "exitedAt must be a Unix time in range or null",
            text_problem("lost", self.lost, MAX_REASON, null=True),
        )
        return next((problem for problem in checks if problem is not None), None)


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
    for i, obj in enumerate(raw["sessions"]):
        try:
            entry = Entry.from_json(obj)
        except (TypeError, ValueError) as exc:
            named = obj.get("id") if isinstance(obj, dict) else None
            log.warning("%s: entry %d (id %.40r) skipped: %.200s", path, i, named, exc)
            continue
        if entry.running:
            entry.exitedAt = when
            entry.lost = (
                f"the keeper (pid {old}) that held it was killed or crashed; "
                "the program was hung up and its exit code is unknown"
            )
        entries.append(entry)
    return entries
