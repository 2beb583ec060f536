"""The keeper's wire format, pure: length-prefixed JSON messages, file descriptors beside.

Each message is a 4-byte big-endian length and that many bytes of a JSON object with a
"type". A message that carries file descriptors says how many in "fds"; they travel as
SCM_RIGHTS ancillary data with the message's first byte, so the receiver takes them in
order. Messages (server -> keeper, keeper -> server):

    hello    {version, protocol, pid,            -> welcome {version, protocol, pid}, then one
              maxRecording}                         session {.., fds: 0|1} each, then ready
                                                 -> refused {why}
             (maxRecording: bytes at which the keeper ends the recordings it carries on;
             absent from an older server: config.MAX_RECORDING)
    spawn    {req, id, argv, cwd, env, cols, rows, name, command, args, record, recordInput,
              createdAt}                          -> spawned {req, id, pid, fds: 1} | failed {req,
                                                    errno, why}
    forget   {id}                                   the session was deleted: drop it
    screen   {id, data, held}                       (before bye) the screen of a running session
    bye      {}                                     the server stops: the keeper reads from now
    stop     {sessions}                          -> stopped {ended}   (vibetunnel stop)
    exited   {id, code, at}                         (keeper -> server) a program ended
"""

from __future__ import annotations

import json
import struct
from typing import Any

PROTOCOL = 1
"""Bumped on any change a keeper of the previous version would not understand."""
LENGTH = struct.Struct(">I")
MAX_MESSAGE = 16 * 1024 * 1024
MAX_FDS = 16


class WireError(ValueError):
    """Bytes that are not a well-formed keeper message."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_MESSAGE:
        raise WireError(f"message of {len(body)} bytes is over {MAX_MESSAGE}")
    return LENGTH.pack(len(body)) + body


class Decoder:
    """Bytes in, whole messages out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        out = []
        while len(self._buf) >= LENGTH.size:
            (size,) = LENGTH.unpack_from(self._buf)
            if size > MAX_MESSAGE:
                raise WireError(f"message of {size} bytes is over {MAX_MESSAGE}")
            end = LENGTH.size + size
            if len(self._buf) < end:
                break
            body = bytes(self._buf[LENGTH.size : end])
            del self._buf[:end]
            try:
                message = json.loads(body)
            except ValueError as exc:
                raise WireError(f"not JSON: {exc}") from None
            if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                raise WireError("a message is an object with a type")
            fds = message.get("fds", 0)
            if isinstance(fds, bool) or not isinstance(fds, int) or not 0 <= fds <= MAX_FDS:
                raise WireError("fds must be a small count")
            out.append(message)
        return out
