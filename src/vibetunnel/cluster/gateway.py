"""This node as a gateway to the others: what they run (kept fresh from Redis), orders sent
to them, and mirrors of their sessions for the WebSockets opened here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from vibetunnel.auth.redislink import ClusterUnavailable, RedisLink
from vibetunnel.cluster import keys
from vibetunnel.cluster.mirror import Mirror
from vibetunnel.cluster.readback import Complaints, listed_problem, loads, node_name, node_problem
from vibetunnel.errors import (
    InputOverflow,
    NodeUnavailable,
    SessionNotFound,
    TooManyRequests,
    VibeTunnelError,
)
from vibetunnel.protocol.ids import ID_PATTERN
from vibetunnel.protocol.times import iso
from vibetunnel.protocol.values import is_int
from vibetunnel.pty.process import WRITE_QUEUE_LIMIT
from vibetunnel.pty.session import Session

ORDER_TTL = 10.0
"""Seconds to wait for an order's answer."""
LEARNED_FOR = 5.0
"""Seconds an owner's answer about a session outweighs an older list of its from Redis."""
LINGER = 10.0
"""Seconds a mirror nobody watches is kept, so a reconnecting viewer finds it ready."""


_FIND = """
-- ARGV: the key prefix, a session id, this node's name. The first other node whose list
-- holds the session: {node, its session JSON, its alive key (false: offline), its vt:nodes
-- entry}; false if none. pcall: a key of the wrong type is not this script's error.
local prefix, id, me = ARGV[1], ARGV[2], ARGV[3]
local function value(...)
  local got = redis.pcall(...)
  if type(got) == 'string' then return got end
  return false
end
local nodes = redis.pcall('HKEYS', prefix .. 'nodes')
if type(nodes) ~= 'table' or nodes.err then return false end
for _, node in ipairs(nodes) do
  if node ~= me then
    local session = value('HGET', prefix .. 'sessions:' .. node, id)
    if session then
      return {node, session, value('GET', prefix .. 'alive:' .. node),
              value('HGET', prefix .. 'nodes', node)}
    end
  end
end
return false
"""


