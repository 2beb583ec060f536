"""The server's recordings: a CastWriter per session, the index kept in step off the loop.

Index updates run on one worker thread, in order: a recording's entry is always written
before its end, and a slow disk delays only the index, never a terminal. The worker changes
the index in memory and writes metadata.json (whole, fsynced) when its queue runs empty, at
most every SAVE_GAP seconds: one write per batch of changes, so 300 sessions opened at once
cost a few writes, not 300 of a growing file. A crash can lose the changes queued or not yet
written (as it could when each was written on its own: the worker always lagged the
sessions); `RecordingIndex.load` rebuilds what is missing from the .cast files.

Limits: each recording ends at `max_bytes` (writer.py), and its entry is finished then, while
its session runs on; past `budget`, the worker deletes finished recordings, oldest first
(budget.py), after each end and whenever `check_budget` asks (the server: every minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from vibetunnel.config import TERM, format_size
from vibetunnel.errors import RecordingNotFound
from vibetunnel.protocol.times import iso
from vibetunnel.recording.budget import choose, delete_unheld
from vibetunnel.recording.index import RecordingIndex
from vibetunnel.recording.replay import read_screen
from vibetunnel.recording.writer import CastWriter, flush_all

log = logging.getLogger(__name__)

T = TypeVar("T")
SAVE_GAP = 0.2
"""Seconds at least between two writes of metadata.json while sessions come and go: a ramp
of 300 sessions is a handful of writes, not one per lull of the worker."""


class RecordedSession(Protocol):
    """What recording reads of a session (pty.session.Session has it; no import upwards)."""

    id: str
    name: str
    command: str
    args: list[str]
    cwd: str
    cols: int
    rows: int
    created_at: float


def command_line(session: RecordedSession) -> str:
    """The session's command as one shell-quoted line (as vt writes it in its header)."""
    return shlex.join([session.command, *session.args])


