"""The local side of `vt`: one program on a new PTY, relayed both ways with this terminal.

PTY output goes to this terminal (through a writer thread, so a stalled terminal never stalls
the loop), to the screen buffer (what a browser joining late sees), to the recording and to
the server link. This terminal's keys and browser input both go to the PTY. The PTY starts
at this terminal's size and keeps it (SIGWINCH): browsers render it at that size (the server
passes on no browser resize of a vt session).
SIGTERM, SIGHUP and SIGINT sent to vt restore the terminal and are passed on to the program;
vt then ends with the program's exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import shlex
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vibetunnel.config import MAX_RECORDING, SESSION_ENV, recordings_dir
from vibetunnel.config import TERM as DEFAULT_TERM
from vibetunnel.errors import InputOverflow
from vibetunnel.protocol import host as messages
from vibetunnel.protocol.messages import Input, Resize
from vibetunnel.pty.output import Output
from vibetunnel.pty.process import PtyProcess
from vibetunnel.recording.writer import CastWriter, flush_all
from vibetunnel.vt.link import Link, server_info
from vibetunnel.vt.terminal import DEFAULT_SIZE, RawMode, terminal_size

log = logging.getLogger("vibetunnel.vt")

KILL_GRACE = 3.0
"""Seconds the program has to end after vt passed it SIGTERM or SIGHUP, before SIGKILL."""
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class TerminalWriter:
    """Writes to a file descriptor from one thread, in order, never blocking the loop.

    A terminal slower than the program (a slow SSH link) must not make vt hold everything:
    past `high` queued bytes `on_full` runs (vt stops reading the PTY, so the program
    blocks, as it would in that terminal without vt), and `on_drained` once below `low`.
    """

    def __init__(
        self,
        fd: int,
        on_full: Callable[[], None] = lambda: None,
        on_drained: Callable[[], None] = lambda: None,
        *,
        high: int = 1 << 20,
        low: int = 1 << 18,
    ) -> None:
        self.fd = fd
        self.high, self.low = high, low
        self._on_full, self._on_drained = on_full, on_drained
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.backlog = 0
        self.full = False
        self._thread = threading.Thread(target=self._run, name="vt-stdout", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        with self._lock:
            self.backlog += len(data)
            full = not self.full and self.backlog > self.high
            if full:
                self.full = True
        self._queue.put(data)
        if full:
            self._on_full()

    def _written(self, n: int) -> None:
        with self._lock:
            self.backlog -= n
            drained = self.full and self.backlog < self.low
            if drained:
                self.full = False
        if drained:
            self._on_drained()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most `timeout` seconds), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        broken = False
        while (data := self._queue.get()) is not None:
            view = memoryview(data)
            while view and not broken:
                try:
                    view = view[os.write(self.fd, view) :]
                except InterruptedError:
                    continue
                except OSError:
                    broken = True  # the terminal is gone; keep draining the queue
            self._written(len(data))


def child_env(session_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env["TERM"] = env.get("TERM") or DEFAULT_TERM
    env[SESSION_ENV] = session_id
    return env


class Relay:
    """Runs `argv` on a PTY relayed with this terminal; `run()` returns its exit code."""

    def __init__(
        self,
        argv: list[str],
        *,
        name: str,
        home: Path,
        session_id: str,
        raw: RawMode,
        stdin: int = 0,
        stdout: int = 1,
        stderr: int = 2,
    ) -> None:
        self.argv = argv
        self.name = name
        self.home = home
        self.id = session_id
        self.raw = raw
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.cols, self.rows = DEFAULT_SIZE
        self.created_at = time.time()
        try:
            self.cwd = os.getcwd()
        except OSError:
            self.cwd = "/"
        self.output = Output()
        self._kill: asyncio.TimerHandle | None = None

    @property
    def recording_path(self) -> Path:
        return recordings_dir(self.home) / f"{self.id}.cast"

    async def run(self) -> int:
        """Spawn, relay until the program ends, return its exit code. Raises OSError if the
        program cannot start."""
        loop = asyncio.get_running_loop()
        size = terminal_size(self.stdin, self.stdout)
        if size is not None:
            self.cols, self.rows = size
        env = child_env(self.id)
        self.pty = PtyProcess.spawn(
            self.argv, cwd=self.cwd, env=env, cols=self.cols, rows=self.rows
        )
        pty = self.pty

        def drained() -> None:  # runs on the writer thread
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(pty.resume_reading)

        def recording_said() -> None:  # runs on the recording's writer thread
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(self._recording_said)

        self.out = TerminalWriter(self.stdout, on_full=pty.pause_reading, on_drained=drained)
        self.recorder = CastWriter(
            self.recording_path,
            width=self.cols,
            height=self.rows,
            command=shlex.join(self.argv),
            title=self.name,
            env={"SHELL": os.environ.get("SHELL", "/bin/sh"), "TERM": env["TERM"]},
            timestamp=self.created_at,
            max_bytes=self.max_recording(),
            on_error=recording_said,
        )
        self.link = Link(self.home, self._registration, self._from_server, self.notice)
        self.output.recording = self.recorder
        self.output.sinks.append(self.link)
        undo: list[Callable[[], object]] = []
        try:
            self.pty.start(self._output, lambda code: None)
            self.link.start()
            loop.add_reader(self.stdin, self._typed)
            undo.append(lambda: loop.remove_reader(self.stdin))
            if self.raw.active:
                loop.add_signal_handler(signal.SIGWINCH, self._local_resize)
                undo.append(lambda: loop.remove_signal_handler(signal.SIGWINCH))
            for sig in FORWARDED:
                loop.add_signal_handler(sig, self._signalled, sig)
                undo.append(functools.partial(loop.remove_signal_handler, sig))
            await self.pty.exited.wait()
            assert self.pty.returncode is not None
            code = self.pty.returncode
            self.output.finish()
            try:
                await self.link.finish(code)
            except Exception:
                log.exception("vt: link failed at exit")
            return code
        finally:
            for step in reversed(undo):
                with contextlib.suppress(Exception):
                    step()
            if self._kill is not None:
                self._kill.cancel()
            self.recorder.close()
            await asyncio.to_thread(flush_all)
            await asyncio.to_thread(self.out.close)

    def max_recording(self) -> int:
        """Where the recording ends: at the running server's `--max-recording-size` (from
        its server.json), else, with no server running, at the default."""
        info = server_info(self.home)
        return MAX_RECORDING if info is None or info.max_recording is None else info.max_recording

    def _recording_said(self) -> None:
        error = self.recorder.error
        if error is not None:
            self.link.recording_failed(error)

    # -- output -----------------------------------------------------------------------------

    def _output(self, raw: bytes) -> None:
        self.out.write(raw)  # the terminal gets the program's bytes as they are
        self.output.feed(raw)  # the screen, the recording and the link

    def notice(self, text: str) -> None:
        """One line for the user on stderr (raw mode needs the carriage return)."""
        with contextlib.suppress(OSError):
            os.write(self.stderr, (text + ("\r\n" if self.raw.active else "\n")).encode())

    # -- input ------------------------------------------------------------------------------

    def _typed(self) -> None:
        try:
            data = os.read(self.stdin, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the terminal hung up
        if not data:
            asyncio.get_running_loop().remove_reader(self.stdin)
            if not os.isatty(self.stdin):
                self._write(b"\x04")  # piped input ended: the program sees end of input
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        # A program that does not read its input: like a full terminal, keys are dropped.
        with contextlib.suppress(InputOverflow):
            self.pty.write(data)

    # -- the server link --------------------------------------------------------------------

    def _registration(self) -> messages.Register:
        return messages.Register(
            id=self.id,
            name=self.name,
            command=self.argv[0],
            args=self.argv[1:],
            cwd=self.cwd,
            cols=self.cols,
            rows=self.rows,
            pid=self.pty.pid,
            created_at=self.created_at,
            screen=self.output.snapshot().decode("utf-8", "replace"),
            recording_error=self.recorder.error,
        )

    def _from_server(self, msg: messages.FromServer) -> None:
        if isinstance(msg, Input):
            self._write(msg.data.encode("utf-8"))
        elif isinstance(msg, Resize):
            self.resize(msg.cols, msg.rows)
        else:
            self.pty.signal(msg.signal)

    # -- size and signals -------------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> None:
        """Latest wins: set the PTY size, record it, and tell the server."""
        if self.pty.returncode is not None:
            return
        if (cols, rows) != (self.cols, self.rows):
            self.cols, self.rows = cols, rows
            self.pty.resize(cols, rows)
            self.recorder.resize(cols, rows)
        # Also when unchanged: a browser resize crossing a local one ends in agreement.
        self.link.resized(cols, rows)

    def _local_resize(self) -> None:
        size = terminal_size(self.stdin, self.stdout)
        if size is not None:
            self.resize(*size)

    def _signalled(self, sig: int) -> None:
        if sig != signal.SIGINT:
            self.raw.restore()  # first: whatever happens next, the terminal is usable
            if self._kill is None:
                self._kill = asyncio.get_running_loop().call_later(
                    KILL_GRACE, self.pty.signal, signal.SIGKILL
                )
        self.pty.signal(sig)
