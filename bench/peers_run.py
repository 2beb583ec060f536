"""The servers of bench/peers.py: ttyd, terminado and ours, each started fresh for one load.

A `Target` starts its server, opens connections of its protocol (`opener`), names the
processes that hold its sessions (`holders`: the server, and our keeper; never the session
programs, which are the user's), and stops it with everything it started.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import peers_clients as pc
import peers_install
import proctable
from servers import Fleet, Listening, Server
from versions import Version

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


class PeerProcess(Listening, Target):
    """A peer server: `argv`, its port read from its output; `connect` opens one
    connection of its protocol."""

    keep = 200  # ttyd logs every connection: keep the start only
    stop_timeout = 10.0

    def __init__(self, argv: list[str], listening: re.Pattern[str]) -> None:
        super().__init__(Path(argv[0]).name, argv, dict(os.environ), listening)
        assert self.ready is not None
        self.port = int(self.ready.group(1))

    async def connect(self, program: str) -> pc.Conn:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def opener(self) -> AsyncIterator[pc.Opener]:
        yield self.connect

    def stop(self) -> int:
        """SIGTERM (SIGKILL after 10 s), then end whatever it started that outlives it."""
        below = descendants(self.pid)
        code = super().stop()
        proctable.end([pid for pid in below if proctable.alive(pid)])
        return code


class Ttyd(PeerProcess):
    name = "ttyd"

    def __init__(self) -> None:
        # -W: clients may write; -a: the program's args come from the URL (one server, every
        # load's program). Deflate is left to the client, which offers none.
        argv = [str(peers_install.TTYD), "-p", "0", "-i", "lo", "-W", "-a"]
        super().__init__(
            [*argv, "sh", "-c", 'exec "$@"', "peer"], re.compile(r"Listening on port: (\d+)")
        )

    async def connect(self, program: str) -> pc.Conn:
        return await pc.TtydConn.open(self.port, program)


class Terminado(PeerProcess):
    name = "terminado"

    def __init__(self) -> None:
        script = Path(__file__).resolve().parent / "peers_terminado.py"
        argv = [str(peers_install.VENV_PYTHON), str(script), json.dumps(pc.PROGRAMS)]
        super().__init__(argv, re.compile(r"terminado listening on (\d+)"))

    async def connect(self, program: str) -> pc.Conn:
        return await pc.TerminadoConn.open(self.port, program)


class Ours(Target):
    """`vibetunnel serve` of this tree, through the bench's Fleet (which ends the keeper and the
    sessions that outlive the server)."""

    def __init__(self, name: str, fleet: Fleet, version: Version, *extra: str) -> None:
        self.name = name
        self.fleet = fleet
        self.server: Server = fleet.start(version, f"{name}-{next(SERIAL)}", *OURS_ARGS, *extra)
        self.pid = self.server.pid
        self.acks = (version.src / "vibetunnel" / "protocol" / "flow.py").is_file()
        """Its code speaks flow control: the client acks (an older server would close)."""

    def holders(self) -> list[int]:
        return proctable.tree(self.server.home, self.server.pid).holders

    @contextlib.asynccontextmanager
    async def opener(self) -> AsyncIterator[pc.Opener]:
        api = pc.JsonPoster(self.server.url, size=50)
        try:

            async def open_(program: str) -> pc.Conn:
                return await pc.OursConn.open(api, self.server.ws_url, program, self.acks)

            yield open_
        finally:
            await api.aclose()

    def stop(self) -> None:
        self.fleet.stop(self.server)
        # Fleet keeps the homes for its final sweep; this one is done with.
        home = self.server.home
        if home in self.fleet.homes and not proctable.tree(home, None).pids:
            self.fleet.homes.remove(home)
