"""Every server of a run, and the end of everything they start.

Sessions outlive our server once a keeper holds them, so a `Fleet` ends each home of ours as
a whole: the server, then `vibetunnel stop --sessions` of that version for what outlives it
(signals where that command does not exist), then a sweep of the process table for anything
still carrying the run's tag or one of its homes. The peers (ttyd, terminado), redis-server
and any other program it is given are stopped with what they started; the run's tag, in the
environment of everything started after the Fleet opened (Chromium too), finds the rest.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from . import proctable
from .servers import Listening, Server, signals_deferred
from .versions import Version

P = TypeVar("P", bound=Listening)


class Fleet:
    """Every server of a run, and whatever those start: keeper, sessions, `vt`, terminals.

    Use it as a context manager: it closes on success, exception and Ctrl-C alike, stopping
    what is still running in the reverse order of its start.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.running: list[Listening] = []
        self.started: Counter[str] = Counter()
        """How many of each kind were started ("server" for ours, "ttyd", ...)."""
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
        """Start a server of ours, of `version`, with a home of its own named after `name`;
        `env` adds to its environment, `nofile` caps its open files."""
        home = self.tmp / f"{version.label}-{name}"
        self.homes.append(home)
        return self.own(Server(version, home, args, env, nofile))

    def own(self, program: P) -> P:
        """Stop `program` (started) with the rest; it is returned."""
        self.running.append(program)
        self.started[program.name] += 1
        return program

    def stop(self, program: Listening) -> None:
        """Stop it, and what it started; for ours, its keeper and sessions, which outlive it."""
        with signals_deferred():
            self._stop(program)

    def _stop(self, program: Listening) -> None:
        self.running.remove(program)
        if not isinstance(program, Server):
            program.stop()
            return
        srv = program
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

    def _pids(self, home: Path, procs: list[proctable.Proc] | None = None) -> list[int]:
        return proctable.tree(home, None, procs).pids

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
            for program in reversed(self.running[:]):
                try:
                    self._stop(program)
                except Exception as exc:  # keep going: the sweep below still ends its processes
                    self.notes.append(f"{program.name} {program.pid}: stopping failed: {exc!r}")
            procs = proctable.processes()
            for home in self.homes:
                if self._pids(home, procs):
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
        procs = proctable.processes()
        left = {pid for home in self.homes for pid in self._pids(home, procs)}
        left |= {p.pid for p in proctable.tagged(self.tag, procs)}
        left |= set(proctable.children_of_mine(procs))
        if left:
            return f"processes: STILL RUNNING after cleanup: {sorted(left)}"
        started = ", ".join(
            f"{n} {'of ours' if name == 'server' else name}" for name, n in self.started.items()
        )
        n = self.started.total()
        return (
            f"processes: {n} server{'' if n == 1 else 's'} ({started or 'none'}) and all they "
            "started are gone (none carries a bench home or tag, none is a child of the bench)"
        )
