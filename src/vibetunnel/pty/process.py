"""A program running in a pseudo-terminal: spawn, read, queued writes, resize, staged kill.

Reads use `loop.add_reader` on the non-blocking master; writes go through a queue drained by
`loop.add_writer`, so a large paste never blocks the event loop or any other session. The
exit is seen through a pidfd, so no child watcher thread is needed.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import struct
import termios
import threading
from collections.abc import Callable

from vibetunnel.errors import InputOverflow

READ_SIZE = 65536
READ_BATCH = 256 * 1024
"""Bytes drained per wakeup: amortises the per-chunk work under heavy output."""
SHORT_READ = 4095
"""A read under this many bytes (the line discipline's buffer) ends a wakeup's reads: the
next would most likely fail with EAGAIN, a syscall and an exception for nothing (a fifth of
a keystroke's echo in Python). Output that came meanwhile is read at once: the loop's poll
is level-triggered."""
WRITE_QUEUE_LIMIT = 16 * 1024 * 1024
"""Input bytes held for a program that does not read; see `PtyProcess.write`."""
EXIT_GRACE = 0.5
"""After the child exits, how long to wait for the PTY to report end of output (EIO): a
background job still holding the terminal must not keep the session open forever."""


_RESET_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)
"""Ignored by Python, restored to their default for the program (as subprocess does)."""
_cwd_lock = threading.Lock()


def _spawn_on(tty: str, argv: list[str], cwd: str, env: dict[str, str]) -> int:
    """Run `argv` in a new session whose controlling terminal is `tty`; its pid.

    posix_spawn (vfork and exec, about 1 ms), not fork with a preexec_fn (5-8 ms in a
    process of our size: the page tables are copied and the child runs Python). The child
    calls setsid, then opens the terminal by name on fd 0: a session leader without a
    controlling terminal acquires the first terminal it opens (so Ctrl-C, Ctrl-Z and Ctrl-\
    reach the foreground job as signals). Descriptors are not closed one by one: every
    descriptor this program opens is close-on-exec (PEP 446; received ones are made so).

    posix_spawn has no working directory of its own (Python has no addchdir_np): this
    process's is changed around the call, under a lock. Only paths relative to the working
    directory, on another thread meanwhile, would notice: the server and the keeper use
    absolute ones.
    """
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, tty, os.O_RDWR, 0),
        (os.POSIX_SPAWN_DUP2, 0, 1),
        (os.POSIX_SPAWN_DUP2, 0, 2),
    ]
    with _cwd_lock:
        here = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # no read right needed
        try:
            os.chdir(cwd)
            try:
                return os.posix_spawnp(
                    argv[0],
                    argv,
                    env,
                    file_actions=actions,
                    setsid=True,
                    setsigmask=(),
                    setsigdef=_RESET_SIGNALS,
                )
            finally:
                os.fchdir(here)
        finally:
            os.close(here)


class _Child:
    """The pid of a program this process spawned, and its exit status once reaped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        """As subprocess says it: the exit code, or -N for signal N."""

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): 0, as subprocess
                self.returncode = 0
            else:
                if pid == self.pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def set_winsize(fd: int, cols: int, rows: int) -> None:
    """TIOCSWINSZ: the kernel sends SIGWINCH to the terminal's foreground process group."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_winsize(fd: int) -> tuple[int, int]:
    """(cols, rows) of the terminal."""
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return cols, rows


def exit_code(returncode: int) -> int:
    """A shell's view of an exit status: a signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class PtyProcess:
    """One program on one PTY, seen through its master.

    Made by `spawn` (this process is the program's parent and reaps it through a pidfd) or
    from a master handed over by the keeper (`PtyProcess(fd, pid)`: the keeper is the parent
    and reports the exit with `exited_with`). Then `start` on the running loop.
    """

    def __init__(self, master: int, pid: int, proc: _Child | None = None) -> None:
        self._proc = proc
        self.fd = master
        self.pid = pid
        self.returncode: int | None = None
        self._out = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pidfd = -1
        self._eof = False
        self._finished = False
        self._paused = False
        self._ended = False
        self._orphaned = False
        self._grace: asyncio.TimerHandle | None = None
        self._on_output: Callable[[bytes], None] = lambda data: None
        self._on_exit: Callable[[int | None], None] = lambda code: None
        self.exited = asyncio.Event()

    @classmethod
    def spawn(
        cls, argv: list[str], *, cwd: str, env: dict[str, str], cols: int, rows: int
    ) -> PtyProcess:
        """Start `argv` on a new PTY of the given size. Raises OSError if it cannot start."""
        master, slave = os.openpty()
        try:
            set_winsize(slave, cols, rows)
            pid = _spawn_on(os.ttyname(slave), argv, cwd, env)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # only the child holds the slave: its exit ends our reads with EIO
        os.set_blocking(master, False)
        return cls(master, pid, _Child(pid))

    def start(
        self,
        on_output: Callable[[bytes], None],
        on_exit: Callable[[int | None], None],
        *,
        paused: bool = False,
    ) -> None:
        """Begin reading (unless `paused`); `on_exit(code)` runs once, after the last output
        was delivered. The code is None when it can never be known (`orphan`)."""
        self._loop = asyncio.get_running_loop()
        self._on_output = on_output
        self._on_exit = on_exit
        self._paused = paused
        if not paused:
            self._loop.add_reader(self.fd, self._readable)
        if self._proc is not None:
            self._pidfd = os.pidfd_open(self.pid)
            self._loop.add_reader(self._pidfd, self._reap)

    # -- output -----------------------------------------------------------------------------

    def _readable(self, drain: bool = False) -> None:
        """Read what is waiting (up to READ_BATCH); with `drain`, up to the end of output
        if it is there, however the reads come."""
        chunks = []
        size = 0
        while size < READ_BATCH:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:  # EIO: every holder of the slave side has closed it
                if exc.errno != errno.EIO:
                    raise
                data = b""
            if not data:
                self._eof = True
                break
            chunks.append(data)
            size += len(data)
            if len(data) < SHORT_READ and not drain:
                break  # drained, most likely: see SHORT_READ
        if chunks:
            self._on_output(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if self._eof:
            assert self._loop is not None
            if not self._paused:
                self._loop.remove_reader(self.fd)
            self._maybe_finish()

    def pause_reading(self) -> None:
        """Stop reading output: the program blocks once the PTY buffer is full."""
        if not self._paused and not self._eof and not self._finished:
            assert self._loop is not None
            self._loop.remove_reader(self.fd)
            self._paused = True

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            if not self._eof and not self._finished:
                assert self._loop is not None
                self._loop.add_reader(self.fd, self._readable)

    def _reap(self) -> None:
        assert self._loop is not None and self._proc is not None
        returncode = self._proc.poll()
        if returncode is None:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self.exited_with(exit_code(returncode))

    def exited_with(self, code: int | None) -> None:
        """The program ended with `code` (None: unknown); finish once its output is read."""
        if self._ended or self._finished:
            return
        assert self._loop is not None
        self._ended = True
        self.returncode = code
        if self._paused:
            # Not reading (the keeper while a server reads): whoever reads drains the rest.
            self._finish()
            return
        if not self._eof:
            self._readable(drain=True)  # most output is already waiting: take it now
        if not self._eof and not self._finished:
            self._grace = self._loop.call_later(EXIT_GRACE, self._finish)
        self._maybe_finish()

    def orphan(self) -> None:
        """Nobody will report the exit (the keeper is gone): end at end of output, code
        unknown."""
        self._orphaned = True
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._eof and (self._ended or self._orphaned):
            self._finish()

    def _finish(self) -> None:
        if self._finished:
            return
        self._teardown(drain=True)
        self.exited.set()
        self._on_exit(self.returncode)

    def _teardown(self, drain: bool) -> None:
        self._finished = True
        assert self._loop is not None
        if self._grace is not None:
            self._grace.cancel()
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        if not self._eof and not self._paused:
            if drain:
                self._readable(drain=True)
            self._loop.remove_reader(self.fd)
        if self._out:
            self._loop.remove_writer(self.fd)
            self._out.clear()
        # The last holder's close hangs up the terminal: SIGHUP to any background job on it.
        os.close(self.fd)
        self.fd = -1

    @property
    def is_child(self) -> bool:
        """This process spawned the program (and ends it when it stops)."""
        return self._proc is not None

    def release(self) -> None:
        """Let go of the terminal without ending anything (the keeper holds it too)."""
        if not self._finished:
            self._teardown(drain=False)

    # -- input ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue `data` for the program's input; never blocks.

        Raises InputOverflow, and types nothing of `data`, when the queue would then hold
        more than WRITE_QUEUE_LIMIT bytes: the check counts the whole write, before the PTY
        takes any of it, so one huge write is refused as surely as many small ones, and a
        refused paste is never half typed (a retry then types it once).
        """
        if self._finished or not data:
            return
        if len(self._out) + len(data) > WRITE_QUEUE_LIMIT:
            raise InputOverflow(
                f"the program is not reading its input ({len(self._out)} bytes queued, "
                f"{len(data)} more would pass the {WRITE_QUEUE_LIMIT >> 20} MiB limit)"
            )
        if self._out:
            self._out += data
            return
        try:
            n = os.write(self.fd, data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            self._out += data[n:]
            assert self._loop is not None
            self._loop.add_writer(self.fd, self._writable)

    def _writable(self) -> None:
        try:
            n = os.write(self.fd, self._out)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._out)  # the program is gone; its exit is on its way
        del self._out[:n]
        if not self._out:
            assert self._loop is not None
            self._loop.remove_writer(self.fd)

    def resize(self, cols: int, rows: int) -> None:
        if not self._finished:
            set_winsize(self.fd, cols, rows)

    # -- ending -----------------------------------------------------------------------------

    def signal(self, sig: int) -> None:
        """Send `sig` to the program's process group (the shell and what it runs)."""
        if self._ended or self._finished:
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(self.pid, sig)

    async def terminate(self, grace: float = 1.0) -> None:
        """Staged kill: SIGHUP, then SIGTERM, then SIGKILL, `grace` seconds apart."""
        await staged_kill(self.signal, self.exited, grace)


async def staged_kill(send: Callable[[int], None], exited: asyncio.Event, grace: float) -> None:
    """SIGHUP, then SIGTERM, then SIGKILL, `grace` seconds apart, until `exited` is set."""
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL):
        if exited.is_set():
            return
        send(sig)
        try:
            async with asyncio.timeout(grace):
                await exited.wait()
        except TimeoutError:
            continue
