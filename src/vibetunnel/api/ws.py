"""The WebSocket /api/sessions/{id}/ws: glue between a socket and a session's Client.

The receiver parses client messages and applies them; the Client's sender task writes
output. Whichever ends first decides the close code (protocol/close.py):
  session ended -> 1000, server shutdown or idle -> 1001, bad message -> 1003,
  auth -> 1008, fault in our code -> 1011 (the session keeps running).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from vibetunnel.aio import race
from vibetunnel.api.wsconn import WIRE, BoundedWebSocketProtocol
from vibetunnel.errors import ProtocolError, SessionNotFound, VibeTunnelError
from vibetunnel.protocol import close as reasons
from vibetunnel.protocol import messages
from vibetunnel.protocol.close import Close
from vibetunnel.pty.client import Client, Ending
from vibetunnel.pty.manager import SessionManager
from vibetunnel.pty.session import Session

log = logging.getLogger("vibetunnel.ws")

# Checks the token of a WebSocket for one session; raises AuthError (closed with 1008).
# Returns whether the client may type and resize (False: a read-only share link).
Authorizer = Callable[[WebSocket, str | None], Awaitable[bool]]
# Another cluster node's session, mirrored here for as long as the context lasts (cluster/).
Remote = Callable[[str], AbstractAsyncContextManager[Session]]


async def close(ws: WebSocket, code: Close, why: str = "") -> None:
    """Close with `code` and `why` (cut to fit), unless the socket is already gone."""
    if ws.application_state != WebSocketState.DISCONNECTED:
        # WebSocketDisconnect: the peer went away meanwhile, or read nothing and was dropped
        # (api/wsconn.py): there is nobody left to tell.
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await ws.close(code, reasons.reason(why))


async def refuse(ws: WebSocket, error: VibeTunnelError) -> None:
    """Close with the error's close code, its message the reason (errors.py has the table)."""
    await close(ws, error.close_code, error.message)


async def admit(ws: WebSocket, authorize: Authorizer, session_id: str | None) -> bool:
    """Accept the socket, then refuse it as the edge or the token check says.

    Raises VibeTunnelError (the caller closes with its close code); returns whether the client
    may type and resize. Accepting first lets the refusal carry a close code and a reason.
    """
    await ws.accept()
    refusal = ws.scope["state"].get("refusal")
    if refusal is not None:
        raise refusal
    return await authorize(ws, session_id)


async def serve_socket(
    ws: WebSocket,
    session_id: str,
    manager: SessionManager,
    authorize: Authorizer,
    idle_timeout: float,
    remote: Remote | None = None,
) -> None:
    try:
        writable = await admit(ws, authorize, session_id)
        session = manager.get(session_id)
    except SessionNotFound as exc:
        if remote is None:  # an unknown session: 1000 "session not found"
            await refuse(ws, exc)
            return
        async with contextlib.AsyncExitStack() as stack:
            try:
                session = await stack.enter_async_context(remote(session_id))
            except VibeTunnelError as exc:  # on no node, or on one that is offline (1001)
                await refuse(ws, exc)
                return
            await _stream(ws, session, session.snapshot(), idle_timeout, writable)
        return
    except VibeTunnelError as exc:
        await refuse(ws, exc)
        return
    await _stream(ws, session, await manager.replay(session), idle_timeout, writable)


async def _stream(
    ws: WebSocket, session: Session, screen: bytes, idle_timeout: float, writable: bool
) -> None:
    wire = ws.scope.get("extensions", {}).get(WIRE)  # absent under a test transport
    client = Client(ws.send_bytes, ws.send_text, session.snapshot, wire=wire, shared=session.frames)
    session.attach(client, screen)
    try:
        which, task = await race(
            client.run(), _receive(ws, session, client, idle_timeout, writable, wire)
        )
    finally:
        session.detach(client)
    if task.cancelled():
        return
    exc = task.exception()
    if which == 0:  # the sender
        if exc is None:
            if task.result() is Ending.EXITED:
                await close(ws, Close.NORMAL, reasons.SESSION_ENDED)
            else:
                await close(ws, Close.GOING_AWAY, reasons.SERVER_SHUTDOWN)
        elif not isinstance(exc, (WebSocketDisconnect, OSError, RuntimeError)):
            log.error("sender failed for session %s", session.id, exc_info=exc)
            await close(ws, Close.INTERNAL, reasons.INTERNAL_ERROR)
        return
    if isinstance(exc, VibeTunnelError):
        await refuse(ws, exc)
    elif isinstance(exc, TimeoutError):
        await close(ws, Close.GOING_AWAY, reasons.idle_timeout(idle_timeout))
    elif exc is not None and not isinstance(exc, WebSocketDisconnect):
        log.error("receiver failed for session %s", session.id, exc_info=exc)
        await close(ws, Close.INTERNAL, reasons.INTERNAL_ERROR)


async def _receive(
    ws: WebSocket,
    session: Session,
    client: Client,
    idle_timeout: float,
    writable: bool,
    wire: BoundedWebSocketProtocol | None,
) -> None:
    loop = asyncio.get_running_loop()
    heard = [loop.time()]

    def on_text(text: str) -> bool:
        """A message applied as it arrives (api/wsconn.py); a bad one takes the queue, and
        this loop closes with its code."""
        try:
            apply(messages.parse(text), session, client, writable)
        except Exception:  # the loop below meets it again, and closes as it says
            return False
        heard[0] = loop.time()
        return True

    if wire is not None:
        wire.on_text = on_text
    try:
        while True:
            try:
                async with asyncio.timeout_at(heard[0] + idle_timeout):
                    message = await ws.receive()
            except TimeoutError:
                if loop.time() < heard[0] + idle_timeout:
                    continue  # messages came, straight to on_text
                raise
            heard[0] = loop.time()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            text = message.get("text")
            if text is None:
                raise ProtocolError("binary messages are not accepted; send JSON text")
            apply(messages.parse(text), session, client, writable)
    finally:
        if wire is not None:
            wire.on_text = None


def apply(msg: messages.Message, session: Session, client: Client, writable: bool) -> None:
    if isinstance(msg, messages.Ping):
        client.send_text(messages.PONG)  # dropped while eight are unsent (pty/client.py)
    elif isinstance(msg, messages.Ack):
        client.ack(msg.bytes)  # a read-only viewer acks too: the window is its own
    elif not writable:
        pass  # a read-only viewer: keystrokes and its window size do not reach the program
    elif isinstance(msg, messages.Input):
        session.write(msg.data)
    elif isinstance(msg, messages.Resize):
        session.resize(msg.cols, msg.rows)
