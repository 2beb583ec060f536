"""Client JSON messages: text in, a typed message out, or a ProtocolError that says why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from vibetunnel.errors import ProtocolError
from vibetunnel.protocol.values import is_int

MIN_SIZE = 1
MAX_SIZE = 1000
MAX_MESSAGE = 1024 * 1024
"""Bytes of one WebSocket message from a client, at most (more is closed with 1009 by the
WebSocket layer, before the message is read). The web app cuts a bigger paste into several
input messages; vt sends its screen as frames of 64 KiB."""


@dataclass(frozen=True, slots=True)
class Input:
    data: str


@dataclass(frozen=True, slots=True)
class Resize:
    cols: int
    rows: int


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Ack:
    """The client has processed `bytes` data bytes of frames since it connected (flow.py)."""

    bytes: int


Message = Input | Resize | Ping | Ack


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """An integer `low..high` (booleans are not integers here)."""
    if not is_int(value):
        raise ProtocolError(f"{name} must be an integer")
    if not low <= value <= high:
        raise ProtocolError(f"{name} must be between {low} and {high}, got {value}")
    return value


def check_size(name: str, value: Any) -> int:
    """A terminal dimension: an integer 1..1000."""
    return check_int(name, value, MIN_SIZE, MAX_SIZE)


def typeable(value: str) -> bool:
    """False for text with a lone surrogate (JSON escapes can carry one; a PTY cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(name: str, value: str) -> str:
    if not typeable(value):
        raise ProtocolError(f"{name} is not valid Unicode (lone surrogate)")
    return value


def load(text: str) -> tuple[str, dict[str, Any]]:
    """A JSON object message: its `type` and the object. Raises ProtocolError."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("message is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("message must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("message type must be a string")
    return kind, obj


def input_of(obj: dict[str, Any]) -> Input:
    data = obj.get("data")
    if not isinstance(data, str):
        raise ProtocolError("input data must be a string")
    return Input(check_text("input data", data))


def resize_of(obj: dict[str, Any]) -> Resize:
    return Resize(check_size("cols", obj.get("cols")), check_size("rows", obj.get("rows")))


def ack_of(obj: dict[str, Any]) -> Ack:
    total = obj.get("bytes")
    if not is_int(total) or total < 0:
        raise ProtocolError("ack bytes must be a non-negative integer")
    return Ack(total)


def unknown(kind: str) -> ProtocolError:
    return ProtocolError(f"unknown message type {kind[:40]!r}")


def parse(text: str) -> Message:
    """Parse one client text message."""
    kind, obj = load(text)
    if kind == "input":
        return input_of(obj)
    if kind == "resize":
        return resize_of(obj)
    if kind == "ping":
        return Ping()
    if kind == "ack":
        return ack_of(obj)
    raise unknown(kind)


PONG = '{"type":"pong"}'


def exit_message(code: int | None) -> str:
    """The server's exit message (a signal N is reported as 128 + N, as shells do; null when
    the code cannot be known: the keeper that held the program is gone)."""
    return json.dumps({"type": "exit", "code": code})
