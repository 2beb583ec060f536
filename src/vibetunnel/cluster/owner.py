"""This node's side of the cluster: its heartbeat, its session list, every session's output
as a stream, and the orders other nodes send for its sessions.

Output goes out in order through one writer: each entry carries this process's epoch and a
counter per session, so a mirror that misses an entry (a trimmed stream, a Redis restart, a
queue dropped while Redis was away) sees the gap and asks for a snapshot again. A snapshot is
an entry of the stream itself, between the output before it and the output after it: the
replay and the stream position it belongs to cannot come apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

from vibetunnel.auth.redislink import ClusterUnavailable, RedisLink
from vibetunnel.cluster import keys
from vibetunnel.cluster.readback import Complaints, loads
from vibetunnel.config import NODE_NAME
from vibetunnel.errors import BadRequest, VibeTunnelError
from vibetunnel.protocol.ids import ID_PATTERN
from vibetunnel.protocol.messages import MAX_SIZE, MIN_SIZE, typeable
from vibetunnel.protocol.sessions import MAX_CLIENTS
from vibetunnel.protocol.values import is_int
from vibetunnel.pty.manager import SessionManager, SessionOptions
from vibetunnel.pty.session import Session

log = logging.getLogger("vibetunnel.cluster")

MAX_QUEUED = 16 * 1024 * 1024
"""Bytes of output waiting for a slow Redis; past this they are dropped (mirrors resync)."""
ORDERS_AT_ONCE = 256
LIST_DEBOUNCE = 0.05
"""Seconds to gather a burst of changes into one write of the session list."""


@dataclass
class _Entry:
    key: str
    fields: dict[str, str | int | bytes]
    data: bytearray | None = None
    """Output still growing: more reads join it until the writer takes it."""


@dataclass
class _Stream:
    session: Session
    n: int = 0
    ended: bool = False
    watched_until: float = 0.0
    """Monotonic time until which some gateway mirrors it (keys.WATCH_TTL from its last word)."""
    viewers: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Gateway -> (its viewers of this session, until when that holds)."""


@dataclass
class _Sink:
    owner: Owner
    session_id: str

    def feed(self, data: bytes) -> None:
        self.owner.output(self.session_id, data)


