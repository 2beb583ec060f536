"""What this node reads back from Redis, checked before use: other nodes' entries in
`vt:nodes`, their session lists, and orders' answers (stream entries and orders are checked
where they are taken: mirror.py, owner.py).

Anything another node (or any other client of that Redis) wrote may be malformed: an item
that is is skipped with one log line (`Complaints`), and the task reading it goes on.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any

from vibetunnel.config import NODE_NAME
from vibetunnel.protocol.sessions import session_problem
from vibetunnel.protocol.times import formattable

log = logging.getLogger("vibetunnel.cluster")

REMEMBERED = 1024
"""Distinct complaints remembered (the oldest is forgotten first, and said again if seen)."""


class Complaints:
    """One log line per distinct bad item: the node list and the session lists are read
    again every few seconds, and the same junk must not fill the log."""

    def __init__(self, remember: int = REMEMBERED) -> None:
        self._seen: OrderedDict[tuple[str, bytes, str], None] = OrderedDict()
        self._remember = remember

    def __call__(self, item: str, raw: bytes, problem: str) -> None:
        """Say once that `item` (holding `raw`) was skipped, and why."""
        key = (item, raw[:4096], problem)
        if key in self._seen:
            self._seen.move_to_end(key)
            return
        self._seen[key] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        log.warning("cluster: %.200s skipped: %.200s", item, problem)


def loads(raw: bytes | str) -> tuple[Any, str | None]:
    """JSON from Redis: (the value, None), or (None, why not)."""
    try:
        return json.loads(raw), None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, "not JSON"


def node_name(raw: bytes) -> str | None:
    """A node's name as a key or a field of Redis holds it, if it is one (config.NODE_NAME)."""
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return name if NODE_NAME.fullmatch(name) else None


def node_problem(about: object) -> str | None:
    """What keeps a `vt:nodes` value from being {lastSeen, ...} (owner.py writes it)."""
    if not isinstance(about, dict):
        return "not a JSON object"
    if not formattable(about.get("lastSeen")):
        return "lastSeen must be a Unix time in range"
    return None


def listed_problem(node: str, key: bytes, session: object) -> str | None:
    """What keeps `session`, under `key` in `node`'s list, from being a session of that
    node as the API lists it."""
    problem = session_problem(session)
    if problem is not None:
        return problem
    assert isinstance(session, dict)
    if session.get("node") != node:
        return f"its node is {str(session.get('node'))[:64]!r}, not {node!r}"
    if key != session["id"].encode():
        return "it is listed under another id"
    return None
