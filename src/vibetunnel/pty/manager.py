"""The registry of sessions: create with validated options, look up, delete, shut down.

Programs are spawned by a `Spawner`: the keeper (their parent, which outlives this server)
in production, or this process itself (`LocalSpawner`, for tests of this layer).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import logging
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vibetunnel.config import SESSION_ENV, TERM
from vibetunnel.errors import (
    BadRequest,
    Conflict,
    InputOverflow,
    SessionNotFound,
    TooManyRequests,
)
from vibetunnel.keeper.table import Entry
from vibetunnel.protocol.host import MAX_SCREEN
from vibetunnel.protocol.screen import ScreenBuffer
from vibetunnel.protocol.sessions import (
    args_problem,
    env_problem,
    id_problem,
    size_problem,
    text_problem,
)
from vibetunnel.pty.output import Output
from vibetunnel.pty.process import PtyProcess
from vibetunnel.pty.session import Recorder, Session

log = logging.getLogger("vibetunnel")

# Never hand the server's own secrets to the shells it starts.
SECRET_ENV = ("VIBETUNNEL_PASSWORD", "VIBETUNNEL_JWT_SECRET", "VIBETUNNEL_REDIS_URL")
EXITED_SCREENS = 64 * 1024 * 1024
"""Bytes of last screens kept for exited sessions, all together; older ones are read back
from their recordings when a client asks."""
MAX_HELD = 1024
"""Hexadecimal digits of the bytes a keeper holds back (a character cut in two: a few)."""


@dataclass
class SessionOptions:
    """The session options of docs/protocol.md (PTYOptions), every field optional, plus an
    optional id."""

    id: str | None = None
    name: str | None = None
    cols: int = 80
    rows: int = 24
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    args: list[str] = field(default_factory=list)


def options_problem(opts: SessionOptions) -> str | None:
    """The first bad field of `opts`, named, or None. The API's body model checks the same
    before this; a cluster order (cluster/owner.py) reaches here checked by no model."""
    env = opts.env
    if not isinstance(env, dict):
        return "env: must be an object"
    problems = (
        None if opts.id is None else id_problem(opts.id),
        text_problem("name", opts.name, null=True),
        size_problem("cols", opts.cols),
        size_problem("rows", opts.rows),
        text_problem("cwd", opts.cwd, null=True),
        text_problem("command", opts.command, null=True),
        args_problem(opts.args),
        *(f"env: {p}" for k, v in env.items() if (p := env_problem(k, v)) is not None),
    )
    found = next((p for p in problems if p is not None), None)
    if found is None and "\0" in (opts.command or "") + "".join(opts.args):
        found = "command: the command and its arguments must not hold NUL"
    return found


def default_shell() -> str:
    return os.environ.get("SHELL") or "/bin/sh"


def child_env(extra: dict[str, str], session_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env.update(extra)
    env["TERM"] = TERM
    env[SESSION_ENV] = session_id
    return env


class Spawner(Protocol):
    """Starts programs on new PTYs. `spawn` raises OSError as exec would."""

    async def spawn(self, request: dict[str, Any]) -> PtyProcess: ...
    def renamed(self, session_id: str, name: str) -> None: ...
    def forget(self, session_id: str) -> None: ...


class LocalSpawner:
    """Programs as children of this process: they end with it."""

    async def spawn(self, request: dict[str, Any]) -> PtyProcess:
        return PtyProcess.spawn(
            request["argv"],
            cwd=request["cwd"],
            env=request["env"],
            cols=request["cols"],
            rows=request["rows"],
        )

    def renamed(self, session_id: str, name: str) -> None:
        pass

    def forget(self, session_id: str) -> None:
        pass


class Recorders(Protocol):
    """Where sessions are recorded (recording.recorder.Recordings)."""

    error: str | None
    """Why sessions cannot be recorded (the folder cannot be written), or None."""

    def for_session(self, session: Session) -> Recorder | None: ...
    def resume(self, session: Session) -> Recorder | None: ...
    def read_screen(self, session_id: str) -> bytes: ...


class SessionManager:
    """All sessions of this server, running and exited."""

    def __init__(
        self,
        *,
        spawner: Spawner | None = None,
        max_sessions: int = 100,
        record_input: bool = False,
        recorders: Recorders | None = None,
        node: str | None = None,
    ) -> None:
        self.node = node
        """This server's name in a cluster, given to every session it runs."""
        self.spawner: Spawner = spawner or LocalSpawner()
        self.max_sessions = max_sessions
        self.record_input = record_input
        self.recorders = recorders
        self.version = 0
        self.closing = False
        self._changed = asyncio.Event()
        self._sessions: dict[str, Session] = {}
        self._adopted: set[str] = set()
        """Ids of sessions whose program runs under `vt`: the server never ends those."""
        self._screens: OrderedDict[str, int] = OrderedDict()
        """Exited sessions whose last screen is still in memory, oldest first, with sizes."""

    def list(self) -> list[Session]:
        return list(self._sessions.values())

    def get(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise SessionNotFound() from None

    def running_count(self) -> int:
        return sum(1 for s in self._sessions.values() if s.running)

    async def create(self, opts: SessionOptions) -> Session:
        """Spawn a session. Raises BadRequest, Conflict or TooManyRequests."""
        if (problem := options_problem(opts)) is not None:
            raise BadRequest(problem)
        session_id = opts.id or str(uuid.uuid4())
        if session_id in self._sessions:
            raise Conflict(f"id: session {session_id} already exists")
        if self.running_count() >= self.max_sessions:
            raise TooManyRequests(
                f"session limit reached ({self.max_sessions} running sessions)", retry_after=5
            )
        cwd = opts.cwd if opts.cwd is not None else str(Path.home())
        if not os.path.isdir(cwd):
            raise BadRequest(f"cwd: no such directory: {cwd}")
        if opts.command is None:
            command, args = default_shell(), ["-l"]
        else:
            command, args = opts.command, list(opts.args)
        if not command:
            raise BadRequest("command: must not be empty")
        name = opts.name or os.path.basename(command)
        created_at = time.time()
        request = {
            "id": session_id,
            "argv": [command, *args],
            "cwd": cwd,
            "env": child_env(opts.env, session_id),
            "cols": opts.cols,
            "rows": opts.rows,
            "name": name,
            "command": command,
            "args": args,
            "record": self.recorders is not None,
            "recordInput": self.record_input,
            "createdAt": created_at,
        }
        try:
            process = await self.spawner.spawn(request)
        except OSError as exc:
            raise _spawn_error(command, exc) from None
        if session_id in self._sessions:  # taken while we waited for the keeper
            process.orphan()
            raise Conflict(f"id: session {session_id} already exists")
        session = Session(
            id=session_id,
            name=name,
            command=command,
            args=args,
            cwd=cwd,
            cols=opts.cols,
            rows=opts.rows,
            process=process,
            record_input=self.record_input,
            created_at=created_at,
        )
        if self.recorders is not None:
            session.record_with(self.recorders.for_session(session), self.recorders.error)
        self._add(session)
        return session

    def adopt_all(
        self, kept: builtins.list[tuple[dict[str, Any], int | None]]
    ) -> builtins.list[Session]:
        """Every session a keeper handed over, but those this server already holds and those
        whose message holds no valid session (skipped with one log line, their fd closed)."""
        adopted = []
        for message, fd in kept:
            if message.get("id") in self._sessions:
                if fd is not None:
                    os.close(fd)
                continue
            try:
                adopted.append(self.adopt_kept(message, fd))
            except (TypeError, ValueError) as exc:
                named = message.get("id")
                log.warning("the keeper's session %.40r skipped: %.200s", named, exc)
                if fd is not None:
                    os.close(fd)
        return adopted

    def adopt_kept(self, kept: dict[str, Any], fd: int | None) -> Session:
        """A session the keeper holds, as it hands it to a new server: running (with its
        PTY master `fd`, screen and held bytes) or ended while no server ran. Raises
        ValueError or TypeError, registering nothing, for a message that holds no valid
        session (keeper/table.py's checks, and the screen's)."""
        entry = Entry.from_json(kept)
        text, hexed = kept.get("screen", ""), kept.get("held", "")
        if not isinstance(text, str) or len(text) > MAX_SCREEN:
            raise ValueError(f"screen must be a string of at most {MAX_SCREEN} characters")
        if not isinstance(hexed, str) or len(hexed) > MAX_HELD:
            raise ValueError(f"held must be at most {MAX_HELD} hexadecimal digits")
        held = bytes.fromhex(hexed)
        screen = ScreenBuffer()
        screen.append(text.encode("utf-8", "replace"))
        running = fd is not None and entry.exitedAt is None
        process = PtyProcess(fd, entry.pid) if fd is not None else None
        session = Session(
            id=entry.id,
            name=entry.name,
            command=entry.command,
            args=list(entry.args),
            cwd=entry.cwd,
            cols=entry.cols,
            rows=entry.rows,
            process=process,
            pid=entry.pid,
            record_input=entry.recordInput,
            created_at=float(entry.createdAt),
            lost=entry.lost,
            output=Output(screen=screen if running else None, held=held),
        )
        if self.recorders is not None and entry.record:
            if fd is not None:
                session.record_with(self.recorders.resume(session), self.recorders.error)
            else:  # ended meanwhile: the keeper recorded it to its end
                session.recording, session.recording_error = True, self.recorders.error
        self._sessions[session.id] = session
        session.node = self.node
        session.on_change = self.touch
        session.on_ended = self._ended
        if process is not None:
            os.set_blocking(fd, False)  # type: ignore[arg-type]
            session.start()
            if not running:  # ended meanwhile, output still in the terminal
                process.exited_with(entry.exitCode)
        else:
            session.ended(entry.exitCode, float(entry.exitedAt or time.time()))
        self.touch()
        return session

    def _add(self, session: Session) -> None:
        session.node = self.node
        session.on_change = self.touch
        session.on_ended = self._ended
        self._sessions[session.id] = session
        session.start()
        self.touch()

    # -- the keeper's news -------------------------------------------------------------------

    def kept_exit(self, session_id: str, code: int | None, at: float) -> None:
        session = self._sessions.get(session_id)
        if session is not None and isinstance(session.process, PtyProcess):
            session.process.exited_with(code)

    def keeper_lost(self, why: str) -> None:
        """Programs keep running while this server holds their terminals; their exit codes
        will never be known, and they end with this server."""
        for session in self._sessions.values():
            if session.running and session.id not in self._adopted:
                session.lost = f"{why}: the exit code will not be known"
                if isinstance(session.process, PtyProcess):
                    session.process.orphan()
        self.touch()

    # -- exited sessions' screens --------------------------------------------------------------

    def _ended(self, session: Session) -> None:
        if session.output.screen is None:
            return
        self._screens[session.id] = len(session.output.screen)
        total = sum(self._screens.values())
        while total > EXITED_SCREENS and len(self._screens) > 1:
            old_id, size = self._screens.popitem(last=False)
            total -= size
            old = self._sessions.get(old_id)
            if old is not None:
                old.output.screen = None

    async def replay(self, session: Session) -> bytes:
        """What a new client is sent first: the screen, read back from the recording if it
        was dropped from memory."""
        if session.output.screen is not None or self.recorders is None:
            return session.snapshot()
        return await asyncio.to_thread(self.recorders.read_screen, session.id)

    # -- change notification, for the live session list ---------------------------------------

    def touch(self) -> None:
        """Something a session list shows has changed: wake everyone waiting."""
        self.version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_change(self, seen: int, timeout: float) -> None:
        """Return once `version` differs from `seen`, or after `timeout` seconds."""
        if self.version == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    def adopt(self, session: Session) -> None:
        """Register a session whose PTY runs elsewhere (`vt`); replaces one with the same id."""
        old = self._sessions.get(session.id)
        if old is not None and old.running:
            raise Conflict(f"id: session {session.id} already exists")
        self._adopted.add(session.id)
        self._add(session)

    def forget(self, session: Session) -> None:
        """Drop an adopted session whose `vt` link is gone (vt registers it again later)."""
        if self._sessions.get(session.id) is session:
            self._drop(session.id)

    def _drop(self, session_id: str) -> None:
        del self._sessions[session_id]
        self._adopted.discard(session_id)
        self._screens.pop(session_id, None)
        self.touch()

    def running(self, session_id: str) -> Session:
        """The session, if its program still runs; else BadRequest (SessionNotFound)."""
        session = self.get(session_id)
        if not session.running:
            raise BadRequest(f"session {session_id} has exited (code {session.exit_code})")
        return session

    def type_into(self, session_id: str, data: str) -> None:
        """Type into a running session, as a WebSocket input message would."""
        try:
            self.running(session_id).write(data)
        except InputOverflow as exc:
            raise TooManyRequests(str(exc), retry_after=1) from None

    def resize_session(self, session_id: str, cols: int, rows: int) -> Session:
        try:
            session = self.running(session_id)
            session.resize(cols, rows)
        except InputOverflow as exc:  # a vt session whose vt reads nothing
            raise TooManyRequests(str(exc), retry_after=1) from None
        return session

    def rename(self, session_id: str, name: str) -> Session:
        """Give a session a new name (kept by the keeper across restarts)."""
        session = self.get(session_id)
        session.name = name
        if session_id not in self._adopted:
            self.spawner.renamed(session_id, name)
        self.touch()
        return session

    async def delete(self, session_id: str) -> None:
        """End the process (SIGHUP, SIGTERM, SIGKILL) and forget the session."""
        session = self.get(session_id)
        await session.kill()
        if self._sessions.get(session_id) is session:
            adopted = session_id in self._adopted
            self._drop(session_id)
            if not adopted:
                self.spawner.forget(session_id)

    def shutdown(self) -> builtins.list[tuple[str, bytes, bytes]]:
        """Tell every client the server is going away; let go of every kept program.

        Returns (id, screen, held bytes) of each running session, for the keeper, which
        reads their terminals from now on. Programs run by `vt` keep running too: their
        links close with the server, and vt registers them again with the next server.
        """
        self.closing = True
        self.touch()  # live session lists end
        handoff = []
        for session in self._sessions.values():
            session.shutdown_clients()
            process = session.process
            if session.id in self._adopted or not session.running:
                continue
            if not isinstance(process, PtyProcess) or process.is_child:
                continue  # ours alone: end_local ends it
            process.release()
            if session.recorder is not None:
                session.recorder.detach()
            handoff.append((session.id, session.snapshot(), session.output.held()))
        return handoff

    async def clients_gone(self, timeout: float) -> None:
        """Wait (at most `timeout` s) until every client has been told and has left."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while any(s.clients for s in self._sessions.values()):
                    await self.wait_change(self.version, timeout)

    async def end_local(self) -> None:
        """End programs that are this process's own children (LocalSpawner)."""
        local = [
            s
            for s in self._sessions.values()
            if isinstance(s.process, PtyProcess) and s.process.is_child and s.running
        ]
        await asyncio.gather(*(s.kill(grace=0.5) for s in local))


def _spawn_error(command: str, exc: OSError) -> BadRequest:
    if exc.errno == errno.ENOENT:
        return BadRequest(f"command: not found: {command}")
    if exc.errno == errno.EACCES:
        return BadRequest(f"command: not executable: {command}")
    return BadRequest(f"command: cannot start {command}: {exc.strerror}")
