"""The servers of bench/peers.py: ttyd, terminado and ours, each started fresh for one load.

A `Target` starts its server, opens connections of its protocol (`opener`), names the
processes that hold its sessions (`holders`: the server, and our keeper; never the session
programs, which are the user's), and stops it with everything it started.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import peers_clients as pc
import peers_install
import proctable
from servers import Fleet, Server
from versions import Version

START_TIMEOUT = 30.0
SERIAL = itertools.count(1)
"""Each of our servers gets a home of its own: fresh, no recordings or sessions of the last."""
OURS_ARGS = (
    "--no-auth",
    "--rate-limit",
    "1000000",
    "--max-sessions",
    "2000",
    "--max-connections-per-address",
    "4000",
)
"""Limits out of the way of 300 sessions from one address (the defaults: 100 sessions, 256
connections per address)."""


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for p in proctable.processes():
        children.setdefault(p.ppid, []).append(p.pid)
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Target:
    """A server started for one load."""

    name = ""
    pid = 0

    def opener(self) -> contextlib.AbstractAsyncContextManager[pc.Opener]:
        raise NotImplementedError

    def holders(self) -> list[int]:
        return [self.pid]

    def stop(self) -> None:
        raise NotImplementedError


class PeerProcess(Target):
    """A peer server: `argv` in a session of its own, its port read from its output."""

    def __init__(self, argv: list[str], listening: re.Pattern[str]) -> None:
        self.output: list[str] = []
        self.port = 0
        self._listening = threading.Event()
        self._pattern = listening
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.pid = self.process.pid
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv[0]} did not start:\n{''.join(self.output[-20:])}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if len(self.output) < 200:  # ttyd logs every connection: keep the start only
                self.output.append(line)
            if not self.port and (m := self._pattern.search(line)):
                self.port = int(m.group(1))
                self._listening.set()

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s), then end whatever it started that outlives it."""
        below = descendants(self.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        proctable.end([pid for pid in below if proctable.alive(pid)])
        self._drain.join(timeout=5)


class Ttyd(PeerProcess):
    name = "ttyd"

    def __init__(self) -> None:
        # -W: clients may write; -a: the program's args come from the URL (one server, every
        # load's program). Deflate is left to the client, which offers none.
        argv = [str(peers_install.TTYD), "-p", "0", "-i", "lo", "-W", "-a"]
        super().__init__(
            [*argv, "sh", "-c", 'exec "$@"', "peer"], re.compile(r"Listening on port: (\d+)")
        )

    @contextlib.asynccontextmanager
    async def opener(self) -> AsyncIterator[pc.Opener]:
        async def open_(program: str) -> pc.Conn:
            return await pc.TtydConn.open(self.port, program)

        yield open_


class Terminado(PeerProcess):
    name = "terminado"

    def __init__(self) -> None:
        script = Path(__file__).resolve().parent / "peers_terminado.py"
        argv = [str(peers_install.VENV_PYTHON), str(script), json.dumps(pc.PROGRAMS)]
        super().__init__(argv, re.compile(r"terminado listening on (\d+)"))

    @contextlib.asynccontextmanager
    async def opener(self) -> AsyncIterator[pc.Opener]:
        async def open_(program: str) -> pc.Conn:
            return await pc.TerminadoConn.open(self.port, program)

        yield open_


class Ours(Target):
    """`vibetunnel serve` of this tree, through the bench's Fleet (which ends the keeper and the
    sessions that outlive the server)."""

    def __init__(self, name: str, fleet: Fleet, version: Version, *extra: str) -> None:
        self.name = name
        self.fleet = fleet
        self.server: Server = fleet.start(version, f"{name}-{next(SERIAL)}", *OURS_ARGS, *extra)
        self.pid = self.server.pid

    def holders(self) -> list[int]:
        return proctable.tree(self.server.home, self.server.pid).holders

    @contextlib.asynccontextmanager
    async def opener(self) -> AsyncIterator[pc.Opener]:
        api = pc.JsonPoster(self.server.url, size=50)
        try:

            async def open_(program: str) -> pc.Conn:
                return await pc.OursConn.open(api, self.server.ws_url, program)

            yield open_
        finally:
            await api.aclose()

    def stop(self) -> None:
        self.fleet.stop(self.server)
        # Fleet keeps the homes for its final sweep; this one is done with.
        home = self.server.home
        if home in self.fleet.homes and not proctable.tree(home, None).pids:
            self.fleet.homes.remove(home)