@dataclass
class Owner:
    link: RedisLink
    manager: SessionManager
    node: str
    ttl: float
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _streams: dict[str, _Stream] = field(default_factory=dict)
    _entries: deque[_Entry] = field(default_factory=deque)
    _open: dict[str, _Entry] = field(default_factory=dict)
    _queued: int = 0
    _deleted: set[str] = field(default_factory=set)
    """Sessions gone from the manager whose streams are to expire."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _complain: Complaints = field(default_factory=Complaints)

    async def start(self) -> list[asyncio.Task[None]]:
        # Orders sent before this process started were for a node that was down: keys typed
        # then are not typed now. (Gateways send to online nodes only, and this is before the
        # first heartbeat; wall clocks of different machines are never compared.)
        with contextlib.suppress(ClusterUnavailable):
            await self.link.run(lambda: self.link.client.delete(keys.control(self.node)))
        self.sync()
        return [
            asyncio.create_task(self._write_entries(), name="cluster-writer"),
            asyncio.create_task(self._publish_list(), name="cluster-list"),
            asyncio.create_task(self._heartbeat(), name="cluster-heartbeat"),
            asyncio.create_task(self._take_orders(), name="cluster-orders"),
        ]

    async def leave(self) -> None:
        """A clean stop: offline at once; the sessions stay listed (the keeper runs them)."""
        with contextlib.suppress(ClusterUnavailable):
            async with asyncio.timeout(2):
                await self._write_list()
                await self.link.run(lambda: self.link.client.delete(keys.alive(self.node)))
                await self.link.run(lambda: self.link.client.publish(keys.CHANGES, self.node))

    # -- output -------------------------------------------------------------------------------

    def output(self, session_id: str, data: bytes) -> None:
        stream = self._streams.get(session_id)
        if stream is None:
            return
        if self.link.down or time.monotonic() > stream.watched_until:
            # Not written: nobody mirrors it, or Redis is away. The counter still moves, so a
            # mirror that was not heard from sees the gap and asks for a snapshot again.
            stream.n += 1
            self._open.pop(session_id, None)
            return
        entry = self._open.get(session_id)
        if entry is None or entry.data is None or len(entry.data) >= keys.ENTRY_BYTES:
            entry = self._add(session_id, {}, bytearray())
            self._open[session_id] = entry
        assert entry.data is not None
        entry.data += data
        self._queued += len(data)
        if self._queued > MAX_QUEUED:
            log.warning("cluster: Redis is too slow; dropped %d bytes of output", self._queued)
            self._entries.clear()
            self._open.clear()
            self._queued = 0

    def _add(
        self, session_id: str, fields: dict[str, str | int | bytes], data: bytearray | None = None
    ) -> _Entry:
        stream = self._streams[session_id]
        stream.n += 1
        entry = _Entry(keys.output(session_id), {"e": self.epoch, "n": stream.n, **fields}, data)
        self._entries.append(entry)
        self._open.pop(session_id, None)  # what follows comes after this entry
        self._wake.set()
        return entry

    def _ended(self, session_id: str, code: int | None) -> None:
        self._add(session_id, {"x": "" if code is None else str(code)})
        self._streams[session_id].ended = True

    async def _write_entries(self) -> None:
        """The one writer: everything queued meanwhile goes in one round trip, in order."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            entries, self._entries = self._entries, deque()
            deleted, self._deleted = self._deleted, set()
            self._open.clear()
            self._queued = 0
            if not entries and not deleted:
                continue
            pipe = self.link.client.pipeline(transaction=False)
            for entry in entries:
                # Any: redis-py's annotation of the fields changes by release.
                fields: dict[Any, Any] = dict(entry.fields)
                if entry.data is not None:
                    fields["o"] = bytes(entry.data)
                pipe.xadd(entry.key, fields, maxlen=keys.STREAM_MAXLEN, approximate=True)
            for session_id in deleted - self._streams.keys():  # not registered again since
                # After its last entry: its end stays a while for late mirrors.
                pipe.expire(keys.output(session_id), keys.ENDED_STREAM_TTL)
            with contextlib.suppress(ClusterUnavailable):
                await self.link.run(pipe.execute)

    # -- the session list -----------------------------------------------------------------------

    def sync(self) -> None:
        """Follow the manager: a stream for each new session, an end for each ended one."""
        current = {s.id: s for s in self.manager.list()}
        for session_id, session in current.items():
            stream = self._streams.get(session_id)
            if stream is None or stream.session is not session:  # new, or vt registered again
                n = 0 if stream is None else stream.n
                stream = self._streams[session_id] = _Stream(session, n)
                session.output.sinks.append(_Sink(self, session_id))
            if not session.running and not stream.ended:
                self._ended(session_id, session.exit_code)
        for session_id in list(self._streams):
            if session_id not in current:
                if not self._streams[session_id].ended:
                    self._ended(session_id, None)
                del self._streams[session_id]
                self._deleted.add(session_id)  # its stream expires (_write_entries)
                self._wake.set()

    async def _publish_list(self) -> None:
        seen = -1
        while True:
            await self.manager.wait_change(seen, self.ttl / 3)
            if self.manager.version == seen:
                continue
            await asyncio.sleep(LIST_DEBOUNCE)
            seen = self.manager.version
            self.sync()
            with contextlib.suppress(ClusterUnavailable):
                await self._write_list()

    async def _write_list(self) -> None:
        sessions = self.manager.list()
        pipe = self.link.client.pipeline(transaction=True)
        pipe.delete(keys.sessions(self.node))
        if sessions:
            pipe.hset(
                keys.sessions(self.node),
                mapping={s.id: json.dumps(s.to_json()) for s in sessions},
            )
        self._announce(pipe, len(sessions))
        pipe.publish(keys.CHANGES, self.node)
        await self.link.run(pipe.execute)

    def _announce(self, pipe: Any, sessions: int) -> None:
        """Alive (for `ttl` seconds) and listed: with the list and with each heartbeat."""
        pipe.set(keys.alive(self.node), self.epoch, ex=max(1, round(self.ttl)))
        pipe.hset(
            keys.NODES, self.node, json.dumps({"lastSeen": time.time(), "sessions": sessions})
        )

    async def _heartbeat(self) -> None:
        while True:
            was_ok, count = not self.link.down, len(self.manager.list())
            pipe = self.link.client.pipeline(transaction=False)
            self._announce(pipe, count)
            pipe.exists(keys.sessions(self.node))
            try:
                *_, listed = await self.link.run(pipe.execute)
            except ClusterUnavailable:
                await asyncio.sleep(1.0)
                continue
            if not was_ok or (count and not listed):
                self.manager.touch()  # (re)joined, or Redis lost its data: say it all again
            for stream in self._streams.values():
                self._count_viewers(stream)
            await asyncio.sleep(self.ttl / 3)

    # -- orders from other nodes ----------------------------------------------------------------

    async def _take_orders(self) -> None:
        queue = keys.control(self.node)
        while True:
            take = partial(
                self.link.blocking.blmpop, 1, 1, queue, direction="LEFT", count=ORDERS_AT_ONCE
            )
            try:  # one round trip: up to ORDERS_AT_ONCE orders, waiting for the first
                got: Any = await self.link.run(take)
            except ClusterUnavailable:
                await asyncio.sleep(1.0)
                continue
            for raw in got[1] if got else []:
                try:
                    await self._order(raw)
                except Exception:  # a fault nobody foresaw: one order must not stop the queue
                    log.exception("cluster: an order failed")

    async def _order(self, raw: bytes) -> None:
        order, problem = loads(raw)
        problem = problem or order_problem(order)
        if problem is not None:  # not from a gateway of ours: said once, answered if it can be
            self._complain("an order", raw, problem)
            reply = order.get("reply") if isinstance(order, dict) else None
            if isinstance(reply, str) and TOKEN.fullmatch(reply):
                await self._reply(reply, {"error": error_json(BadRequest(problem))})
            return
        op, reply = order["op"], order.get("reply")
        if op in ("create", "delete", "rename"):  # may take seconds: the queue goes on
            task = asyncio.create_task(self._answer(order))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        await self._answer(order) if reply else await self._carry_out(order)

    async def _answer(self, order: dict[str, Any]) -> None:
        try:
            answer: dict[str, Any] = {"ok": await self._carry_out(order)}
        except VibeTunnelError as exc:
            answer = {"error": error_json(exc)}
        except Exception:  # a fault nobody foresaw: answered, not left to time out
            log.exception("cluster: order %r failed", order.get("op"))
            answer = {"error": error_json(VibeTunnelError("internal error"))}
        if order.get("reply"):
            await self._reply(order["reply"], answer)

    async def _reply(self, token: str, answer: dict[str, Any]) -> None:
        key = keys.reply(token)
        pipe = self.link.client.pipeline(transaction=True)
        pipe.rpush(key, json.dumps(answer))
        pipe.expire(key, keys.REPLY_TTL)
        with contextlib.suppress(ClusterUnavailable):
            await self.link.run(pipe.execute)

    async def _carry_out(self, order: dict[str, Any]) -> Any:
        """An order that `order_problem` passed."""
        m, op, sid = self.manager, order["op"], order.get("id", "")
        if op == "input":
            m.type_into(sid, order["data"])
        elif op == "watch":
            self._watch(sid, order["gateway"], order["clients"])
        elif op == "resize":
            return m.resize_session(sid, order["cols"], order["rows"]).to_json()
        elif op == "snapshot":
            await self._snapshot(sid, order["token"])
        elif op == "create":
            return (await m.create(SessionOptions(**order["options"]))).to_json()
        elif op == "delete":
            await m.delete(sid)
        elif op == "rename":
            return m.rename(sid, order["name"]).to_json()
        return None

    def _watch(
        self, session_id: str, gateway: str | None = None, clients: int | None = None
    ) -> None:
        stream = self._streams.get(session_id)
        if stream is None:
            return
        stream.watched_until = time.monotonic() + keys.WATCH_TTL
        if gateway is not None and clients is not None:
            stream.viewers[str(gateway)] = (int(clients), stream.watched_until)
            self._count_viewers(stream)

    def _count_viewers(self, stream: _Stream) -> None:
        """The session's viewers on other nodes, as their gateways last said (a gateway not
        heard from for WATCH_TTL is gone, and so are its viewers)."""
        now = time.monotonic()
        stream.viewers = {g: v for g, v in stream.viewers.items() if v[1] > now}
        count = sum(n for n, _ in stream.viewers.values())
        if count != stream.session.remote_clients:
            stream.session.remote_clients = count
            self.manager.touch()

    async def _snapshot(self, session_id: str, token: str) -> None:
        """Put the screen in the session's stream, where it belongs among the output."""
        session = self.manager.get(session_id)
        self.sync()
        self._watch(session_id)  # before the snapshot: what follows it is written
        if session.output.screen is not None:
            screen = session.snapshot()  # no await until it is queued: nothing can come between
        else:
            screen = await self.manager.replay(session)
        self._add(session_id, {"s": screen, "token": token})
        if not session.running:  # the mirror learns the end after the screen
            self._ended(session_id, session.exit_code)


