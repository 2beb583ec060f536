"""One error tree, and one table from each error to an HTTP status and a WebSocket close code.

VibeTunnelError
├── BadRequest            400  (a bad field: the message names it)
│   └── UnsupportedClient 400  (X-Client-Version major we do not speak)
├── ProtocolError         WebSocket 1003 (bad client message)
├── AuthError             401 / WebSocket 1008
├── Forbidden             403 / WebSocket 1008 (a share token used beyond its session)
├── NotFound              404
│   ├── SessionNotFound   404 / WebSocket 1000 "session not found"
│   └── RecordingNotFound 404
├── Conflict              409 (session id taken)
└── TooManyRequests       429 / WebSocket 1011 (rate limit, session limit, failed logins)
"""

from __future__ import annotations


class VibeTunnelError(Exception):
    """Base of every error the server turns into a response or a close code."""

    status = 500
    code = "internal_error"
    close_code = 1011

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(VibeTunnelError):
    status = 400
    code = "bad_request"
    close_code = 1003


class UnsupportedClient(BadRequest):
    code = "unsupported_client_version"


class ProtocolError(VibeTunnelError):
    """A WebSocket client sent something the protocol does not allow."""

    status = 400
    code = "protocol_error"
    close_code = 1003


class AuthError(VibeTunnelError):
    status = 401
    code = "unauthorized"
    close_code = 1008


class Forbidden(VibeTunnelError):
    status = 403
    code = "forbidden"
    close_code = 1008


class NotFound(VibeTunnelError):
    status = 404
    code = "not_found"
    close_code = 1000


class SessionNotFound(NotFound):
    code = "session_not_found"

    def __init__(self, message: str = "session not found") -> None:
        super().__init__(message)


class RecordingNotFound(NotFound):
    code = "recording_not_found"

    def __init__(self, message: str = "recording not found") -> None:
        super().__init__(message)


class Conflict(VibeTunnelError):
    status = 409
    code = "conflict"


class TooManyRequests(VibeTunnelError):
    status = 429
    code = "too_many_requests"
    close_code = 1011  # "retry the connection": a rate limit passes, unlike an auth failure

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
