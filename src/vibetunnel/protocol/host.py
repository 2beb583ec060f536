"""The host link between `vt` and the server: pure encode and parse, no I/O.

`vt` holds one WebSocket to `GET /api/host?token=...` per registration:

    vt -> server   text   {"type":"register","id","name","command","args","cwd","cols","rows",
                           "pid","createdAt","screen"[,"recordingError"]}    (first, once)
                   binary one frame of protocol/frames.py: whole UTF-8 output (vt sends its
                          screen this way, right after an empty "screen": one message is
                          at most 1 MiB, and a screen JSON-escaped can be more)
                   text   {"type":"resize","cols","rows"}   the PTY's size changed
                   text   {"type":"recording","error"}      vt's recording failed or stopped
                                                            (at its size limit); in the
                                                            register message if it did before
                   text   {"type":"exit","code"}            (last; the server closes 1000)
    server -> vt   text   {"type":"input","data"}           typed by a browser client
                   text   {"type":"resize","cols","rows"}   a browser client resized
                   text   {"type":"signal","signal"}        the staged kill of DELETE

Every message is checked; anything else raises ProtocolError (the receiver closes with 1003).
"""

from __future__ import annotations

import json
import math
import signal
from dataclasses import dataclass
from typing import Any

from vibetunnel.errors import ProtocolError
from vibetunnel.protocol import frames
from vibetunnel.protocol.ids import ID_PATTERN
from vibetunnel.protocol.messages import (
    Input,
    Resize,
    check_int,
    check_size,
    input_of,
    load,
    resize_of,
    unknown,
)

HOST_PATH = "/api/host"
SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGKILL})
"""Signals the server may ask vt to send to its program."""
MAX_SCREEN = 4 * 1024 * 1024
"""Characters of screen snapshot in a register message (ScreenBuffer keeps at most 1 MiB)."""
MAX_TEXT = 4096
"""Characters of a name, command, argument or folder."""
MAX_ARGS = 1024


@dataclass(frozen=True, slots=True)
class Register:
    """vt's first message: the session as the server should list it, and its screen so far."""

    id: str
    name: str
    command: str
    args: list[str]
    cwd: str
    cols: int
    rows: int
    pid: int
    created_at: float
    screen: str
    recording_error: str | None = None
    """Why vt's recording of it failed or stopped, if it has (its session then says so)."""

    def encode(self) -> str:
        message = {
            "type": "register",
            "id": self.id,
            "name": self.name,
            "command": self.command,
            "args": self.args,
            "cwd": self.cwd,
            "cols": self.cols,
            "rows": self.rows,
            "pid": self.pid,
            "createdAt": self.created_at,
            "screen": self.screen,
        }
        if self.recording_error is not None:
            message["recordingError"] = self.recording_error
        return json.dumps(message, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Exit:
    """The program ended with this code (128 + N for signal N)."""

    code: int


@dataclass(frozen=True, slots=True)
class RecordingError:
    """vt's recording of the session failed, or stopped at its size limit: why."""

    error: str


@dataclass(frozen=True, slots=True)
class Signal:
    """Send this signal to the program."""

    signal: int


FromVt = Register | Resize | RecordingError | Exit
FromServer = Input | Resize | Signal


# -- encoders ---------------------------------------------------------------------------------


def resize_message(cols: int, rows: int) -> str:
    return json.dumps({"type": "resize", "cols": cols, "rows": rows})


def recording_message(error: str) -> str:
    return json.dumps({"type": "recording", "error": error[:MAX_TEXT]}, ensure_ascii=False)


def input_message(data: str) -> str:
    return json.dumps({"type": "input", "data": data}, ensure_ascii=False)


def signal_message(sig: int) -> str:
    return json.dumps({"type": "signal", "signal": int(sig)})


# -- parsers ----------------------------------------------------------------------------------


def _str(obj: dict[str, Any], name: str, limit: int = MAX_TEXT, empty: bool = True) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be a string")
    if len(value) > limit:
        raise ProtocolError(f"{name} is longer than {limit} characters")
    if not empty and not value:
        raise ProtocolError(f"{name} must not be empty")
    return value


def parse_register(text: str) -> Register:
    kind, obj = load(text)
    if kind != "register":
        raise ProtocolError(f"the first message must be register, not {kind[:40]!r}")
    session_id = _str(obj, "id", 128, empty=False)
    if not ID_PATTERN.fullmatch(session_id):
        raise ProtocolError("id must be letters, digits, '-' and '_'")
    args = obj.get("args")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ProtocolError("args must be a list of strings")
    if len(args) > MAX_ARGS or any(len(a) > MAX_TEXT for a in args):
        raise ProtocolError("args too long")
    created = obj.get("createdAt")
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise ProtocolError("createdAt must be a number")
    if not math.isfinite(created) or not 0 <= created < 1e11:
        raise ProtocolError("createdAt must be a Unix time in seconds")
    return Register(
        id=session_id,
        name=_str(obj, "name"),
        command=_str(obj, "command", empty=False),
        args=list(args),
        cwd=_str(obj, "cwd"),
        cols=check_size("cols", obj.get("cols")),
        rows=check_size("rows", obj.get("rows")),
        pid=check_int("pid", obj.get("pid"), 1, 2**31 - 1),
        created_at=float(created),
        screen=_str(obj, "screen", MAX_SCREEN),
        recording_error=(
            None if obj.get("recordingError") is None else _str(obj, "recordingError", empty=False)
        ),
    )


def parse_from_vt(text: str) -> Resize | RecordingError | Exit:
    """A text message of vt after its register message."""
    kind, obj = load(text)
    if kind == "resize":
        return resize_of(obj)
    if kind == "recording":
        return RecordingError(_str(obj, "error", empty=False))
    if kind == "exit":
        return Exit(check_int("code", obj.get("code"), 0, 255))
    if kind == "register":
        raise ProtocolError("already registered")
    raise unknown(kind)


def parse_output(message: bytes) -> bytes:
    """The output carried by one binary message of vt: exactly one frame of whole UTF-8."""
    try:
        data, rest = frames.decode(message)
    except frames.FrameError as exc:
        raise ProtocolError(f"bad output frame: {exc}") from None
    if rest:
        raise ProtocolError("one frame per message")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("output frame is not valid UTF-8") from None
    return data


def parse_from_server(text: str) -> FromServer:
    """A message of the server to vt."""
    kind, obj = load(text)
    if kind == "input":
        return input_of(obj)
    if kind == "resize":
        return resize_of(obj)
    if kind == "signal":
        sig = check_int("signal", obj.get("signal"), 1, 64)
        if sig not in SIGNALS:
            raise ProtocolError(f"signal {sig} is not one vt sends")
        return Signal(sig)
    raise unknown(kind)