TOKEN = re.compile(r"[0-9A-Za-z_-]{1,64}")
"""An order's reply token or a snapshot's (gateways make them: uuid4 hex)."""
OPTIONS = frozenset(f.name for f in fields(SessionOptions))


def _is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def _is_token(value: object) -> bool:
    return isinstance(value, str) and TOKEN.fullmatch(value) is not None


def _is_text(value: object) -> bool:
    return isinstance(value, str) and typeable(value)


def _is_node(value: object) -> bool:
    return isinstance(value, str) and NODE_NAME.fullmatch(value) is not None


def _is_count(value: object) -> bool:
    return is_int(value) and 0 <= value <= MAX_CLIENTS


def _is_size(value: object) -> bool:
    return is_int(value) and MIN_SIZE <= value <= MAX_SIZE


def _is_name(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 256


def _is_options(value: object) -> bool:
    """Session options: their fields' values are checked by the manager, as the API's."""
    return isinstance(value, dict) and value.keys() <= OPTIONS


_ID = (("id", _is_id, "a session id"),)
_ORDERS: dict[str, tuple[tuple[str, Callable[[object], bool], str], ...]] = {
    "input": (*_ID, ("data", _is_text, "text")),
    "watch": (*_ID, ("gateway", _is_node, "a node name"), ("clients", _is_count, "a count")),
    "resize": (*_ID, ("cols", _is_size, "1..1000"), ("rows", _is_size, "1..1000")),
    "snapshot": (*_ID, ("token", _is_token, "a token")),
    "create": (("options", _is_options, "an object of session options"),),
    "delete": _ID,
    "rename": (*_ID, ("name", _is_name, "1 to 256 characters")),
}
"""Each order this node carries out, and what each of its fields must be."""


def order_problem(order: object) -> str | None:
    """What keeps `order` from being one this node carries out (gateway.py, mirror.py send
    them), or None."""
    if not isinstance(order, dict):
        return "an order must be a JSON object"
    op = order.get("op")
    if not isinstance(op, str) or op not in _ORDERS:
        return f"op: unknown order {str(op)[:40]!r}"
    if "reply" in order and not _is_token(order["reply"]):
        return "reply must be a token"
    for name, check, what in _ORDERS[op]:
        if not check(order.get(name)):
            return f"{op}: {name} must be {what}"
    return None


def error_json(exc: VibeTunnelError) -> dict[str, Any]:
    """An error as an order's answer carries it (gateway.py raises it again)."""
    return {
        "code": exc.code,
        "status": exc.status,
        "message": exc.message,
        "retryAfter": getattr(exc, "retry_after", None),
    }
