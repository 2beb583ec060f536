"""Per-request edge work, as plain ASGI: request id, client version, the gate (rate limit,
token), the body limit, access log.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: it adds no task per request and
does not buffer responses.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetunnel.api.errors import error_response
from vibetunnel.errors import PayloadTooLarge, UnsupportedClient, VibeTunnelError
from vibetunnel.redact import redact

access_log = logging.getLogger("vibetunnel.access")

SUPPORTED_MAJORS = (1,)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_VERSION = re.compile(r"[vV]?([0-9]{1,6})(\..*)?", re.DOTALL)


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


MAX_BODY = 1024 * 1024
"""Bytes of a request body at most: every body is JSON, and 1 MiB is plenty (1 MiB of input
is typed in several requests)."""


class _Gone(Exception):
    """The client left while its body was being read."""


def declares_body(headers: Headers) -> bool:
    """Whether the request says a body follows: a length above 0, or chunks."""
    length = headers.get("content-length", "").strip()
    return length not in ("", "0") or "transfer-encoding" in headers


async def bounded_body(headers: Headers, receive: Receive) -> Receive:
    """`receive` for a body of at most MAX_BODY bytes; PayloadTooLarge for a bigger one.

    A declared length is checked before a byte is read. A chunked body declares none: it is
    read here, no further than MAX_BODY, and handed to the app whole (no route streams a
    request body). Raises _Gone when the client leaves meanwhile.
    """
    too_large = PayloadTooLarge(f"request body over {MAX_BODY // 1024} KiB")
    length = headers.get("content-length")
    if length is not None:
        length = length.strip()
        # Digits first: int() of 5,000 digits raises, and httptools has checked the rest.
        if not (length.isascii() and length.isdigit()) or len(length) > 12:
            raise too_large
        if int(length) > MAX_BODY:
            raise too_large
        return receive
    if "transfer-encoding" not in headers:
        return receive  # no body
    body = bytearray()
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise too_large
        more = message.get("more_body", False)
    whole: Message = {"type": "http.request", "body": bytes(body), "more_body": False}
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()  # what comes next: the disconnect
        given = True
        return whole

    return replay


# A hook that may refuse a request before routing (rate limit, token) and add response headers.
Gate = Callable[[Scope, Headers], Awaitable[tuple[VibeTunnelError | None, dict[str, str]]]]


class EdgeMiddleware:
    """Request id on every response, client version check, optional gate, body limit, access
    log. Every refusal here comes before the app reads a byte of the body."""

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
            refusal, gate_headers = await self.gate(scope, headers)
            extra.update(gate_headers)
        try:
            if scope["type"] == "websocket":
                state["refusal"] = refusal  # the WebSocket glue closes with its close code
                await self.app(scope, receive, send_with_headers)
                return
            if refusal is None:
                try:
                    receive = await bounded_body(headers, receive)
                except PayloadTooLarge as exc:
                    refusal = exc
            if refusal is None:
                await self.app(scope, receive, send_with_headers)
                return
            if declares_body(headers):
                # The body is left unread: end the connection rather than read it through.
                extra["Connection"] = "close"
            await error_response(refusal, rid)(scope, receive, send_with_headers)
        except _Gone:
            pass
        finally:
            if scope["type"] == "http":
                _log_access(scope, status, started)


def _log_access(scope: Scope, status: int, started: float) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    # Redacted here as well as by the handlers' formatter (redact.py): the record itself is
    # clean, whatever handler gets it.
    path = redact(scope["path"] + ("?" + query if query else ""))
    access_log.info(
        '%s "%s %s" %d %.1fms',
        scope["client"][0] if scope.get("client") else "-",
        scope["method"],
        path,
        status,
        (time.perf_counter() - started) * 1000,
    )
