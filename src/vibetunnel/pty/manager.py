"""The registry of sessions: create with validated options, look up, delete, shut down."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vibetunnel.errors import BadRequest, Conflict, SessionNotFound, TooManyRequests
from vibetunnel.pty.process import PtyProcess
from vibetunnel.pty.session import Recorder, Session

TERM = "xterm-256color"
# Never hand the server's own secrets to the shells it starts.
SECRET_ENV = ("VIBETUNNEL_PASSWORD", "VIBETUNNEL_JWT_SECRET")


@dataclass
class SessionOptions:
    """PTYOptions of protocol.md, every field optional, plus an optional id."""

    id: str | None = None
    name: str | None = None
    cols: int = 80
    rows: int = 24
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    args: list[str] = field(default_factory=list)


def default_shell() -> str:
    return os.environ.get("SHELL") or "/bin/sh"


def child_env(extra: dict[str, str], session_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env.update(extra)
    env["TERM"] = TERM
    env["VIBETUNNEL_SESSION_ID"] = session_id
    return env


RecorderFactory = Callable[[Session], Recorder | None]


class SessionManager:
    """All sessions of this server, running and exited."""

    def __init__(
        self,
        *,
        max_sessions: int = 100,
        record_input: bool = False,
        recorder_factory: RecorderFactory | None = None,
    ) -> None:
        self.max_sessions = max_sessions
        self.record_input = record_input
        self.recorder_factory = recorder_factory
        self.version = 0
        self.closing = False
        self._changed = asyncio.Event()
        self._sessions: dict[str, Session] = {}
        self._adopted: set[str] = set()
        """Ids of sessions whose program runs under `vt`: the server never ends those."""

    def list(self) -> list[Session]:
        return list(self._sessions.values())

    def get(self, session_id: str) -> Session:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise SessionNotFound() from None

    def running_count(self) -> int:
        return sum(1 for s in self._sessions.values() if s.running)

    def create(self, opts: SessionOptions) -> Session:
        """Spawn a session. Raises BadRequest, Conflict or TooManyRequests."""
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
        try:
            process = PtyProcess.spawn(
                [command, *args],
                cwd=cwd,
                env=child_env(opts.env, session_id),
                cols=opts.cols,
                rows=opts.rows,
            )
        except FileNotFoundError:
            raise BadRequest(f"command: not found: {command}") from None
        except PermissionError:
            raise BadRequest(f"command: not executable: {command}") from None
        except OSError as exc:
            raise BadRequest(f"command: cannot start {command}: {exc.strerror}") from None
        session = Session(
            id=session_id,
            name=opts.name or os.path.basename(command),
            command=command,
            args=args,
            cwd=cwd,
            cols=opts.cols,
            rows=opts.rows,
            process=process,
            record_input=self.record_input,
        )
        if self.recorder_factory is not None:
            session.recorder = self.recorder_factory(session)
        self._add(session)
        return session

    def _add(self, session: Session) -> None:
        session.on_change = self.touch
        self._sessions[session.id] = session
        session.start()
        self.touch()

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
            del self._sessions[session.id]
            self._adopted.discard(session.id)
            self.touch()

    async def delete(self, session_id: str) -> None:
        """End the process (SIGHUP, SIGTERM, SIGKILL) and forget the session."""
        session = self.get(session_id)
        await session.kill()
        if self._sessions.get(session_id) is session:
            del self._sessions[session_id]
            self._adopted.discard(session_id)
            self.touch()

    async def shutdown(self) -> None:
        """Tell every client the server is going away, then end every program.

        Programs run by `vt` belong to the user's terminal and keep running: their links are
        closed with the server, and vt registers them again with the next server.
        """
        self.closing = True
        self.touch()  # live session lists end
        for session in self._sessions.values():
            session.shutdown_clients()
        owned = [s for s in self._sessions.values() if s.id not in self._adopted]
        await asyncio.gather(*(s.kill(grace=0.5) for s in owned))