class Gateway:
    def __init__(
        self, link: RedisLink, node: str, ttl: float, on_change: Callable[[], None]
    ) -> None:
        self.link = link
        self.node = node
        self.ttl = ttl
        self.on_change = on_change
        self.nodes: dict[str, dict[str, Any]] = {}
        """Every other node: {name, online, sessions, lastSeen}, as Redis last said."""
        self.sessions: dict[str, dict[str, Any]] = {}
        """Every other node's sessions, by id (the API's JSON, with `node`)."""
        self.mirrors: dict[str, Mirror] = {}
        self._learned: dict[str, tuple[dict[str, Any] | None, float]] = {}
        """Sessions an owner answered about (made, changed: the JSON; deleted: None) until its
        own list says so too, with a deadline: Redis may still hold the list from before."""
        self._epochs: dict[str, bytes] = {}
        """Each node's process (the value of its alive key), to see it restart."""
        self._stale = asyncio.Event()
        self._outbox: deque[tuple[str, str]] = deque()
        self._queued = 0
        self._send = asyncio.Event()
        self.complain = Complaints()
        """Says once that a malformed item read from Redis was skipped (mirrors use it too)."""
        self._find = link.client.register_script(_FIND)

    def start(self) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(self._refresh(), name="cluster-refresh"),
            asyncio.create_task(self._listen(), name="cluster-listen"),
            asyncio.create_task(self._send_orders(), name="cluster-send"),
        ]

    # -- what the other nodes run -------------------------------------------------------------

    async def _refresh(self) -> None:
        while True:
            await self.refresh_once()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ttl / 3 if not self.link.down else 1.0):
                    await self._stale.wait()
            self._stale.clear()

    async def refresh_once(self) -> None:
        """`refresh`, whatever happens: Redis away, or a fault nobody foresaw (logged once),
        never stops the task that calls it."""
        try:
            await self.refresh()
        except ClusterUnavailable:
            pass
        except Exception as exc:
            self.complain("a refresh", repr(exc).encode(), f"{type(exc).__name__}: {exc}")

    async def refresh(self) -> None:
        r = self.link.client
        known: Any = await self.link.run(lambda: r.hgetall(keys.NODES))
        about: dict[str, dict[str, Any]] = {}
        for raw_name, raw in known.items():
            name = node_name(raw_name)
            if name is None:
                self.complain("a vt:nodes entry", raw_name, "not a node name")
                continue
            value, problem = loads(raw)
            problem = problem or node_problem(value)
            if problem is not None:
                self.complain(f"node {name}", raw, problem)
            elif name != self.node:
                about[name] = value
        names = sorted(about)
        pipe = r.pipeline(transaction=False)
        for name in names:
            pipe.get(keys.alive(name))
            pipe.hgetall(keys.sessions(name))
        # A key of the wrong type answers an error of its own, not an outage: the rest stand.
        answers = await self.link.run(lambda: pipe.execute(raise_on_error=False)) if names else []
        nodes, sessions, epochs = {}, {}, {}
        for i, name in enumerate(names):
            epoch, listed = answers[2 * i], answers[2 * i + 1]
            if not isinstance(epoch, bytes | None):
                self.complain(keys.alive(name), b"", str(epoch))
                epoch = None
            if not isinstance(listed, dict):
                self.complain(keys.sessions(name), b"", str(listed))
                listed = {}
            mine = self._sessions_of(name, listed)
            nodes[name] = {
                "name": name,
                "online": epoch is not None,
                "sessions": len(mine),
                "lastSeen": iso(float(about[name]["lastSeen"])),
            }
            if epoch is not None:
                epochs[name] = epoch
            sessions.update(mine)
        now = time.monotonic()
        for session_id, (known_now, until) in list(self._learned.items()):
            if now > until:
                del self._learned[session_id]
            elif known_now is None:
                sessions.pop(session_id, None)
            elif session_id not in sessions:
                sessions[session_id] = known_now
        for mirror in self.mirrors.values():
            if mirror.node in epochs and epochs[mirror.node] != self._epochs.get(mirror.node):
                mirror.resync_soon()  # a new process: it knows of no mirror until told
        self._epochs.update(epochs)
        changed = nodes != self.nodes or sessions != self.sessions
        self.nodes, self.sessions = nodes, sessions
        for mirror in list(self.mirrors.values()):
            if mirror.node in nodes and not nodes[mirror.node]["online"]:
                mirror.session.shutdown_clients()  # they reconnect, and find it back later
        if changed:
            self.on_change()

    def _sessions_of(self, node: str, listed: dict[bytes, bytes]) -> dict[str, dict[str, Any]]:
        """The sessions of `node`'s list that are sessions; the others said once, skipped."""
        sessions = {}
        for key, raw in listed.items():
            session, problem = loads(raw)
            problem = problem or listed_problem(node, key, session)
            if problem is not None:
                self.complain(f"a session of node {node}", raw, problem)
            else:
                sessions[session["id"]] = session
        return sessions

    async def _listen(self) -> None:
        """Refresh as soon as a node says its list changed."""
        while True:
            pubsub = self.link.blocking.pubsub()
            try:
                await pubsub.subscribe(keys.CHANGES)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is not None and message["data"] != self.node.encode():
                        self._stale.set()
            except self.link.errors:
                await asyncio.sleep(1.0)
            finally:
                # Through a typed name: redis-py's own annotation of aclose changes by release.
                close: Callable[[], Awaitable[None]] = pubsub.aclose
                with contextlib.suppress(*self.link.errors):
                    await close()

    def learn(self, session_id: str, session: dict[str, Any] | None) -> None:
        """What an owner answered (None: deleted), known here at once: a client that made a
        session through this node opens it next, before the owner's new list arrives."""
        self._learned[session_id] = (session, time.monotonic() + LEARNED_FOR)
        if session is None:
            self.sessions.pop(session_id, None)
        else:
            self.sessions[session_id] = session
        self.on_change()

    def online(self, node: str) -> bool:
        return not self.link.down and bool(self.nodes.get(node, {}).get("online"))

    def node_list(self) -> list[dict[str, Any]]:
        """The other nodes; while Redis is unreachable, none of them can be reached here."""
        return [{**n, "online": n["online"] and not self.link.down} for n in self.nodes.values()]

    def session(self, session_id: str) -> dict[str, Any]:
        """Another node's session, as this node last heard of it; SessionNotFound if not."""
        try:
            return self.sessions[session_id]
        except KeyError:
            raise SessionNotFound() from None

    async def lookup(self, session_id: str) -> dict[str, Any]:
        """Another node's session: as last heard of, or, for an id not heard of yet (this
        node has just started, or the session was made a moment ago), as Redis has it now,
        in one round trip; what is found is learned. Raises SessionNotFound, or
        NodeUnavailable when Redis cannot be asked."""
        if session_id in self.sessions:
            return self.sessions[session_id]
        gone, until = self._learned.get(session_id, ({}, 0.0))
        if not ID_PATTERN.fullmatch(session_id) or (gone is None and time.monotonic() < until):
            raise SessionNotFound()  # no session has that id, or it was deleted through here
        try:
            found: Any = await self.link.run(
                lambda: self._find(args=[keys.PREFIX, session_id, self.node])
            )
        except ClusterUnavailable:
            raise NodeUnavailable(
                f"the cluster's Redis cannot be reached from {self.node}"
            ) from None
        if not found:
            raise SessionNotFound()
        raw_name, raw, epoch, raw_about = found
        # Checked as the refresh checks them, in the same words: each is said once for both.
        name = node_name(raw_name)
        if name is None:
            self.complain("a vt:nodes entry", raw_name, "not a node name")
            raise SessionNotFound()
        about, problem = loads(raw_about or b"")
        problem = problem or node_problem(about)
        if problem is not None:
            self.complain(f"node {name}", raw_about or b"", problem)
            raise SessionNotFound()
        session, problem = loads(raw)
        problem = problem or listed_problem(name, session_id.encode(), session)
        if problem is not None:
            self.complain(f"a session of node {name}", raw, problem)
            raise SessionNotFound()
        if name not in self.nodes:  # not heard of either: known now, until the next refresh
            self.nodes[name] = {
                "name": name,
                "online": epoch is not None,
                "sessions": 1,
                "lastSeen": iso(float(about["lastSeen"])),
            }
            if epoch is not None:
                self._epochs[name] = epoch
        self.learn(session_id, session)
        listed: dict[str, Any] = session
        return listed

    def check_online(self, node: str) -> None:
        if self.link.down:
            raise NodeUnavailable(f"the cluster's Redis cannot be reached from {self.node}")
        if node not in self.nodes:
            raise NodeUnavailable(f"node {node} is not in the cluster")
        if not self.online(node):
            raise NodeUnavailable(f"node {node} is offline")

    # -- orders ---------------------------------------------------------------------------------

    async def call(self, node: str, order: dict[str, Any], timeout: float = ORDER_TTL) -> Any:
        """Send an order to `node` and wait for its answer; raises the node's error."""
        self.check_online(node)
        token = uuid.uuid4().hex
        order = {**order, "reply": token}
        r = self.link.client
        deadline = time.monotonic() + timeout
        pipe = r.pipeline(transaction=False)
        pipe.rpush(keys.control(node), json.dumps(order))
        pipe.expire(keys.control(node), keys.ORDERS_TTL)
        try:
            await self.link.run(pipe.execute)
            while time.monotonic() < deadline:
                got = await self.link.run(
                    lambda: self.link.blocking.blpop([keys.reply(token)], timeout=1)
                )
                if got is not None:
                    answer, _ = loads(got[1])
                    return raise_or_return(answer, node)
        except ClusterUnavailable:
            raise NodeUnavailable(
                f"the cluster's Redis cannot be reached from {self.node}"
            ) from None
        raise NodeUnavailable(f"node {node} did not answer within {timeout:g} s")

    def send(self, node: str, order: dict[str, Any]) -> None:
        """Queue an order that needs no answer (typing, resizing), in order; never blocks.
        Raises InputOverflow past the same limit as a local program's input queue."""
        message = json.dumps(order)
        if self._queued + len(message) > WRITE_QUEUE_LIMIT:
            raise InputOverflow(f"node {node} is not taking orders fast enough")
        self._outbox.append((node, message))
        self._queued += len(message)
        self._send.set()

    async def _send_orders(self) -> None:
        while True:
            await self._send.wait()
            self._send.clear()
            batch, self._outbox = self._outbox, deque()
            self._queued = 0
            pipe = self.link.client.pipeline(transaction=False)
            for node, message in batch:
                pipe.rpush(keys.control(node), message)
            for node in {node for node, _ in batch}:
                pipe.expire(keys.control(node), keys.ORDERS_TTL)
            with contextlib.suppress(ClusterUnavailable):
                await self.link.run(pipe.execute)  # lost with Redis: like a dropped socket

    # -- mirrors ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch(self, session_id: str) -> AsyncIterator[Session]:
        """A mirror of another node's session, ready (its screen in), for one viewer."""
        info = await self.lookup(session_id)
        self.check_online(info["node"])
        mirror = self.mirrors.get(session_id)
        if mirror is None or mirror.closed:
            mirror = self.mirrors[session_id] = Mirror(self, info)
        mirror.users += 1
        try:
            await mirror.wait_ready()
            yield mirror.session
        finally:
            mirror.users -= 1
            if mirror.users == 0:
                asyncio.get_running_loop().call_later(LINGER, self._drop_unused, mirror)

    def _drop_unused(self, mirror: Mirror) -> None:
        if mirror.users == 0:
            mirror.close()
            if self.mirrors.get(mirror.session.id) is mirror:
                del self.mirrors[mirror.session.id]

    def close(self) -> None:
        for mirror in self.mirrors.values():
            mirror.session.shutdown_clients()
            mirror.close()


