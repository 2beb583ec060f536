"""WebSocket close codes and the reasons this server sends with them: the one place they live.

docs/protocol.md ("Close codes") says what a client should do on each; errors.py maps every
error to one of them.
"""

from __future__ import annotations

from enum import IntEnum


class Close(IntEnum):
    """The close codes (RFC 6455, section 7.4.1) this server sends."""

    NORMAL = 1000
    """The session ended (after its exit message), or there is no such session."""
    GOING_AWAY = 1001
    """Server shutdown, idle timeout, or a vt link replaced by a newer one: reconnect."""
    UNSUPPORTED = 1003
    """A message the protocol does not allow; the reason says what was wrong."""
    POLICY = 1008
    """Authentication or authorisation failed: sign in again, do not retry as is."""
    TOO_BIG = 1009
    """A message over the size limit (sent by the WebSocket layer itself)."""
    INTERNAL = 1011
    """A fault in the server, or a rate limit: retry later; the session keeps running."""


SESSION_ENDED = "session ended"
SESSION_NOT_FOUND = "session not found"
"""Sent with 1000 when the session does not exist (never ran, or was deleted)."""
SERVER_SHUTDOWN = "server shutdown"
INTERNAL_ERROR = "internal error"
LINK_REPLACED = "replaced by a new registration"
NO_REGISTER = "no register message"
MAX_REASON_BYTES = 123
"""A close frame carries at most 125 bytes: the code's two and 123 of UTF-8 reason."""


def idle_timeout(seconds: float) -> str:
    """The reason of a 1001 sent to a client silent for `seconds`."""
    return f"idle timeout ({seconds:g} s without a message)"


def reason(text: str) -> str:
    """`text` cut to fit a close frame, never inside a character."""
    return text.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", "ignore")
