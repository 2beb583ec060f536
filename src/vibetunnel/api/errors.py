"""Faults become responses at the edge: every error body has one shape (docs/protocol.md)."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from vibetunnel.errors import AuthError, TooManyRequests, VibeTunnelError

log = logging.getLogger("vibetunnel")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def error_json(status: int, code: str, message: str, rid: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "requestId": rid}}, status_code=status
    )


def error_response(exc: VibeTunnelError, rid: str) -> JSONResponse:
    response = error_json(exc.status, exc.code, exc.message, rid)
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, AuthError):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def allowed_methods(request: Request) -> set[str]:
    """The methods the API documents for this path (from the OpenAPI document)."""
    allowed: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            allowed |= {method.upper() for method in operations}
    if "GET" in allowed:
        allowed.add("HEAD")
    return allowed


def validation_message(exc: RequestValidationError) -> str:
    """The first problem, naming the field: `cols: Input should be ...`."""
    err = exc.errors()[0]
    if err.get("type") == "json_invalid":
        return "body: not valid JSON"
    path = [str(p) for p in err.get("loc", ()) if p != "body"]
    return f"{'.'.join(path) or 'body'}: {err.get('msg', 'invalid')}"


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """An HTTPException (unknown path, wrong method, ...) as the error body."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = error_json(exc.status_code, code, str(exc.detail), request_id(request))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route whose path matched; GET and POST of one
        # path are two routes here, so gather every method the path allows.
        response.headers["Allow"] = ", ".join(sorted(allowed_methods(request)))
    return response


def install(app: FastAPI) -> None:
    """Register the handlers that give every failure the error body."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VibeTunnelError)
        return error_response(exc, request_id(request))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message = validation_message(exc)
        kind = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in kind and await request.body():
            # Demanding JSON also keeps cross-site forms out: they cannot send it unasked.
            message = f"body: send JSON with Content-Type: application/json (got {kind[:60]!r})"
        return error_json(400, "bad_request", message, request_id(request))

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_json(500, "internal_error", "internal server error", request_id(request))

    app.add_exception_handler(VibeTunnelError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, on_crash)
