"""The servers a bench run starts, and the end of everything they start.

A `Server` is `vibetunnel serve` of one code version, on a free port, with its own home. The
bench starts it itself rather than through tests/conftest.py: the test helper imports (and
stops keepers with) whichever vibetunnel is installed, while the bench runs two versions.

Sessions outlive their server once a keeper holds them, so a `Fleet` ends each home as a
whole: the server, then `vibetunnel stop --sessions` of that version for what outlives it
(signals where that command does not exist), then a sweep of the process table for anything
still carrying the run's tag or one of its homes.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType

import proctable
from versions import Version

LISTENING = re.compile(r"VibeTunnel listening on (http://\S+)")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then deliver the first: a
    cleanup cut halfway by a second Ctrl-C is what leaves processes behind."""
    got: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if got:
            handler = previous[signal.Signals(got[0])]
            if callable(handler):
                handler(got[0], None)
            else:
                signal.raise_signal(got[0])


class Listening:
    """A program in a session of its own (a Ctrl-C at the terminal reaches the bench only),
    its output drained for its whole life so that a chatty one never blocks; started once a
    line of its output matches `pattern` (`ready`, that match)."""

    keep: int | None = None
    """Lines of output kept, the first ones; None keeps them all."""
    stop_timeout = STOP_TIMEOUT

    def __init__(
        self, what: str, argv: list[str], env: dict[str, str], pattern: re.Pattern[str]
    ) -> None:
        self.output: list[str] = []
        self.ready: re.Match[str] | None = None
        self._pattern = pattern
        self._listening = threading.Event()
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,
        )
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{what} did not start:\n{''.join(self.output)}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if self.keep is None or len(self.output) < self.keep:
                self.output.append(line)
            if self.ready is None and (m := self._pattern.search(line)):
                self.ready = m
                self._listening.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int:
        """SIGTERM, SIGKILL after `stop_timeout` seconds; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._drain.join(timeout=5)
        return code


class Server(Listening):
    """`vibetunnel serve --port 0 ARGS` with `VIBETUNNEL_HOME=home`."""

    def __init__(
        self, home: Path, args: tuple[str, ...], env: dict[str, str], nofile: int | None = None
    ) -> None:
        self.home = home
        self.args = args
        self.env = env
        """Besides os.environ: what selects the code version (`vt` and `stop` get it too)."""
        home.mkdir(parents=True, exist_ok=True)
        # prlimit execs the server: the pid is the server's. Soft and hard, so the server's
        # own raise to the hard limit (files.raise_open_files_limit) cannot lift it.
        limit = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] if nofile else []
        super().__init__(
            "server",
            [*limit, sys.executable, "-m", "vibetunnel", "serve", "--port", "0", *args],
            {**os.environ, **env, "VIBETUNNEL_HOME": str(home)},
            LISTENING,
        )

    @property
    def url(self) -> str:
        return self.ready.group(1) if self.ready else ""

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


class Fleet:
    """Every server of a run, and whatever those start: keeper, sessions, `vt`.

    Use it as a context manager: it closes on success, exception and Ctrl-C alike.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.running: list[Server] = []
        self.homes: list[Path] = []
        self.notes: list[str] = []
        """What ending things took beyond stopping the servers: printed after the results."""
        self.exited: list[str] = []
        """Servers that had exited before being stopped, with their last output."""

    def __enter__(self) -> Fleet:
        # Inherited by every process started from here on, and by theirs.
        os.environ[proctable.TAG] = self.tag
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(
        self,
        version: Version,
        name: str,
        *args: str,
        env: dict[str, str] | None = None,
        nofile: int | None = None,
    ) -> Server:
        """Start a server of `version`; `env` adds to its environment, `nofile` caps its
        open files."""
        home = self.tmp / f"{version.label}-{name}"
        self.homes.append(home)
        srv = Server(home, args, {**version.env, **(env or {})}, nofile)
        self.running.append(srv)
        return srv

    def stop(self, srv: Server) -> None:
        """Stop the server, then end its keeper and sessions, which outlive it."""
        with signals_deferred():
            self._stop(srv)

    def _stop(self, srv: Server) -> None:
        self.running.remove(srv)
        if (code := srv.process.poll()) is not None:
            tail = "".join(srv.output[-8:]).rstrip()
            self.exited.append(f"{srv.home.name}: the server had exited ({code}):\n{tail}")
        srv.stop()
        if not self._pids(srv.home):
            return  # sessions end with the server: nothing outlives it
        cmd = [sys.executable, "-m", "vibetunnel", "stop", "--sessions"]
        env = {**os.environ, **srv.env, "VIBETUNNEL_HOME": str(srv.home)}
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            failed = "took over 30 s"
        else:
            why = (done.stderr.strip().splitlines() or ["no output"])[-1]
            failed = f"exited {done.returncode}: {why}" if done.returncode else ""
        if failed:
            self.notes.append(f"{srv.home.name}: `vibetunnel stop --sessions` {failed}")
        elif left := proctable.wait_gone(self._pids(srv.home), timeout=10):
            self.notes.append(f"{srv.home.name}: {len(left)} processes outlived `stop`")
        if self._pids(srv.home):
            self._end(srv.home)

    def _pids(self, home: Path) -> list[int]:
        return proctable.tree(home, None).pids

    def _end(self, home: Path) -> None:
        """End a home's processes by signal: the keeper first (so it starts nothing again and
        leaves nothing reparented), then the rest."""
        self.notes.append(f"{home.name}: ended {len(self._pids(home))} processes by signal")
        keeper = [pid for pid, role in proctable.tree(home, None).roles.items() if role == "keeper"]
        if survivors := proctable.end(keeper) + proctable.end(self._pids(home)):
            self.notes.append(f"{home.name}: could not end pids {survivors}")

    def close(self) -> None:
        with signals_deferred():
            self._close()

    def _close(self) -> None:
        try:
            for srv in reversed(self.running[:]):
                try:
                    self._stop(srv)
                except Exception as exc:  # keep going: the sweep below still ends its processes
                    self.notes.append(f"{srv.home.name}: stopping failed: {exc!r}")
            for home in self.homes:
                if self._pids(home):
                    self._end(home)
            if tagged := proctable.tagged(self.tag):
                names = ", ".join(sorted({p.comm for p in tagged}))
                self.notes.append(f"ended {len(tagged)} stray processes ({names})")
                if survivors := proctable.end([p.pid for p in tagged]):
                    self.notes.append(f"could not end pids {survivors}")
        finally:
            os.environ.pop(proctable.TAG, None)

    def verify(self) -> str:
        """One line on the process table, after closing."""
        left = {pid for home in self.homes for pid in self._pids(home)}
        left |= {p.pid for p in proctable.tagged(self.tag)} | set(proctable.children_of_mine())
        if left:
            return f"processes: STILL RUNNING after cleanup: {sorted(left)}"
        return (
            f"processes: {len(self.homes)} servers and all they started are gone (none carries "
            "a bench home or tag, none is a child of the bench)"
        )
