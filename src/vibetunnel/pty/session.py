"""One PTY and its clients: fan-out of output, replay since the last clear, input, resize."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from vibetunnel.protocol.frames import SharedFrames
from vibetunnel.protocol.times import iso
from vibetunnel.pty.client import Client
from vibetunnel.pty.output import Output


class Pty(Protocol):
    """What a session drives: a PtyProcess here, or a PTY that `vt` runs in another process."""

    pid: int
    exited: asyncio.Event

    def start(
        self, on_output: Callable[[bytes], None], on_exit: Callable[[int | None], None]
    ) -> None: ...
    def write(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    async def terminate(self, grace: float = 1.0) -> None: ...


class Recorder(Protocol):
    """Where a session's events go besides its clients (the asciicast writer)."""

    @property
    def error(self) -> str | None:
        """Why the recording failed or stopped (it may find out after the session started, or
        reach its size limit), or None."""

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` on the loop once `error` is set."""

    def output(self, data: bytes) -> None: ...
    def input(self, data: str) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def close(self, exit_code: int | None) -> None: ...
    def detach(self) -> None: ...


@dataclass
class Session:
    """A running or exited program and the clients watching it.

    `process` is None for a session that had already ended when this server learnt of it
    (from the keeper after a restart): its screen is then read back from its recording.
    """

    id: str
    name: str
    command: str
    args: list[str]
    cwd: str
    cols: int
    rows: int
    process: Pty | None
    pid: int = 0
    recorder: Recorder | None = None
    record_input: bool = False
    created_at: float = field(default_factory=time.time)
    exited_at: float | None = None
    exit_code: int | None = None
    lost: str | None = None
    """Why this session's program can no longer be reached or its exit code known."""
    node: str | None = None
    """The cluster node that runs this session (docs/cluster.md); this server's name."""
    remote_clients: int = 0
    """Viewers watching it through other cluster nodes (their gateways say how many)."""
    fixed_size: bool = False
    """The size is not the browsers' to set: a `vt` session keeps its terminal's size."""
    recording: bool = False
    """This session is recorded (by this server's `recorder`, or by vt itself)."""
    recording_error: str | None = None
    """Why it is not recorded though recording is on (the folder cannot be written)."""
    output: Output = field(default_factory=Output)
    clients: set[Client] = field(default_factory=set)
    frames: SharedFrames = field(default_factory=SharedFrames)
    """Frames built once for every client in step (pty/client.py)."""
    on_change: Callable[[], None] = lambda: None
    """Called when what `to_json` shows changes (the manager tells the live session list)."""
    on_ended: Callable[[Session], None] = lambda session: None

    def __post_init__(self) -> None:
        if self.process is not None and not self.pid:
            self.pid = self.process.pid
        if self.recorder is not None:
            self.output.recording = self.recorder
            self.recording = True
            self.recorder.watch(self._recording_said)

    def record_with(self, recorder: Recorder | None, error: str | None) -> None:
        """Record with `recorder`; None: not recorded, because of `error` (None: recording
        is off)."""
        self.recorder = recorder
        self.output.recording = recorder
        self.recording = recorder is not None
        self.recording_error = None if recorder is not None else error
        if recorder is not None:
            recorder.watch(self._recording_said)

    def _recording_said(self) -> None:
        # The recording failed or stopped at its size limit: session lists show it now. The
        # session runs on, its clients served as before.
        self.on_change()

    def why_not_recorded(self) -> str | None:
        """Why this session is not being recorded though it should be, or None."""
        if self.recording_error is not None:
            return self.recording_error
        return self.recorder.error if self.recorder is not None else None

    def start(self) -> None:
        assert self.process is not None
        self.process.start(self.output.feed, self._exited)

    @property
    def running(self) -> bool:
        return self.exited_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "command": self.command,
            "args": self.args,
            "cwd": self.cwd,
            "cols": self.cols,
            "rows": self.rows,
            "status": "running" if self.running else "exited",
            "exitCode": self.exit_code,
            "pid": self.pid,
            "createdAt": iso(self.created_at),
            "exitedAt": iso(self.exited_at),
            "clients": len(self.clients) + self.remote_clients,
            "lost": self.lost,
            "title": self.output.title,
            "activityAt": iso(self.output.last_output),
            "recording": self.recording and self.why_not_recorded() is None,
            "recordingError": self.why_not_recorded(),
            "node": self.node,
        }

    # -- output -----------------------------------------------------------------------------

    def snapshot(self, limit: int | None = None) -> bytes:
        """What a joining or resynchronised client is sent first: the current screen, at
        most about `limit` bytes (the replay's own limit, 1 MiB, by default)."""
        return self.output.snapshot(limit)

    def _exited(self, code: int | None) -> None:
        self.output.finish()
        self.ended(code, time.time())
        for client in self.clients:
            client.session_exited(code)
        if self.recorder is not None:
            self.recorder.close(code)
        self.on_change()

    def ended(self, code: int | None, at: float) -> None:
        self.exit_code = code
        self.exited_at = at
        self.on_ended(self)

    # -- clients ----------------------------------------------------------------------------

    def attach(self, client: Client, screen: bytes | None = None) -> None:
        """Start `client` on the current screen (or `screen`, read back from the recording);
        an exited session then says goodbye."""
        client.feed(self.snapshot() if screen is None else screen)
        self.clients.add(client)
        self.output.sinks.append(client)
        self.on_change()
        if not self.running:
            client.session_exited(self.exit_code)

    def detach(self, client: Client) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.output.sinks.remove(client)
            self.on_change()

    # -- input ------------------------------------------------------------------------------

    def write(self, data: str) -> None:
        """Type `data` into the program (control characters go to the line discipline)."""
        if not self.running or self.process is None:
            return
        for client in self.clients:
            client.note_input()
        self.process.write(data.encode("utf-8"))
        if self.record_input and self.recorder is not None:
            self.recorder.input(data)

    def resize(self, cols: int, rows: int) -> None:
        """Latest resize wins, whichever client sent it (never for a fixed-size session)."""
        if self.fixed_size or not self.running or self.process is None:
            return
        if (cols, rows) == (self.cols, self.rows):
            return
        self.process.resize(cols, rows)  # first: it may refuse (InputOverflow, from vt)
        self.cols, self.rows = cols, rows
        self.on_change()
        if self.recorder is not None:
            self.recorder.resize(cols, rows)

    async def kill(self, grace: float = 1.0) -> None:
        """Staged kill; returns once the session has exited."""
        if self.running and self.process is not None:
            await self.process.terminate(grace)
            await asyncio.wait_for(self.process.exited.wait(), timeout=5.0)

    def shutdown_clients(self) -> None:
        for client in self.clients:
            client.shutdown()
