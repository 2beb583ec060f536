"""The keeper process (`python -m vibetunnel.keeper HOME`): holds the programs of one home.

It spawns each program on a PTY (asked by the attached server), reaps it, and keeps its PTY
master. A server attaches with `hello` and is handed every master: from then on the server
reads and writes the PTYs itself and the keeper only waits for exits. When the server goes
(cleanly, after `bye` with each screen, or killed), the keeper reads every PTY itself,
keeping the screen and appending to the recording, until the next server attaches. The
recordings it carries on end at the size the last server said in its `hello` (that server's
`--max-recording-size`), as that server's own would have.

It exits when no server is attached and no program runs, or on `stop`. It stays small and
dull on purpose: it is the one part that cannot be restarted without ending the sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibetunnel import __version__
from vibetunnel.config import MAX_RECORDING
from vibetunnel.files import private_dir, raise_open_files_limit, write_private
from vibetunnel.keeper import table
from vibetunnel.keeper.channel import Channel, Message, peer_uid
from vibetunnel.keeper.table import Entry
from vibetunnel.keeper.wire import PROTOCOL
from vibetunnel.protocol.screen import ScreenBuffer
from vibetunnel.protocol.sessions import env_problem
from vibetunnel.protocol.values import is_int
from vibetunnel.pty.output import Output
from vibetunnel.pty.process import PtyProcess, get_winsize
from vibetunnel.recording.replay import read_screen
from vibetunnel.recording.writer import CastWriter, flush_all
from vibetunnel.redact import log_to_stderr

log = logging.getLogger("vibetunnel.keeper")

SOCKET = "keeper.sock"
LOCK = "keeper.lock"
INFO = "keeper.json"
FIRST_CONTACT = 30.0
"""Seconds a new keeper waits for its first server before it gives up (if it holds nothing)."""
STOP_GRACE = 1.0


@dataclass
class Held:
    entry: Entry
    process: PtyProcess | None = None
    output: Output | None = None
    """The screen and recording, while the keeper reads (no server attached)."""
    handed: tuple[bytes, bytes] | None = None
    """(screen, held bytes) the leaving server handed over with its `bye`."""
    writer: CastWriter | None = field(default=None, repr=False)


class Keeper:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.sessions: dict[str, Held] = {}
        self.server: Channel | None = None
        self.server_pid = 0
        self.max_recording = MAX_RECORDING
        """Bytes at which a recording this keeper carries on ends (the last server's word)."""
        self._bye = False
        self._dirty = False
        """The table changed since its last snapshot."""
        self._writing = False
        """A snapshot of the table is being written on a worker thread."""
        self._snapshots = 0
        self._written = 0
        """The last snapshot on disk (under `_write_lock`, which orders the writes)."""
        self._write_lock = threading.Lock()
        self._stopping = False
        self.done = asyncio.Event()
        self._idle: asyncio.TimerHandle | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        for entry in table.load(self.home):
            self.sessions[entry.id] = Held(entry)
        self._save()
        listener.setblocking(False)
        loop.add_reader(listener.fileno(), self._accept, listener)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self._stop(True)))
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        self._idle = loop.call_later(FIRST_CONTACT, self._exit_if_idle)
        await self.done.wait()
        loop.remove_reader(listener.fileno())
        self._save()
        flush_all()

    def _running(self) -> list[Held]:
        return [h for h in self.sessions.values() if h.entry.running and h.process is not None]

    def _exit_if_idle(self) -> None:
        if self.server is None and not self._running() and not self._stopping:
            log.info("no server and no program: exiting")
            self.done.set()

    def _snapshot(self) -> tuple[int, bytes]:
        self._dirty = False
        self._snapshots += 1
        entries = [h.entry for h in self.sessions.values()]
        return self._snapshots, table.encode(os.getpid(), entries)

    def _write(self, snapshot: int, payload: bytes) -> None:
        """Write a snapshot unless a newer one is on disk already (any thread)."""
        with self._write_lock:
            if snapshot <= self._written:
                return
            try:
                table.write(self.home, payload)
            except OSError as exc:
                log.error("cannot write the session table: %s", exc)
                return
            self._written = snapshot

    def _save(self) -> None:
        """Write the table now, on this thread (at start and at the end)."""
        self._write(*self._snapshot())

    def _changed(self) -> None:
        # One write for a burst of changes (300 spawns in a second), made on a worker thread:
        # its fsyncs never hold up a spawn. Changes made while it writes are the next write.
        # The server hears of a spawn before the table holds it, as it always did: a keeper
        # killed meanwhile loses the entry, and the terminal with it (its master closes).
        if not self._dirty:
            self._dirty = True
            if not self._writing:
                asyncio.get_running_loop().call_soon(self._save_soon)

    def _save_soon(self) -> None:
        if self._writing or not self._dirty:
            return  # being written (`_saved` looks again), or written by `_save`
        self._writing = True
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self._write, *self._snapshot())
        future.add_done_callback(self._saved)

    def _saved(self, future: asyncio.Future[None]) -> None:
        self._writing = False
        if not future.cancelled() and future.exception() is not None:
            log.error("cannot write the session table: %r", future.exception())
        if self._dirty:
            self._save_soon()

    # -- connections ------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if peer_uid(conn) != os.getuid():
            log.warning("refused a connection from another user")
            conn.close()
            return
        chan: Channel

        def on_message(message: Message, fds: list[int]) -> None:
            try:
                self._handle(chan, message, fds)
            finally:
                for fd in fds:
                    os.close(fd)  # the keeper asks for none: drop any it was sent

        chan = Channel(conn, on_message, lambda: self._closed(chan))

    def _handle(self, chan: Channel, message: Message, fds: list[int]) -> None:
        kind = message["type"]
        if kind == "hello":
            self._hello(chan, message)
        elif kind == "stop":
            asyncio.ensure_future(self._stop(bool(message.get("sessions")), chan))
        elif chan is not self.server:
            chan.send({"type": "refused", "why": f"{kind!r} before hello"})
        elif kind == "spawn":
            self._spawn(chan, message)
        elif kind == "renamed":
            held = self.sessions.get(str(message.get("id")))
            name = message.get("name")
            if held is not None and isinstance(name, str) and 0 < len(name) <= 256:
                held.entry.name = name
                self._changed()
        elif kind == "forget":
            held = self.sessions.get(str(message.get("id")))
            if held is not None and not held.entry.running:
                del self.sessions[held.entry.id]
                self._changed()
        elif kind == "screen":
            held = self.sessions.get(str(message.get("id")))
            data, pending = message.get("data"), message.get("held")
            if held is not None and isinstance(data, str) and isinstance(pending, str):
                held.handed = (data.encode("utf-8"), bytes.fromhex(pending))
        elif kind == "bye":
            self._bye = True

    def _closed(self, chan: Channel) -> None:
        if chan is self.server:
            self.server = None
            log.info("server %d detached%s", self.server_pid, "" if self._bye else " (lost)")
            self._read_all(graceful=self._bye)
            self._exit_if_idle()

    # -- a server attaches: hand it every master ---------------------------------------------

    def _hello(self, chan: Channel, message: Message) -> None:
        if message.get("protocol") != PROTOCOL:
            why = (
                f"the session keeper (pid {os.getpid()}) is vibetunnel {__version__}, "
                f"protocol {PROTOCOL}, not {message.get('protocol')}"
            )
            chan.send({"type": "refused", "why": why, "protocol": PROTOCOL})
            return
        if self.server is not None:
            why = f"another server (pid {self.server_pid}) is running with this home"
            chan.send({"type": "refused", "why": why})
            return
        self.server = chan
        pid = message.get("pid")
        self.server_pid = pid if isinstance(pid, int) else 0
        limit = message.get("maxRecording")
        self.max_recording = limit if is_int(limit) and limit > 0 else MAX_RECORDING
        self._bye = False
        if self._idle is not None:
            self._idle.cancel()
        chan.send({"type": "welcome", "pid": os.getpid(), "version": __version__})
        for held in self._running():
            assert held.process is not None
            held.process.pause_reading()
        screens = {}
        for held in self.sessions.values():
            if held.output is not None:
                screens[held.entry.id] = (held.output.snapshot(), held.output.held())
                held.output = None
            if held.writer is not None:
                held.writer.close()
                held.writer = None
        flush_all()  # the server appends to the recordings next: ours must be on disk first
        for held in self.sessions.values():
            screen, pending = screens.get(held.entry.id, (b"", b""))
            body: dict[str, Any] = {
                "type": "session",
                **held.entry.to_json(),
                "screen": screen.decode("utf-8"),
                "held": pending.hex(),
            }
            fds = []
            if held.entry.running and held.process is not None and held.process.fd >= 0:
                fds = [held.process.fd]
                # A server resized it since: the terminal knows its size.
                with contextlib.suppress(OSError):
                    body["cols"], body["rows"] = get_winsize(held.process.fd)
            chan.send(body, fds)
        chan.send({"type": "ready"})

    # -- no server: read every PTY ------------------------------------------------------------

    def _read_all(self, graceful: bool) -> None:
        for held in self._running():
            entry = held.entry
            path = self.home / "recordings" / f"{entry.id}.cast"
            screen = ScreenBuffer()
            pending = b""
            if graceful and held.handed is not None:
                screen.append(held.handed[0])
                pending = held.handed[1]
            elif entry.record:
                # Killed: its screen is in its recording, but for the last few milliseconds.
                screen.append(read_screen(path))
            held.handed = None
            held.writer = (
                CastWriter.resume(path, entry.createdAt, max_bytes=self.max_recording)
                if entry.record
                else None
            )
            held.output = Output(held.writer, screen, pending)
            assert held.process is not None
            held.process.resume_reading()

    def _output(self, held: Held, data: bytes) -> None:
        if held.output is not None:
            held.output.feed(data)

    def _exited(self, held: Held, code: int | None) -> None:
        held.entry.exitCode = code
        held.entry.exitedAt = time.time()
        held.process = None
        if held.output is not None:
            held.output.finish()
            held.output = None
        if held.writer is not None:
            held.writer.close()
            held.writer = None
        self._changed()
        if self.server is not None:
            self.server.send(
                {"type": "exited", "id": held.entry.id, "code": code, "at": held.entry.exitedAt}
            )
        else:
            self._exit_if_idle()

    # -- spawn --------------------------------------------------------------------------------

    def _spawn(self, chan: Channel, m: Message) -> None:
        # Every request is answered: the server waits for this answer (ANSWER_TIMEOUT).
        req = m.get("req")
        try:
            entry, argv, env = _spawn_request(m)
            if entry.id in self.sessions:
                raise ValueError("id already exists")
            process = PtyProcess.spawn(
                argv, cwd=entry.cwd, env=env, cols=entry.cols, rows=entry.rows
            )
        except OSError as exc:
            chan.send({"type": "failed", "req": req, "errno": exc.errno, "why": exc.strerror})
            return
        except Exception as exc:  # ValueError, TypeError, ...: nothing can be started from it
            why = str(exc)[:200] or type(exc).__name__
            log.warning("spawn %.40r refused: %s", req, why)
            chan.send({"type": "failed", "req": req, "errno": 0, "why": why})
            return
        entry.pid = process.pid
        held = Held(entry, process)
        process.start(
            functools.partial(self._output, held),
            functools.partial(self._exited, held),
            paused=True,
        )
        self.sessions[entry.id] = held
        self._changed()
        chan.send({"type": "spawned", "req": req, "id": entry.id, "pid": process.pid}, [process.fd])

    # -- stop ---------------------------------------------------------------------------------

    async def _stop(self, sessions: bool, chan: Channel | None = None) -> None:
        self._stopping = True
        running = self._running()
        if sessions and running:
            await asyncio.gather(
                *(h.process.terminate(STOP_GRACE) for h in running if h.process is not None)
            )
        left = len(self._running())
        if chan is not None:
            chan.send({"type": "stopped", "ended": len(running) - left, "running": left})
            await chan.drain(2.0)
        self._stopping = False
        if sessions or (self.server is None and not left):
            self.done.set()


