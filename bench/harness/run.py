"""One bench run: a temporary folder, the Fleet of its servers, and an end on every path.

    with Run("vt-bench-") as run:
        figures = measure(args, run.fleet, run.tmp)
    print(figures)  # not reached after a signal

SIGINT, SIGTERM and SIGHUP unwind the run as Ctrl-C does, so the Fleet ends everything the
run started; whatever fails after a signal (a cancelled task, a closed socket) is the
interruption, not an error to show: the run ends the program with 128 + the signal, as a
shell reports it. At the end, the Fleet's notes and one line on the process table go to
stderr (`verdict`), on success, failure and interruption alike.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import tempfile
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from .fleet import Fleet
from .report import progress

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Run:
    """The context of a run; `cancel_tasks=False` where the signals must raise
    KeyboardInterrupt whatever runs (Playwright's sync API drives a loop of its own, whose
    tasks are not the bench's to cancel)."""

    def __init__(self, prefix: str, cancel_tasks: bool = True) -> None:
        self.prefix = prefix
        self.cancel_tasks = cancel_tasks
        self.signals: list[int] = []
        """The signals received."""
        self.verdict = ""
        """The line on the process table, once the run has ended."""
        self._previous: dict[int, Any] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.fleet: Fleet

    @property
    def tmp(self) -> Path:
        assert self._tmp is not None
        return Path(self._tmp.name)

    def __enter__(self) -> Run:
        self._previous = {sig: signal.signal(sig, self._interrupt) for sig in SIGNALS}
        self._tmp = tempfile.TemporaryDirectory(prefix=self.prefix)
        self.fleet = Fleet(self.tmp).__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.fleet.close()
            if not self.signals:
                for exited in self.fleet.exited:
                    progress(exited)
            for note in self.fleet.notes:
                progress(f"cleanup: {note}")
            self.verdict = self.fleet.verify()
            progress(self.verdict)
        finally:
            assert self._tmp is not None
            self._tmp.cleanup()
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
        if self.signals:
            progress(f"interrupted by {signal.Signals(self.signals[0]).name}")
            raise SystemExit(128 + self.signals[0]) from None

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)
        if not self.cancel_tasks:
            raise KeyboardInterrupt
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise KeyboardInterrupt from None
        # Inside asyncio.run, an exception raised here lands in whatever callback runs (a
        # protocol's data_received, which swallows it, and the run hangs): cancel the tasks
        # instead, as asyncio.run's own SIGINT handler does.
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.call_soon_threadsafe(lambda: None)


def open_files() -> int:
    """Raise this process's open-files limit to its hard limit (the floods and the fan-out's
    clients need sockets of their own: the bench's limit, not the servers'); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
