"""Queue-fed .cast writers: disk writes never stall the event loop.

Every `CastWriter` puts plain tuples on one `queue.SimpleQueue`; one daemon thread,
shared by all writers and started on first use, encodes them and writes them.
The thread drains whatever is queued, then writes each file's new lines with
`os.write` (no user-space buffer), so at any moment a file on disk is whole lines
plus at most one torn last line (a write cut by SIGKILL or a full disk), which
`asciicast.parse` tolerates and `RecordingIndex.load` repairs. Errors are logged
once per file and never stop the thread.

A writer given `max_bytes` ends its file there: whole event lines while they fit (the one
that does not is cut to fit, if it is output), then a marker event saying why (`STOPPED`),
and nothing more; the file is then at most `max_bytes`. A writer that resumes a file ending
with that marker writes nothing to it. Each writer holds a shared `flock` on its file while
it is open: the recordings budget deletes only files nobody holds (budget.py).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vibetunnel.config import format_size
from vibetunnel.files import open_plain, private_dir
from vibetunnel.recording.asciicast import event_bytes, header_line, resize_data
from vibetunnel.recording.index import repair_cast

log = logging.getLogger(__name__)

FILE_MODE = 0o600
# One batch is at most this many queued items or this much event data, so a
# flood of output still reaches the disk in bounded steps.
_BATCH_ITEMS = 10_000
_BATCH_CHARS = 4 * 1024 * 1024

_OPEN, _EVENT, _CLOSE, _FLUSH = "open", "event", "close", "flush"

COALESCE = 0.05
"""Seconds of heavy output merged into one "o" event (also the most a SIGKILL can lose)."""
COALESCE_CHARS = 256 * 1024
QUIET = 0.025
QUIET_CHARS = 16 * 1024
"""Output under QUIET_CHARS after QUIET seconds is queued then, not after COALESCE: typing
and prompts reach the disk (and a crash's replay) within 25 ms, while fast typing costs the
writer thread one wakeup per 25 ms, not one per key. Each wakeup takes the GIL from the
event loop for a while: at 5 ms, recording cost fast typing some 10 µs of CPU a key."""

_os_write = os.write
"""The one call that writes recording data (tests replace it to fake a full disk)."""

STOPPED = "recording stopped at its size limit"
"""How the marker that ends a recording at its size limit begins (and its error)."""
MARKER_ROOM = 256
"""Bytes kept free under a size limit for that marker (it takes some 100)."""


def stopped_message(max_bytes: int) -> str:
    """The marker's text, and the recording's error, for a recording stopped at `max_bytes`."""
    return f"{STOPPED} of {format_size(max_bytes)} (--max-recording-size)"


class _FileState:
    """A writer's file, touched only by the writer thread (except the fields read elsewhere:
    `offset`, `error`, `ended_at`, each one assignment)."""

    __slots__ = (
        "path",
        "header",
        "fd",
        "offset",
        "queued",
        "max_bytes",
        "room",
        "last_t",
        "failed",
        "broken",
        "closed",
        "error",
        "ended_at",
        "on_error",
    )

    def __init__(
        self,
        path: Path,
        header: str | None,
        max_bytes: int | None,
        on_error: Callable[[], None] | None,
    ) -> None:
        self.path = path
        self.header = header
        """None: the file exists, carry it on (append)."""
        self.fd = -1
        self.offset = 0
        """Bytes of whole lines on disk."""
        self.queued = 0
        """Bytes of lines this batch holds for the file, not yet written."""
        self.max_bytes = max_bytes
        self.room = None if max_bytes is None else max_bytes - MARKER_ROOM
        """Bytes the header and events may take (None: no limit): the rest is the marker's."""
        self.last_t = 0.0
        self.failed = False
        """An error was logged for this file (log once)."""
        self.error: str | None = None
        """That first error, said for a user (read from other threads: one assignment)."""
        self.ended_at: float | None = None
        """The time (in the recording) at which the file reached its size limit and ended."""
        self.on_error = on_error
        """Called on the writer thread when `error` is set."""
        self.broken = False
        """Nothing more can be written to this file."""
        self.closed = False


_queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            first = _thread is None
            _thread = threading.Thread(target=_run, name="vibetunnel-cast-writer", daemon=True)
            _thread.start()
            if first:
                # A daemon thread dies with the interpreter: write what is queued first.
                atexit.register(flush_all)


def _said(state: _FileState, error: str) -> None:
    state.error = error
    if state.on_error is not None:
        try:
            state.on_error()
        except Exception:
            log.exception("recording %s: its error callback failed", state.path)


def _fail(state: _FileState, what: str, error: OSError) -> None:
    if not state.failed:
        state.failed = True
        log.error("recording %s: %s failed: %s", state.path, what, error)
        _said(state, f"recording {state.path}: {what} failed: {error.strerror or error}")


def _open_held(path: Path, flags: int) -> int:
    """Open a plain file and take a shared lock on it: no budget deletes it while it is held.
    A file deleted between the open and the lock is opened again (made anew with O_CREAT)."""
    for _ in range(3):
        fd = open_plain(path, flags, FILE_MODE)
        try:
            with contextlib.suppress(OSError):  # a file system without locks: held anyway
                fcntl.flock(fd, fcntl.LOCK_SH)
            if os.fstat(fd).st_nlink > 0:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise FileNotFoundError(f"{path} is deleted as soon as it is made")


def _open(state: _FileState) -> None:
    if state.header is None:
        _reopen(state)
        return
    try:
        # Never through a link: O_TRUNC on a link (or on a hard link's other name) would
        # empty a file outside the folder. The file is cut only once it is known plain.
        try:
            state.fd = _open_held(state.path, os.O_WRONLY | os.O_CREAT)
        except FileNotFoundError:  # the folder first (rarely: it is made at start)
            private_dir(state.path.parent)
            state.fd = _open_held(state.path, os.O_WRONLY | os.O_CREAT)
        os.ftruncate(state.fd, 0)
        # O_CREAT's mode does not apply to a file that already existed.
        os.fchmod(state.fd, FILE_MODE)
    except OSError as e:
        _fail(state, "open", e)
        state.broken = True
        return
    _write(state, state.header.encode("utf-8"))


def _reopen(state: _FileState) -> None:
    # Carry on a recording another process began: cut a torn last line (a writer killed
    # mid-line), then append; never create the file or follow a link.
    last = repair_cast(state.path)
    if last is not None:
        state.last_t = last[0]
        if last[1] == "m" and last[2].startswith(STOPPED):
            # Ended at its size limit by an earlier writer: it stays ended.
            state.broken = state.closed = True
            state.ended_at = last[0]
            _said(state, last[2])
            return
    try:
        state.fd = _open_held(state.path, os.O_WRONLY | os.O_APPEND)
        state.offset = os.fstat(state.fd).st_size
    except OSError as e:
        _fail(state, "reopen", e)
        state.broken = True
        return
    if state.room is not None and state.offset >= state.room:
        _stop(state, [], None)  # at its limit already (a smaller one than it was made with)


def _fit(t: float, kind: str, data: str, room: int) -> bytes | None:
    """The event line of as much of `data` as fits in `room` bytes (output only), or None."""
    if kind != "o":
        return None  # an input or resize event is whole or nothing
    # The longest prefix whose line fits (a character takes 1 to 6 bytes of it): a binary
    # search, once per file, of at most some 20 encodings.
    fits, low, high = None, 0, min(len(data), room)
    while low < high:
        middle = (low + high + 1) // 2
        line = event_bytes(t, kind, data[:middle])
        if len(line) <= room:
            fits, low = line, middle
        else:
            high = middle - 1
    return fits


