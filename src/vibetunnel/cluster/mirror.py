"""Another node's session, mirrored here: fed from its output stream, typed into through its
node's order queue. Viewers attach to the mirror's Session exactly as to a local one, so the
framing, the replay, slow-client isolation and the close codes are the same.

A mirror starts from a snapshot that the owner puts into the stream itself, and follows the
stream from there. An entry missing (a gap in the owner's counter, or a new owner process)
means output was lost: it asks for a snapshot again, and its viewers start again from it
(pty/client.py's resync), as a viewer that fell behind does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from vibetunnel.auth.redislink import ClusterUnavailable
from vibetunnel.cluster import keys
from vibetunnel.errors import InputOverflow, NodeUnavailable, VibeTunnelError
from vibetunnel.protocol.screen import ScreenBuffer
from vibetunnel.protocol.sessions import MAX_EXIT
from vibetunnel.protocol.times import unix
from vibetunnel.pty.output import Output
from vibetunnel.pty.session import Session

if TYPE_CHECKING:
    from vibetunnel.cluster.gateway import Gateway

log = logging.getLogger("vibetunnel.cluster")

READY_TIMEOUT = 10.0
BLOCK_MS = 1000
SNAPSHOT_RETRY = 5.0
"""Seconds to wait for an asked-for snapshot in the stream before asking again."""


class MirrorPty:
    """The `Pty` of a mirror: what a viewer types goes to the owning node as orders."""

    def __init__(self, gateway: Gateway, node: str, session_id: str, pid: int) -> None:
        self.gateway, self.node, self.session_id, self.pid = gateway, node, session_id, pid
        self.exited = asyncio.Event()
        self._on_output: Callable[[bytes], None] = lambda data: None
        self._on_exit: Callable[[int | None], None] = lambda code: None

    def start(
        self, on_output: Callable[[bytes], None], on_exit: Callable[[int | None], None]
    ) -> None:
        self._on_output, self._on_exit = on_output, on_exit

    def write(self, data: bytes) -> None:
        order = {"op": "input", "id": self.session_id, "data": data.decode("utf-8", "replace")}
        self.gateway.send(self.node, order)

    def resize(self, cols: int, rows: int) -> None:
        self.gateway.send(
            self.node, {"op": "resize", "id": self.session_id, "cols": cols, "rows": rows}
        )

    async def terminate(self, grace: float = 1.0) -> None:
        """Never called by this node's manager (mirrors are not its sessions): a DELETE
        through this node goes to the owner as an order (node.py)."""
        await self.gateway.call(self.node, {"op": "delete", "id": self.session_id})

    def feed(self, data: bytes) -> None:
        if not self.exited.is_set():
            self._on_output(data)

    def finish(self, code: int | None) -> None:
        if not self.exited.is_set():
            self.exited.set()
            self._on_exit(code)


class Mirror:
    def __init__(self, gateway: Gateway, info: dict[str, Any]) -> None:
        self.gateway = gateway
        self.node: str = info["node"]
        self.pty = MirrorPty(gateway, self.node, info["id"], int(info.get("pid") or 0))
        self.session = Session(
            id=info["id"],
            name=info["name"],
            command=info["command"],
            args=list(info["args"]),
            cwd=info["cwd"],
            cols=int(info["cols"]),
            rows=int(info["rows"]),
            process=self.pty,
            created_at=unix(info["createdAt"]),
            node=self.node,
            output=Output(screen=ScreenBuffer()),
        )
        self.session.start()
        self.session.on_change = self._tell_owner  # a viewer came or went
        self.users = 0
        self.closed = False
        self.error: VibeTunnelError | None = None
        self._ready = asyncio.Event()
        self._epoch: bytes | None = None
        self._n = 0
        self._waiting: str | None = None
        """The token of the snapshot asked for and not yet seen: entries until then are old."""
        self._asked_at = 0.0
        self._told_at = 0.0
        self._task = asyncio.create_task(self._follow(), name=f"mirror-{info['id']}")

    async def wait_ready(self) -> None:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await self._ready.wait()
        except TimeoutError:
            raise NodeUnavailable(f"node {self.node} did not send the screen in time") from None
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True
        self._task.cancel()

    async def _follow(self) -> None:
        link = self.gateway.link
        key = keys.output(self.session.id)
        last: bytes | None = None
        while True:
            try:
                if last is None:  # from here on, the snapshot is ahead of us
                    top: Any = await link.run(lambda: link.client.xrevrange(key, count=1))
                    last = top[0][0] if top else b"0-0"
                    await self._ask()
                elif (
                    self._waiting is not None and time.monotonic() > self._asked_at + SNAPSHOT_RETRY
                ):
                    last = None  # trimmed away before we read it, or lost: ask again
                    continue
                self._still_watching()
                read = partial(link.blocking.xread, {key: last}, count=512, block=BLOCK_MS)
                got: Any = await link.run(read)
            except (ClusterUnavailable, NodeUnavailable):
                # Redis (which may have lost the stream) or the node is back soon, or the
                # gateway drops this mirror: start again from a snapshot.
                last = None
                await asyncio.sleep(1.0)
                continue
            except VibeTunnelError as exc:  # the owner's answer: no such session, ...
                self._fail(exc)
                return
            for _key, entries in got or []:
                for entry_id, fields in entries:
                    last = entry_id
                    try:
                        self._take(fields)
                    except Exception as exc:  # unforeseen: that entry is lost, not the mirror
                        self._junk(f"{type(exc).__name__}: {exc}")

    def _still_watching(self) -> None:
        """Tell the owner, every third of its WATCH_TTL, to go on writing the stream."""
        if time.monotonic() > self._told_at + keys.WATCH_TTL / 3:
            self._tell_owner()

    def _tell_owner(self) -> None:
        """That this gateway mirrors the session, for how many viewers."""
        self._told_at = time.monotonic()
        order = {"op": "watch", "id": self.session.id, "gateway": self.gateway.node}
        with contextlib.suppress(InputOverflow):  # said again in WATCH_TTL / 3
            self.gateway.send(self.node, {**order, "clients": len(self.session.clients)})

    async def _ask(self) -> None:
        self._told_at = time.monotonic()  # a snapshot order says it too
        self._waiting = uuid.uuid4().hex
        self._asked_at = time.monotonic()
        order = {"op": "snapshot", "id": self.session.id, "token": self._waiting}
        await self.gateway.call(self.node, order)

    def _fail(self, exc: VibeTunnelError) -> None:
        self.error = exc
        self.closed = True
        self._ready.set()
        self.session.shutdown_clients()

    def _take(self, fields: dict[bytes, bytes]) -> None:
        try:
            epoch, n = fields[b"e"], int(fields[b"n"])
        except (KeyError, ValueError):  # not the owner's: skipped, the counter is unmoved
            self._junk("an entry without its epoch and counter")
            return
        if self._waiting is not None:
            if fields.get(b"token") == self._waiting.encode():
                if b"s" not in fields:
                    self._junk("a snapshot without its screen")
                    return  # still waiting: asked again after SNAPSHOT_RETRY
                self._waiting = None
                self._epoch, self._n = epoch, n
                self._screen(fields[b"s"])
            return
        if epoch != self._epoch or n != self._n + 1:
            log.info(
                "mirror of %s: output was lost; starting again from a snapshot", self.session.id
            )
            self.resync_soon()
            return
        if b"o" in fields:
            self._n = n
            self.pty.feed(fields[b"o"])
        elif b"x" in fields:
            good, code = _exit_code(fields[b"x"])
            if not good:
                self._junk("an exit without an exit code")
                return  # the owner's own entry of that number is still to come
            self._n = n
            self.pty.finish(code)
        else:
            self._n = n

    def _junk(self, problem: str) -> None:
        # Once per problem for each mirror: entries are read once, but may be many.
        self.gateway.complain(f"an entry of {keys.output(self.session.id)}", b"", problem)

    def resync_soon(self) -> None:
        """Start again from a snapshot (asked for at once)."""
        if not self._ready.is_set():
            return  # the first one is on its way
        self._waiting = "resync"  # nothing matches it: _follow asks again after SNAPSHOT_RETRY
        self._asked_at = time.monotonic() - SNAPSHOT_RETRY

    def _screen(self, data: bytes) -> None:
        screen = ScreenBuffer()
        screen.append(data)
        self.session.output.screen = screen
        if self._ready.is_set():
            for client in self.session.clients:
                client.resync()
        self._ready.set()


def _exit_code(raw: bytes) -> tuple[bool, int | None]:
    """An exit entry's code: (True, 0..255), (True, None) when unknown (written as ""), or
    (False, None) for anything else."""
    if raw == b"":
        return True, None
    try:
        code = int(raw)
    except ValueError:
        return False, None
    return (True, code) if 0 <= code <= MAX_EXIT else (False, None)
