"""One error tree, and one table from each error to an HTTP status and a WebSocket close code.

VibeTunnelError           500 / 1011 (anything else: logged, and the session keeps running)
├── BadRequest            400 / 1003 (a bad field: the message names it)
│   └── UnsupportedClient 400        (X-Client-Version major we do not speak)
├── ProtocolError         400 / 1003 (a message the protocol does not allow)
│   └── FrameError                   (bytes that are not one 0xBF frame)
├── AuthError             401 / 1008
├── Forbidden             403 / 1008 (a share or read-only token used beyond its scope)
├── NotFound              404 / 1000
│   ├── SessionNotFound   404 / 1000 "session not found"
│   └── RecordingNotFound 404
├── Conflict              409        (session id taken, recording still being written)
├── PayloadTooLarge       413 / 1009 (a body over 1 MiB, refused before it is read)
├── UnsupportedMediaType  415 / 1003 (--no-auth: a state change that is not JSON)
├── InputOverflow         429 / 1011 (16 MiB queued for a program that does not read)
├── TooManyRequests       429 / 1011 (rate limit, session limit, failed logins)
├── CastFormatError       500        (a .cast file that is not asciicast v2; never sent)
├── SecretError           500        (the signing secret is unusable; the server won't start)
├── KeeperError           503 / 1011 (keeper/client.py: the session keeper cannot be reached
│                                     or refuses this server)
├── ClusterUnavailable    503 / 1011 (auth/redislink.py: `--redis` and Redis cannot be
│                                     reached; refresh and sign-in only)
└── NodeUnavailable       503 / 1001 (cluster/: the session's node is offline, or Redis is)

FrameError, CastFormatError and SecretError are ValueErrors too,
as they were before they joined the tree. The close codes themselves live in
protocol/close.py; docs/protocol.md is the table a client author reads.
"""

from __future__ import annotations

from vibetunnel.protocol.close import SESSION_NOT_FOUND, Close


class VibeTunnelError(Exception):
    """Base of every error the server turns into a response or a close code."""

    status = 500
    code = "internal_error"
    close_code: Close = Close.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(VibeTunnelError):
    status = 400
    code = "bad_request"
    close_code = Close.UNSUPPORTED


class UnsupportedClient(BadRequest):
    code = "unsupported_client_version"


class ProtocolError(VibeTunnelError):
    """A WebSocket client sent something the protocol does not allow."""

    status = 400
    code = "protocol_error"
    close_code = Close.UNSUPPORTED


class FrameError(ProtocolError, ValueError):
    """A byte string that is not a well-formed 0xBF frame (protocol/frames.py)."""


class AuthError(VibeTunnelError):
    status = 401
    code = "unauthorized"
    close_code = Close.POLICY


class Forbidden(VibeTunnelError):
    status = 403
    code = "forbidden"
    close_code = Close.POLICY


class NotFound(VibeTunnelError):
    status = 404
    code = "not_found"
    close_code = Close.NORMAL


class SessionNotFound(NotFound):
    code = "session_not_found"

    def __init__(self, message: str = SESSION_NOT_FOUND) -> None:
        super().__init__(message)


class RecordingNotFound(NotFound):
    code = "recording_not_found"

    def __init__(self, message: str = "recording not found") -> None:
        super().__init__(message)


class Conflict(VibeTunnelError):
    status = 409
    code = "conflict"


class PayloadTooLarge(VibeTunnelError):
    """A request body over the limit (api/middleware.py), refused before it is read."""

    status = 413
    code = "payload_too_large"
    close_code = Close.TOO_BIG


class UnsupportedMediaType(VibeTunnelError):
    """Without auth, a state-changing request that is not `application/json`: what a
    cross-site HTML form sends (api/security.py)."""

    status = 415
    code = "unsupported_media_type"
    close_code = Close.UNSUPPORTED


class InputOverflow(VibeTunnelError):
    """The program does not read its input and its queue (16 MiB) is full."""

    status = 429
    code = "input_backlog_full"
    close_code = Close.INTERNAL


class TooManyRequests(VibeTunnelError):
    status = 429
    code = "too_many_requests"
    # "Retry the connection": a rate limit passes, unlike an auth failure.
    close_code = Close.INTERNAL

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CastFormatError(VibeTunnelError, ValueError):
    """Text that is not asciicast v2 (a bad header) or holds a bad line (recording/asciicast.py)."""


class SecretError(VibeTunnelError, ValueError):
    """The configured signing secret cannot be used: empty or too short (auth/secret.py)."""


class NodeUnavailable(VibeTunnelError):
    """The cluster node that runs a session is offline, or Redis cannot be reached
    (cluster/): try again later."""

    status = 503
    code = "node_offline"
    close_code = Close.GOING_AWAY
