"""Sessions over HTTP: create, list, get, delete, input, resize.

In a cluster (docs/cluster.md) every route also serves the other nodes' sessions: reads
come from what Redis says of them, changes go to their node as orders.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

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
from vibetunnel.errors import BadRequest, SessionNotFound
from vibetunnel.pty.manager import SessionManager, SessionOptions

if TYPE_CHECKING:
    from vibetunnel.cluster.node import Cluster

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


def manager(request: Request) -> SessionManager:
    m: SessionManager = request.app.state.manager
    return m


def cluster(request: Request) -> Cluster | None:
    c: Cluster | None = request.app.state.cluster
    return c


def session_json(request: Request, session_id: str) -> dict[str, Any]:
    """A session of this node or, in a cluster, of another as last heard of; SessionNotFound
    if of none."""
    try:
        return manager(request).get(session_id).to_json()
    except SessionNotFound:
        if (c := cluster(request)) is None:
            raise
        return c.session(session_id)


async def find_json(request: Request, session_id: str) -> dict[str, Any]:
    """`session_json`, but an id no node was heard of with is asked of Redis (a node just
    started, a session made elsewhere a moment ago) before it is SessionNotFound."""
    try:
        return manager(request).get(session_id).to_json()
    except SessionNotFound:
        if (c := cluster(request)) is None:
            raise
        return await c.lookup(session_id)


def all_json(request: Request) -> list[dict[str, Any]]:
    """Every session of every node, oldest first."""
    sessions = [s.to_json() for s in manager(request).list()]
    if (c := cluster(request)) is not None:
        sessions = sorted(sessions + c.sessions(), key=lambda s: str(s["createdAt"]))
    return sessions


async def elsewhere(request: Request, session_id: str, order: dict[str, Any]) -> Any:
    """Carry out `order` on the node that runs the session (after it was not found here)."""
    if (c := cluster(request)) is None:
        raise SessionNotFound()
    return await c.order(session_id, order)


@router.post("", status_code=201, response_model=SessionOut, responses=errors(400, 409, 429, 503))
async def create_session(
    request: Request, response: Response, body: CreateSession | None = None
) -> dict[str, Any]:
    """Start a program in a new PTY. Every field is optional."""
    body = body or CreateSession()
    m, c, node = manager(request), cluster(request), body.node
    options = body.model_dump(exclude={"node"})
    if node is None or node == m.node:
        created = (await m.create(SessionOptions(**options))).to_json()
    elif c is None:
        raise BadRequest(f"node: no such node: {node} (this server is not in a cluster)")
    else:
        created = await c.create(node, options)
    response.headers["Location"] = f"/api/sessions/{created['id']}"
    return created


@router.get("", response_model=list[SessionOut])
async def list_sessions(request: Request) -> list[dict[str, Any]]:
    """Every session, running or exited, oldest first."""
    return all_json(request)


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
                yield f"data: {json.dumps(all_json(request))}\n\n"
            else:
                yield ": keep-alive\n\n"
            await m.wait_change(seen, KEEPALIVE)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/{session_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(404, 503)},
)
async def session_events_one(request: Request, session_id: str) -> StreamingResponse:
    """One session, live: an event with the session now and after each change to it (size,
    clients, exit), then `event: gone` when it is deleted. A terminal page follows the size
    another device gave the session with it; a share token may open it (it names its session).
    """
    m = manager(request)
    await find_json(request, session_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        seen, sent = -1, ""
        while not m.closing:
            if m.version == seen:
                yield ": keep-alive\n\n"
            else:
                seen = m.version
                try:
                    now = json.dumps(session_json(request, session_id))
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


@router.get("/{session_id}", response_model=SessionOut, responses=errors(404, 503))
async def get_session(request: Request, session_id: str) -> dict[str, Any]:
    return await find_json(request, session_id)


@router.delete("/{session_id}", status_code=204, responses=errors(404, 503))
async def delete_session(request: Request, session_id: str) -> Response:
    """End the program (SIGHUP, SIGTERM, SIGKILL) and forget the session; its recording stays."""
    try:
        await manager(request).delete(session_id)
    except SessionNotFound:
        await elsewhere(request, session_id, {"op": "delete"})
    return Response(status_code=204)


@router.post("/{session_id}/input", status_code=204, responses=errors(400, 404, 429, 503))
async def send_input(request: Request, session_id: str, body: InputBody) -> Response:
    """Type `data` into the program, as a WebSocket input message would."""
    try:
        manager(request).type_into(session_id, body.data)
    except SessionNotFound:
        await elsewhere(request, session_id, {"op": "input", "data": body.data})
    return Response(status_code=204)


@router.post(
    "/{session_id}/resize", response_model=SessionOut, responses=errors(400, 404, 429, 503)
)
async def resize_session(request: Request, session_id: str, body: ResizeBody) -> dict[str, Any]:
    try:
        return manager(request).resize_session(session_id, body.cols, body.rows).to_json()
    except SessionNotFound:
        resized: dict[str, Any] = await elsewhere(
            request, session_id, {"op": "resize", "cols": body.cols, "rows": body.rows}
        )
        return resized


@router.patch("/{session_id}", response_model=SessionOut, responses=errors(400, 404, 503))
async def rename_session(request: Request, session_id: str, body: RenameBody) -> dict[str, Any]:
    """Rename a session (running or exited); the name outlives server restarts."""
    try:
        return manager(request).rename(session_id, body.name).to_json()
    except SessionNotFound:
        renamed: dict[str, Any] = await elsewhere(
            request, session_id, {"op": "rename", "name": body.name}
        )
        return renamed
