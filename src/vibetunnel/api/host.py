"""The host WebSocket /api/host: a `vt` process registers its session and streams it.

The route has accepted the socket and checked the token. vt registers (id, command, size,
the screen so far), then streams output frames and finally its exit. Browser input, resizes
and DELETE's signals go back to vt through the session's RemotePty. The server records
nothing itself: vt writes the .cast file; the server only keeps the recording index in step.

If the link drops without an exit (vt died, or the connection broke) the session is
forgotten and its browser clients are closed with 1001: vt registers again when it can, and
the clients reconnect to the same id.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.websockets import WebSocket, WebSocketDisconnect

from vibetunnel.aio import race
from vibetunnel.api.ws import close, refuse
from vibetunnel.errors import Conflict, ProtocolError, SessionNotFound
from vibetunnel.protocol import close as reasons
from vibetunnel.protocol import host as messages
from vibetunnel.protocol.close import Close
from vibetunnel.protocol.host import Exit, RecordingError, Register
from vibetunnel.pty.manager import SessionManager
from vibetunnel.pty.remote import RemotePty
from vibetunnel.pty.session import Session
from vibetunnel.recording.recorder import Recordings

log = logging.getLogger("vibetunnel.host")

REGISTER_TIMEOUT = 10.0
"""Seconds vt has to send its register message after connecting."""


class _Ended(Exception):
    """vt sent its exit message: close 1000."""


async def serve_host(ws: WebSocket, manager: SessionManager, recordings: Recordings) -> None:
    """Serve one vt link on an accepted socket until vt exits or the link drops.

    vt writes the .cast file itself; `recordings` keeps the index in step.
    """
    try:
        async with asyncio.timeout(REGISTER_TIMEOUT):
            first = await ws.receive()
        if first["type"] == "websocket.disconnect":
            return
        text = first.get("text")
        if text is None:
            raise ProtocolError("the first message must be a register text message")
        reg = messages.parse_register(text)
    except TimeoutError:
        await close(ws, Close.POLICY, reasons.NO_REGISTER)
        return
    except ProtocolError as exc:
        await refuse(ws, exc)
        return
    remote = RemotePty(reg.pid)
    session = _session(reg, remote)
    # vt writes to the same folder; it says if its recording failed or stopped.
    session.recording_error = reg.recording_error or recordings.error
    _replace_stale_link(manager, reg.id)
    try:
        manager.adopt(session)
    except Conflict as exc:
        await close(ws, Close.POLICY, exc.message)
        return
    if reg.screen:
        remote.feed(reg.screen.encode("utf-8"))
    # vt is writing the recording: listed, and not deletable meanwhile.
    recordings.started(recordings.entry(session))
    await _link(ws, session, remote, manager, recordings)


def _session(reg: Register, remote: RemotePty) -> Session:
    return Session(
        id=reg.id,
        name=reg.name,
        command=reg.command,
        args=reg.args,
        cwd=reg.cwd,
        cols=reg.cols,
        rows=reg.rows,
        process=remote,
        recorder=None,  # vt writes the recording itself
        recording=True,
        created_at=reg.created_at,
        fixed_size=True,  # the size of the user's own terminal: browsers render it as it is
    )


def _replace_stale_link(manager: SessionManager, session_id: str) -> None:
    """vt registers again while its old link is not yet seen as dropped: the new one wins."""
    try:
        old = manager.get(session_id)
    except SessionNotFound:
        return
    if isinstance(old.process, RemotePty) and old.running and old.process.linked:
        manager.forget(old)
        old.process.unlink()


async def _link(
    ws: WebSocket,
    session: Session,
    remote: RemotePty,
    manager: SessionManager,
    recordings: Recordings,
) -> None:
    try:
        which, task = await race(_send(ws, remote), _receive(ws, session, remote))
    finally:
        dropped = not remote.exited.is_set() or not remote.linked
        if dropped:
            # Dropped without an exit: forget it; vt registers again when it can.
            manager.forget(session)
            remote.unlink()
            session.shutdown_clients()
    exc = None if task.cancelled() else task.exception()
    if isinstance(exc, _Ended):
        recordings.finished(session.id, session.exit_code)
        await close(ws, Close.NORMAL, reasons.SESSION_ENDED)
    elif isinstance(exc, ProtocolError):
        await refuse(ws, exc)
    elif which == 0 and exc is None:  # the sender ended: a newer link replaced this one
        await close(ws, Close.GOING_AWAY, reasons.LINK_REPLACED)
    elif exc is not None and not isinstance(exc, WebSocketDisconnect | OSError | RuntimeError):
        log.error("host link of session %s failed", session.id, exc_info=exc)
        await close(ws, Close.INTERNAL, reasons.INTERNAL_ERROR)
    # After the close (the index worker may be writing metadata.json): a registration with no
    # file behind it (a fake or broken vt) leaves no entry, whether it exited or dropped.
    ended = isinstance(exc, _Ended) or (dropped and _gone(manager, session.id))
    if ended and await asyncio.wrap_future(recordings.forget_unwritten(session.id)):
        recordings.active.discard(session.id)


def _gone(manager: SessionManager, session_id: str) -> bool:
    """No session has this id now (none registered it again meanwhile)."""
    try:
        manager.get(session_id)
    except SessionNotFound:
        return True
    return False


async def _send(ws: WebSocket, remote: RemotePty) -> None:
    while (message := await remote.next_message()) is not None:
        await ws.send_text(message)


async def _receive(ws: WebSocket, session: Session, remote: RemotePty) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data = message.get("bytes")
        if data is not None:
            remote.feed(messages.parse_output(data))
            continue
        text = message.get("text")
        if text is None:
            raise ProtocolError("empty message")
        msg = messages.parse_from_vt(text)
        if isinstance(msg, Exit):
            remote.finish(msg.code)
            raise _Ended()
        if isinstance(msg, RecordingError):
            session.recording_error = msg.error  # recording: false, and why
            session.on_change()
            continue
        # vt's PTY has this size now (its own terminal, or a browser's resize echoed back).
        session.cols, session.rows = msg.cols, msg.rows
        session.on_change()
