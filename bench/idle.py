"""What an idle session costs: memory of what holds the sessions, idle and with N of them.

The holders are the server and, once sessions outlive it, the keeper (any helper process of
theirs too); the session programs are the user's and are reported apart. PSS is the figure that
adds up over a process tree; RSS is printed too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import clients
import proctable
from proctable import Memory, Tree
from servers import Fleet
from versions import Version


@dataclass(frozen=True)
class IdleCost:
    n: int
    idle: Memory
    loaded: Memory
    """The holders with `n` idle sessions."""
    programs: Memory
    """The `n` session programs themselves."""
    idle_tree: Tree
    loaded_tree: Tree

    def describe(self) -> str:
        return f"idle: {self.idle_tree.describe()}; loaded: {self.loaded_tree.describe()}"


def wait_for(check: Callable[[], Tree | None], timeout: float, what: str) -> Tree:
    """Poll `check()` until it returns a Tree; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (found := check()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return found


def measure(fleet: Fleet, version: Version, n: int) -> IdleCost:
    """Memory of a fresh server of `version` (and its keeper) idle, then with `n` idle `cat`s."""
    limit = str(max(1000, n + 10))
    srv = fleet.start(
        version, "memory", "--no-auth", "--rate-limit", "100000", "--max-sessions", limit
    )
    try:
        pid = srv.pid

        def settled(count: int) -> Tree | None:
            t = proctable.tree(srv.home, pid)
            return t if len(t.sessions) == count else None

        # Warm up with one session, ended: code and buffers every session shares are loaded on
        # the first one, and are no cost of each.
        warm_up = asyncio.run(clients.idle_sessions(srv, 1))
        asyncio.run(clients.delete(srv, warm_up))
        idle_tree = wait_for(lambda: settled(0), 10, "the warm-up session to end")
        idle = proctable.memory(idle_tree.holders)
        asyncio.run(clients.idle_sessions(srv, n))
        loaded_tree = wait_for(lambda: settled(n), 30, f"{n} session programs")
        return IdleCost(
            n=n,
            idle=idle,
            loaded=proctable.memory(loaded_tree.holders),
            programs=proctable.memory(list(loaded_tree.sessions)),
            idle_tree=idle_tree,
            loaded_tree=loaded_tree,
        )
    finally:
        fleet.stop(srv)
