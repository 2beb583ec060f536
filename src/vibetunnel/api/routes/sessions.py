"""Sessions over HTTP: create, list, get, delete, input, resize."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from vibetunnel.api.models import (
    CreateSession,
    InputBody,
    RenameBody,
    ResizeBody,
    SessionOut,
    errors,
)
from vibetunnel.errors import BadRequest, InputOverflow, SessionNotFound, TooManyRequests
from vibetunnel.pty.manager import SessionManager, SessionOptions
from vibetunnel.pty.session import Session

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


def manager(request: Request) -> SessionManager:
    m: SessionManager = request.app.state.manager
    return m


def running(m: SessionManager, session_id: str) -> Session:
    session = m.get(session_id)
    if not session.running:
        raise BadRequest(f"session {session_id} has exited (code {session.exit_code})")
    return session


@router.post("", status_code=201, response_model=SessionOut, responses=errors(400, 409, 429))
async def create_session(
    request: Request, response: Response, body: CreateSession | None = None
) -> dict[str, Any]:
    """Start a program in a new PTY. Every field is optional."""
    opts = SessionOptions(**(body or CreateSession()).model_dump())
    session = await manager(request).create(opts)
    response.headers["Location"] = f"/api/sessions/{session.id}"
    return session.to_json()


@router.get("", response_model=list[SessionOut])
async def list_sessions(request: Request) -> list[dict[str, Any]]:
    """Every session, running or exited, oldest first."""
    return [s.to_json() for s in manager(request).list()]


KEEPALIVE = 15.0
"""Seconds between comment lines on an idle event stream (proxies drop silent ones)."""


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def session_events(request: Request) -> StreamingResponse:
    """The session list, live: one server-sent event (`data:` the JSON list) per change.

    One request for as long as the page is open, instead of polling into the rate limit.
    EventSource cannot send headers: pass the token as `?token=`.
    """
    m = manager(request)

    async def stream() -> AsyncIterator[str]:
        seen = -1
        while not m.closing:
            if m.version != seen:
                seen = m.version
                yield f"data: {json.dumps([s.to_json() for s in m.list()])}\n\n"
            else:
                yield ": keep-alive\n\n"
            await m.wait_change(seen, KEEPALIVE)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/{session_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(404)},
)
async def session_events_one(request: Request, session_id: str) -> StreamingResponse:
    """One session, live: an event with the session now and after each change to it (size,
    clients, exit), then `event: gone` when it is deleted. A terminal page follows the size
    another device gave the session with it; a share token may open it (it names its session).
    """
    m = manager(request)
    m.get(session_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        seen, sent = -1, ""
        while not m.closing:
            if m.version == seen:
                yield ": keep-alive\n\n"
            else:
                seen = m.version
                try:
                    now = json.dumps(m.get(session_id).to_json())
                except SessionNotFound:
                    yield "event: gone\ndata: {}\n\n"
                    return
                if now != sent:  # a change to another session is not news here
                    sent = now
                    yield f"data: {now}\n\n"
            await m.wait_change(seen, KEEPALIVE)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get("/{session_id}", response_model=SessionOut, responses=errors(404))
async def get_session(request: Request, session_id: str) -> dict[str, Any]:
    return manager(request).get(session_id).to_json()


@router.delete("/{session_id}", status_code=204, responses=errors(404))
async def delete_session(request: Request, session_id: str) -> Response:
    """End the program (SIGHUP, SIGTERM, SIGKILL) and forget the session; its recording stays."""
    await manager(request).delete(session_id)
    return Response(status_code=204)


@router.post("/{session_id}/input", status_code=204, responses=errors(400, 404, 429))
async def send_input(request: Request, session_id: str, body: InputBody) -> Response:
    """Type `data` into the program, as a WebSocket input message would."""
    session = running(manager(request), session_id)
    try:
        session.write(body.data)
    except InputOverflow as exc:
        raise TooManyRequests(str(exc), retry_after=1) from None
    return Response(status_code=204)


@router.post("/{session_id}/resize", response_model=SessionOut, responses=errors(400, 404, 429))
async def resize_session(request: Request, session_id: str, body: ResizeBody) -> dict[str, Any]:
    session = running(manager(request), session_id)
    try:
        session.resize(body.cols, body.rows)
    except InputOverflow as exc:  # a vt session whose vt reads nothing
        raise TooManyRequests(str(exc), retry_after=1) from None
    return session.to_json()


@router.patch("/{session_id}", response_model=SessionOut, responses=errors(400, 404))
async def rename_session(request: Request, session_id: str, body: RenameBody) -> dict[str, Any]:
    """Rename a session (running or exited); the name outlives server restarts."""
    return manager(request).rename(session_id, body.name).to_json()