def _stop(state: _FileState, lines: list[bytes], event: tuple[float, str, str] | None) -> None:
    """End the file at its size limit: `lines` (what fits of this batch), as much of `event`
    as fits, the marker, then close it for good."""
    assert state.max_bytes is not None and state.room is not None
    t = state.last_t if event is None else event[0]
    if event is not None:
        part = _fit(*event, state.room - state.offset - state.queued)
        if part is not None:
            lines.append(part)
    message = stopped_message(state.max_bytes)
    marker = event_bytes(t, "m", message)
    if state.offset + sum(map(len, lines)) + len(marker) <= state.max_bytes:
        lines.append(marker)  # else: a file resumed past the limit (made under a larger one)
    _write(state, b"".join(lines))
    state.queued = 0
    _close(state)
    state.ended_at = round(t, 6)  # as the marker says it
    log.warning("%s: %s", state.path, message)
    _said(state, message)


def _write(state: _FileState, data: bytes) -> None:
    if state.broken or not data:
        return
    view = memoryview(data)
    written = 0
    try:
        while written < len(view):
            written += _os_write(state.fd, view[written:])
    except OSError as e:
        _fail(state, "write", e)
        # Cut the partial batch off so later lines start on a line boundary;
        # if even that fails, stop writing: the file keeps only a torn tail.
        try:
            os.ftruncate(state.fd, state.offset)
            os.lseek(state.fd, state.offset, os.SEEK_SET)
        except OSError:
            state.broken = True
        return
    state.offset += written


def _close(state: _FileState) -> None:
    if state.closed:
        return
    state.closed = True
    state.broken = True
    if state.fd >= 0:
        try:
            os.close(state.fd)
        except OSError as e:
            _fail(state, "close", e)
        state.fd = -1