class SessionRecorder:
    """The Recorder of one session: events to its .cast, its end to the index.

    Made on the event loop: the writer's news (an error, the size limit) comes back to it.
    """

    def __init__(
        self,
        recordings: Recordings,
        session: RecordedSession,
        open_writer: Callable[[Callable[[], None]], CastWriter],
    ) -> None:
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._recordings = recordings
        self._id = session.id
        self._created_at = session.created_at
        self._watcher: Callable[[], None] | None = None
        self._told: str | None = None
        """The error last told (on the loop): a failure, then perhaps the size limit."""
        self._cut = False
        self.writer = open_writer(self._said)
        self.output = self.writer.output
        self.input = self.writer.input
        self.resize = self.writer.resize

    @property
    def error(self) -> str | None:
        """Why this session's recording failed or stopped, else None (the writer finds out on
        its own thread: shortly after the session starts, when a write fails, or at the
        recording's size limit)."""
        return self.writer.error

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` on the loop when `error` is set or changes (now, if it was told
        before anyone watched)."""
        self._watcher = callback
        if self._told is not None:
            callback()

    def _said(self) -> None:
        # On the writer thread (or the loop, from `watch`): the rest happens on the loop.
        if self._loop is None:
            self._tell()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                self._loop.call_soon_threadsafe(self._tell)

    def _tell(self) -> None:
        error = self.writer.error
        if error is None or error == self._told:
            return
        self._told = error
        ended_at = self.writer.ended_at
        if ended_at is not None and not self._cut:  # at its size limit: its entry is final
            self._cut = True
            self._recordings.cut(self._id, self._created_at + ended_at)
        if self._watcher is not None:
            self._watcher()

    def close(self, exit_code: int | None) -> None:
        self.writer.close()
        self._recordings.finished(self._id, exit_code)

    def detach(self) -> None:
        """This server stops; the program goes on and the keeper carries on the file."""
        self.writer.close()


class Recordings:
    """All recordings of a server: its folder, its index and its worker.

    A folder that cannot be written never stops the server: `error` then says why, sessions
    start unrecorded (`for_session` and `resume` give None), and what can be read of the
    folder is still listed and served.
    """

    def __init__(
        self, folder: Path, *, max_bytes: int | None = None, budget: int | None = None
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        """Bytes of one recording at most (None: no limit)."""
        self.budget = budget
        """Bytes of all recordings together, past which finished ones go (None: no budget)."""
        self.index = RecordingIndex(folder)
        self.error: str | None = None
        """Why sessions are not recorded, or None."""
        try:
            self.index.load()  # repairs and writes metadata.json: the folder is writable
        except OSError as exc:
            why = "not a folder" if folder.exists() and not folder.is_dir() else exc.strerror
            self.error = f"recordings folder {folder} cannot be written ({why or exc})"
        self.active: set[str] = set()
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vibetunnel-index")
        self._queued = 0
        """Index jobs submitted and not yet done (under `_queued_lock`)."""
        self._queued_lock = threading.Lock()
        self._saved_at = float("-inf")
        self._later: threading.Timer | None = None
        """A write put off by SAVE_GAP (set and cleared on the worker)."""
        self._cut: set[str] = set()
        """Running sessions whose recordings ended at their size limit (on the worker)."""
        self._trims = 0
        """Budget checks queued (under `_queued_lock`): only the last of a burst runs."""
        self._over_said = False
        """The budget's warning that only running recordings are left was logged (worker)."""

    def _submit(self, job: Callable[..., T], *args: object) -> Future[T]:
        """Run `job` on the index worker; the last job of a batch writes metadata.json."""
        with self._queued_lock:
            self._queued += 1
        try:
            return self._jobs.submit(self._run_job, job, *args)
        except BaseException:  # shut down: the job never runs
            with self._queued_lock:
                self._queued -= 1
            raise

    def _run_job(self, job: Callable[..., T], *args: object) -> T:
        try:
            return job(*args)
        finally:
            with self._queued_lock:
                self._queued -= 1
                last = self._queued == 0
            if last:
                # Nothing else queued: write every change so far at once. A job submitted
                # meanwhile is counted, and writes when it (or its batch) is done.
                self._save_soon()

    def _save_soon(self) -> None:
        """Write the index now, or SAVE_GAP after the last write (on the worker)."""
        wait = self._saved_at + SAVE_GAP - time.monotonic()
        if wait <= 0:
            self._saved_at = time.monotonic()
            _logged(self.index.save)
        elif self._later is None:
            self._later = threading.Timer(wait, self._save_later)
            self._later.daemon = True
            self._later.start()

    def _save_later(self) -> None:
        # On the timer's thread: the write itself runs on the worker, in order with the jobs.
        with contextlib.suppress(RuntimeError):  # shut down meanwhile: close() wrote it
            self._submit(self._waited)

    def _waited(self) -> None:
        self._later = None

    def entry(self, session: RecordedSession) -> dict[str, object]:
        return {
            "id": session.id,
            "name": session.name,
            "command": command_line(session),
            "argv": [session.command, *session.args],
            "cwd": session.cwd,
            "size": f"{session.cols}x{session.rows}",
            "startedAt": iso(session.created_at),
            "endedAt": None,
            "duration": None,
            "exitCode": None,
            "bytes": 0,
        }

    def for_session(self, session: RecordedSession) -> SessionRecorder | None:
        """Start recording `session` (the Session's recorder factory); None if the folder
        cannot be written (`error`)."""
        if self.error is not None:
            return None
        self.started(self.entry(session))  # first: running, so never a budget's to delete

        def open_writer(on_error: Callable[[], None]) -> CastWriter:
            return CastWriter(
                self.folder / f"{session.id}.cast",
                width=session.cols,
                height=session.rows,
                command=command_line(session),
                title=session.name,
                env={"SHELL": os.environ.get("SHELL", "/bin/sh"), "TERM": TERM},
                timestamp=session.created_at,
                max_bytes=self.max_bytes,
                on_error=on_error,
            )

        return SessionRecorder(self, session, open_writer)

    def resume(self, session: RecordedSession) -> SessionRecorder | None:
        """Carry on the recording of a session this server adopted from the keeper; None if
        the folder cannot be written (`error`)."""
        if self.error is not None:
            return None
        self.started(self.entry(session))

        def open_writer(on_error: Callable[[], None]) -> CastWriter:
            path = self.folder / f"{session.id}.cast"
            return CastWriter.resume(
                path, session.created_at, max_bytes=self.max_bytes, on_error=on_error
            )

        return SessionRecorder(self, session, open_writer)

    def read_screen(self, session_id: str) -> bytes:
        return read_screen(self.folder / f"{session_id}.cast")

    def ended_meanwhile(self, session_id: str, exit_code: int | None, ended_at: float) -> None:
        """A program the keeper saw end while no server ran: put its end in the index (on the
        index worker, like every index write: it fsyncs)."""
        if self.error is None:
            self._submit(_logged, self._ended_meanwhile, session_id, exit_code, ended_at)

    def _ended_meanwhile(self, session_id: str, exit_code: int | None, ended_at: float) -> None:
        with contextlib.suppress(RecordingNotFound):
            if self.index.get(session_id).get("exitCode") is None:
                self.index.finish(session_id, exit_code, ended_at, save=False)

    def forget_unwritten(self, session_id: str) -> Future[bool]:
        """A vt link ended without an exit: if vt never made the recording's file, the entry
        was a registration, not a recording; drop it (else every registration, a fake vt's
        included, would stay in memory and in metadata.json). Runs on the index worker,
        after the entry's start; the future says whether it was dropped."""
        return self._submit(self._forget_unwritten, session_id)

    def _forget_unwritten(self, session_id: str) -> bool:
        if self.error is not None or os.path.lexists(self.folder / f"{session_id}.cast"):
            return False
        with contextlib.suppress(RecordingNotFound):
            self.index.delete(session_id, save=False)
        return True

    def started(self, entry: dict[str, object]) -> None:
        if self.error is not None:
            return  # nothing is written: no entry either
        self.active.add(str(entry["id"]))
        self._submit(_logged, self._start, entry)

    def _start(self, entry: dict[str, object]) -> None:
        self.index.start(entry, save=False)

    def finished(
        self, session_id: str, exit_code: int | None, ended_at: float | None = None
    ) -> None:
        self.active.discard(session_id)
        when = time.time() if ended_at is None else ended_at
        self._submit(_logged, self._finish, session_id, exit_code, when)
        self.check_budget()

    def _finish(self, session_id: str, exit_code: int | None, ended_at: float) -> None:
        flush_all()  # `bytes` in the index is then the final size
        cut = session_id in self._cut
        self._cut.discard(session_id)
        with contextlib.suppress(RecordingNotFound):  # deleted while it ran
            # One cut at its size limit ended then: its session gives the exit code only.
            self.index.finish(session_id, exit_code, None if cut else ended_at, save=False)

    def cut(self, session_id: str, ended_at: float) -> None:
        """The recording of a session that runs on ended at its size limit (at Unix time
        `ended_at`; its file is closed): its entry is final now."""
        if self.error is None:
            self._submit(_logged, self._cut_job, session_id, ended_at)
            self.check_budget()

    def _cut_job(self, session_id: str, ended_at: float) -> None:
        with contextlib.suppress(RecordingNotFound):
            self.index.finish(session_id, None, ended_at, save=False)
            self._cut.add(session_id)

    # -- the budget ----------------------------------------------------------------------------

    def check_budget(self) -> None:
        """Delete finished recordings, oldest first, while all of them take more than the
        budget (on the index worker; returns at once)."""
        if self.budget is None or self.error is not None:
            return
        with self._queued_lock:
            self._trims += 1
        try:
            self._submit(_logged, self._trim)
        except RuntimeError:  # shut down: the next server checks
            with self._queued_lock:
                self._trims -= 1

    def _trim(self) -> None:
        assert self.budget is not None
        with self._queued_lock:
            self._trims -= 1
            if self._trims:
                return  # a later check is queued, behind the changes queued since this one
        # A copy made in one C call (the loop adds to it meanwhile); a session is added
        # before its writer opens the file.
        running = self.active.copy()
        total, chosen = choose(self.index.list(), self.budget, running)
        budget = f"their budget of {format_size(self.budget)} (--recordings-budget)"
        for entry in chosen:
            try:
                deleted = delete_unheld(self.index, entry["id"])
            except OSError as exc:
                log.warning("recording %s not deleted for the budget: %s", entry["id"], exc)
                continue
            if deleted:
                total -= int(entry["bytes"])
                log.warning(
                    "recording %s (%s, started %s) deleted: the recordings took %s, over %s",
                    entry["id"],
                    format_size(int(entry["bytes"])),
                    entry["startedAt"],
                    format_size(total + int(entry["bytes"])),
                    budget,
                )
        if total <= self.budget:
            self._over_said = False
        elif not self._over_said:
            self._over_said = True
            log.warning(
                "the recordings take %s, over %s, and only running sessions' are left: "
                "none of those is deleted (each stops at --max-recording-size)",
                format_size(total),
                budget,
            )

    def close(self) -> None:
        """Write out everything queued: recordings first, then the index."""
        flush_all()
        self._jobs.shutdown(wait=True)
        if self._later is not None:
            self._later.cancel()
            self._later = None
            _logged(self.index.save)


def _logged(job: Callable[..., None], *args: object) -> None:
    """Run an index job on the worker, logging what fails (a Future would keep it silent)."""
    name = getattr(job, "__name__", job)
    try:
        job(*args)
    except OSError as exc:  # the disk or the folder: said in one line, no traceback
        log.error("recordings index: %s failed: %s", name, exc)
    except Exception:
        log.exception("recordings index: %s failed", name)