def _spawn_request(m: Message) -> tuple[Entry, list[str], dict[str, str]]:
    argv, env = m.get("argv"), m.get("env")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    if not isinstance(env, dict):
        raise ValueError("env must map strings to strings")
    for name, value in env.items():
        if (problem := env_problem(name, value)) is not None:
            raise ValueError(f"env: {problem}")  # names only: values are never logged
    if any("\0" in a for a in argv):
        raise ValueError("argv must not hold NUL")
    # pid 1 until the spawn gives the real one: from_json checks the rest of the entry whole.
    entry = Entry.from_json({**m, "pid": 1, "exitCode": None, "exitedAt": None, "lost": None})
    if "\0" in entry.cwd:
        raise ValueError("cwd must not hold NUL")
    return entry, argv, env


def _listen(home: Path) -> socket.socket:
    path = home / SOCKET
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead keeper's: we hold the lock
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fork = args[:1] == ["--fork"]
    if fork:
        args = args[1:]
    if len(args) != 1:
        print("usage: python -m vibetunnel.keeper [--fork] HOME", file=sys.stderr)
        return 2
    home = Path(args[0]).absolute()  # spawns change the working directory for a moment
    if fork and os.fork() > 0:
        return 0  # the starter waits for this one; the keeper below is nobody's child
    log_to_stderr(logging.INFO, "%(asctime)s keeper %(levelname)s: %(message)s")  # keeper.log
    private_dir(home)
    lock = os.open(home / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another keeper holds this home: the server talks to that one
    raise_open_files_limit()
    listener = _listen(home)
    info = home / INFO
    # Whole and 0600 from its first byte (write_text, then chmod, left it at the umask's
    # mode for a moment, and for good if the keeper died in between).
    about = {"pid": os.getpid(), "protocol": PROTOCOL, "version": __version__}
    write_private(info, json.dumps(about).encode())
    log.info("keeper %d for %s", os.getpid(), home)
    try:
        asyncio.run(Keeper(home).run(listener))
    finally:
        with contextlib.suppress(FileNotFoundError):
            (home / SOCKET).unlink()
        with contextlib.suppress(FileNotFoundError):
            info.unlink()
        listener.close()
        os.close(lock)
    return 0
