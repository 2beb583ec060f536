"""A session as the HTTP API lists it, and the bounds of its fields: the checks of what is
read back from elsewhere (another node's list in Redis, the keeper's table) and of the
environment a new session is given.

Pure: a value in, None or the first problem found (naming the field) out.
"""

from __future__ import annotations

from typing import Any

from vibetunnel.protocol.ids import ID_PATTERN
from vibetunnel.protocol.messages import MAX_SIZE, MIN_SIZE
from vibetunnel.protocol.times import is_stamp
from vibetunnel.protocol.values import is_int

MAX_TEXT = 4096
"""Characters of a name, command or folder (a path's limit on Linux, PATH_MAX; vt's too)."""
MAX_REASON = 8192
"""Characters of a `lost` or `recordingError` (a message that may quote a path)."""
MAX_ARGS = 4 * 1024 * 1024
"""Characters of a session's arguments all together (vt's 1024 of MAX_TEXT; a POST body
holds at most 1 MiB)."""
MAX_PID = 2**31 - 1
MAX_EXIT = 255
"""Exit codes are 0..255: a program's own, or 128 + N for signal N."""
MAX_CLIENTS = 2**31 - 1
MAX_NODE = 64
STATUSES = ("running", "exited")


def text_problem(
    name: str, value: object, limit: int = MAX_TEXT, *, null: bool = False
) -> str | None:
    """A string of at most `limit` characters (or None, with `null`)."""
    if value is None and null:
        return None
    if not isinstance(value, str):
        return f"{name} must be a string" + (" or null" if null else "")
    if len(value) > limit:
        return f"{name} is longer than {limit} characters"
    return None


def args_problem(value: object) -> str | None:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        return "args must be a list of strings"
    if sum(len(a) for a in value) > MAX_ARGS:
        return f"args are longer than {MAX_ARGS} characters in all"
    return None


def int_problem(name: str, value: object, low: int, high: int, *, null: bool = False) -> str | None:
    """An integer `low..high` (booleans are not integers here), or None with `null`."""
    if value is None and null:
        return None
    if not is_int(value) or not low <= value <= high:
        return f"{name} must be an integer {low}..{high}" + (" or null" if null else "")
    return None


def id_problem(value: object) -> str | None:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        return "id must be 1 to 128 letters, digits, '-' and '_' (not first)"
    return None


def size_problem(name: str, value: object) -> str | None:
    """A terminal dimension (protocol/messages.py check_size)."""
    return int_problem(name, value, MIN_SIZE, MAX_SIZE)


def stamp_problem(name: str, value: object, *, null: bool = False) -> str | None:
    """An ISO 8601 time that protocol/times.py can read and write again."""
    if value is None and null:
        return None
    if not is_stamp(value):
        return f"{name} must be an ISO 8601 time of the years 1 to 9999" + (
            " or null" if null else ""
        )
    return None


def session_problem(obj: object) -> str | None:
    """What keeps `obj` from being a session as GET /api/sessions lists it (api/models.py
    SessionOut, as pty/session.py's to_json writes it), or None when it is one."""
    if not isinstance(obj, dict):
        return "a session must be a JSON object"
    s: dict[str, Any] = obj
    checks = (
        id_problem(s.get("id")),
        text_problem("name", s.get("name")),
        text_problem("command", s.get("command")),
        args_problem(s.get("args")),
        text_problem("cwd", s.get("cwd")),
        size_problem("cols", s.get("cols")),
        size_problem("rows", s.get("rows")),
        None if s.get("status") in STATUSES else "status must be running or exited",
        int_problem("exitCode", s.get("exitCode"), 0, MAX_EXIT, null=True),
        int_problem("pid", s.get("pid"), 1, MAX_PID),
        stamp_problem("createdAt", s.get("createdAt")),
        stamp_problem("exitedAt", s.get("exitedAt"), null=True),
        int_problem("clients", s.get("clients"), 0, MAX_CLIENTS),
        text_problem("lost", s.get("lost"), MAX_REASON, null=True),
        text_problem("title", s.get("title"), null=True),
        stamp_problem("activityAt", s.get("activityAt"), null=True),
        None if isinstance(s.get("recording", False), bool) else "recording must be a boolean",
        text_problem("recordingError", s.get("recordingError"), MAX_REASON, null=True),
        text_problem("node", s.get("node"), MAX_NODE, null=True),
    )
    return next((problem for problem in checks if problem is not None), None)


def env_problem(name: object, value: object) -> str | None:
    """What keeps (`name`, `value`) from being one variable of a program's environment: a
    name that is empty or holds `=` or NUL, a value that holds NUL (exec cannot pass them)."""
    if not isinstance(name, str) or not isinstance(value, str):
        return "names and values must be strings"
    shown = repr(name[:40])
    if not name:
        return "a name must not be empty"
    if "=" in name:
        return f"name {shown} holds '='"
    if "\0" in name:
        return f"name {shown} holds NUL"
    if "\0" in value:
        return f"the value of {shown} holds NUL"
    return None
