"""Per-request edge work, as plain ASGI: request id, client version, rate limit, access log.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: it adds no task per request and
does not buffer responses.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetunnel.api.errors import error_response
from vibetunnel.errors import UnsupportedClient, VibeTunnelError

access_log = logging.getLogger("vibetunnel.access")

SUPPORTED_MAJORS = (1,)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_VERSION = re.compile(r"[vV]?([0-9]{1,6})(\..*)?", re.DOTALL)
_TOKEN_IN_QUERY = re.compile(r"(^|&)(token|login)=[^&]*")


def redact_query(query: str) -> str:
    """The query string with token values blanked, for logs."""
    return _TOKEN_IN_QUERY.sub(r"\1\2=[redacted]", query)


def check_client_version(value: str | None) -> None:
    """X-Client-Version: absent is fine; a major version we do not speak is a 400."""
    if value is None:
        return
    major = _VERSION.fullmatch(value.strip())
    # The pattern, not int() alone: int() takes "²" and refuses 5,000 digits with ValueError.
    if major is None or int(major.group(1)) not in SUPPORTED_MAJORS:
        speaks = ", ".join(f"{m}.x" for m in SUPPORTED_MAJORS)
        raise UnsupportedClient(
            f"X-Client-Version {value[:40]!r} is not supported; this server speaks {speaks}"
        )


# A hook that may refuse a request before routing (rate limit) and add response headers.
Gate = Callable[[Scope, Headers], tuple[VibeTunnelError | None, dict[str, str]]]


class EdgeMiddleware:
    """Request id on every response, client version check, optional gate, access log."""

    def __init__(self, app: ASGIApp, gate: Gate | None = None) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id")
        rid = given if given and _SANE_ID.match(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        extra: dict[str, str] = {"X-Request-ID": rid}
        status = 0
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                for key, value in extra.items():
                    response_headers[key] = value
            await send(message)

        refusal: VibeTunnelError | None = None
        try:
            check_client_version(headers.get("x-client-version"))
        except VibeTunnelError as exc:
            refusal = exc
        if refusal is None and self.gate is not None:
            refusal, gate_headers = self.gate(scope, headers)
            extra.update(gate_headers)
        try:
            if refusal is not None and scope["type"] == "http":
                await error_response(refusal, rid)(scope, receive, send_with_headers)
            else:
                state["refusal"] = refusal  # the WebSocket glue closes with its close code
                await self.app(scope, receive, send_with_headers)
        finally:
            if scope["type"] == "http":
                query = scope.get("query_string", b"").decode("latin-1")
                path = scope["path"] + ("?" + redact_query(query) if query else "")
                access_log.info(
                    '%s "%s %s" %d %.1fms',
                    scope["client"][0] if scope.get("client") else "-",
                    scope["method"],
                    path,
                    status,
                    (time.perf_counter() - started) * 1000,
                )