def raise_or_return(answer: object, node: str = "the node") -> Any:
    """An order's answer: its result, or the node's error raised here as it was there.
    A malformed answer is NodeUnavailable: the node cannot be understood."""
    malformed = NodeUnavailable(f"node {node} sent a malformed answer")
    if not isinstance(answer, dict):
        raise malformed
    if "error" not in answer:
        return answer.get("ok")
    error = answer["error"]
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        raise malformed
    code, message = error.get("code"), error["message"][:1000]
    kind = _ERRORS.get(code, VibeTunnelError) if isinstance(code, str) else VibeTunnelError
    if kind is TooManyRequests:
        retry = error.get("retryAfter")
        raise TooManyRequests(message, retry_after=retry if is_int(retry) and retry > 0 else 1)
    exc = kind(message)
    if kind is VibeTunnelError:
        status = error.get("status")
        exc.status = status if is_int(status) and 400 <= status <= 599 else 500
        exc.code = code[:64] if isinstance(code, str) else "internal_error"
    raise exc


def _subclasses(cls: type[VibeTunnelError]) -> list[type[VibeTunnelError]]:
    return [cls, *(sub for c in cls.__subclasses__() for sub in _subclasses(c))]


_ERRORS = {cls.code: cls for cls in reversed(_subclasses(VibeTunnelError))}