def _take_batch(first: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    batch = [first]
    chars = 0
    while len(batch) < _BATCH_ITEMS and chars < _BATCH_CHARS:
        try:
            item = _queue.get_nowait()
        except queue.Empty:
            break
        batch.append(item)
        if item[0] == _EVENT:
            chars += len(item[4])
    return batch


def _process(batch: list[tuple[Any, ...]]) -> list[threading.Event]:
    pending: dict[_FileState, list[bytes]] = {}
    flushes: list[threading.Event] = []

    def write_pending(state: _FileState) -> None:
        lines = pending.pop(state, None)
        state.queued = 0
        if lines:
            _write(state, b"".join(lines))

    for item in batch:
        op = item[0]
        try:
            if op == _EVENT:
                state, t, kind, data = item[1:]
                if state.broken:
                    continue
                if isinstance(data, bytes):  # output: decoded here, off the event loop
                    data = data.decode("utf-8", "surrogatepass")
                # Never decreasing, whatever the clock or the calling thread did.
                t = max(t, state.last_t)
                state.last_t = t
                line = event_bytes(t, kind, data)
                if state.room is not None and state.offset + state.queued + len(line) > state.room:
                    _stop(state, pending.pop(state, []), (t, kind, data))
                    continue
                pending.setdefault(state, []).append(line)
                state.queued += len(line)
            elif op == _OPEN:
                _open(item[1])
            elif op == _CLOSE:
                write_pending(item[1])
                _close(item[1])
            elif op == _FLUSH:
                flushes.append(item[1])
        except Exception:
            log.exception("recording writer: dropped a %s item", op)
    for state in list(pending):
        try:
            write_pending(state)
        except Exception:
            log.exception("recording writer: write to %s failed", state.path)
    return flushes


def _run() -> None:
    while True:
        batch = _take_batch(_queue.get())
        for done in _process(batch):
            done.set()


def _enqueue_close(state: _FileState) -> None:
    _queue.put_nowait((_CLOSE, state))


class CastWriter:
    """Records one session to an asciicast v2 file, off the event loop.

    Event methods only put a tuple on a queue: they are cheap enough to call per
    PTY read. Event times are `clock() - start` in seconds, never decreasing.
    Call `close()` when the session ends (a writer that is garbage collected is
    closed too); `flush_all()` waits until queued lines are on disk.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        command: str,
        title: str,
        env: dict[str, str],
        timestamp: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        header = header_line(
            width, height, time.time() if timestamp is None else timestamp, env, command, title
        )
        self._setup(clock, clock(), _FileState(Path(path), header, max_bytes, on_error))

    @classmethod
    def resume(
        cls,
        path: Path,
        started_at: float,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> CastWriter:
        """Carry on the recording at `path` (begun at Unix time `started_at`, by this or
        another process): append events timed from that start. Repair a torn tail first."""
        writer = cls.__new__(cls)
        start = clock() - max(0.0, time.time() - started_at)
        writer._setup(clock, start, _FileState(Path(path), None, max_bytes, on_error))
        return writer

    def _setup(self, clock: Callable[[], float], start: float, state: _FileState) -> None:
        self.path = state.path
        self._clock = clock
        self._start = start
        self._state = state
        self._closer = weakref.finalize(self, _enqueue_close, self._state)
        self._pending: list[bytes] = []
        self._pending_t = 0.0
        self._pending_len = 0
        self._timer: asyncio.TimerHandle | None = None
        self._quiet: asyncio.TimerHandle | None = None
        _ensure_thread()
        _queue.put_nowait((_OPEN, self._state))

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return not self._closer.alive

    @property
    def error(self) -> str | None:
        """Why this recording failed (could not be opened, or a write failed) or stopped (at
        its size limit), else None. `on_error` is called on the writer thread when it is set."""
        return self._state.error

    @property
    def ended_at(self) -> float | None:
        """When, in seconds from its start, the recording reached its size limit and ended;
        None while it has not."""
        return self._state.ended_at

    @property
    def bytes_written(self) -> int:
        """Size of the file on disk: header and whole event lines written so far.

        It lags the event calls until the writer thread has drained the queue
        (`flush_all()`); a failed write is not counted.
        """
        return self._state.offset

    def _event(self, kind: str, data: str) -> None:
        self._flush_pending()  # keep events in order
        if self._closer.alive:
            _queue.put_nowait((_EVENT, self._state, self._clock() - self._start, kind, data))

    def output(self, data: bytes | str) -> None:
        """Record terminal output (an "o" event): whole UTF-8 bytes (a PTY's, from
        `Utf8Stream`), or text. Ignored after `close()`.

        Bytes are joined and decoded on the writer thread: a read costs the loop one list
        append. (Text is encoded with "surrogatepass", so a lone surrogate reaches the
        encoder as before, and is replaced there.)

        Inside an event loop, output arriving within COALESCE seconds becomes one event
        (timed at its first chunk): one queue item per PTY read would make the writer
        thread fight the event loop for the GIL under heavy output.
        """
        if not self._closer.alive:
            return
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        if not self._pending:
            self._pending_t = self._clock() - self._start
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None:
                _queue.put_nowait((_EVENT, self._state, self._pending_t, "o", data))
                return
            self._timer = loop.call_later(COALESCE, self._flush_pending)
            self._quiet = loop.call_later(QUIET, self._flush_quiet)
        self._pending.append(data)
        self._pending_len += len(data)
        if self._pending_len >= COALESCE_CHARS:
            self._flush_pending()

    def _flush_quiet(self) -> None:
        self._quiet = None
        if self._pending_len < QUIET_CHARS:
            self._flush_pending()

    def _flush_pending(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            _queue.put_nowait((_EVENT, self._state, self._pending_t, "o", data))
            self._pending.clear()
            self._pending_len = 0

    def input(self, data: str) -> None:
        """Record user input (an "i" event). Ignored after `close()`."""
        self._event("i", data)

    def resize(self, cols: int, rows: int) -> None:
        """Record a terminal resize (an "r" event, "COLSxROWS"). Ignored after `close()`."""
        self._event("r", resize_data(cols, rows))

    def close(self) -> None:
        """Queue the close of the file; does not wait. Safe to call twice."""
        self._flush_pending()
        self._closer()


def flush_all(timeout: float = 5.0) -> bool:
    """Wait until everything queued so far by every writer is written to its file.

    "Written" is `os.write` done (the kernel has it; no fsync). Returns False if
    the thread did not get there within `timeout` seconds.
    """
    if _thread is None:
        return True
    _ensure_thread()
    done = threading.Event()
    _queue.put_nowait((_FLUSH, done))
    return done.wait(timeout)
