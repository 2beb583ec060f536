"""`Cluster`: this node in the cluster, as the API uses it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from vibetunnel.auth.redislink import RedisLink
from vibetunnel.cluster.gateway import Gateway
from vibetunnel.cluster.owner import Owner
from vibetunnel.cluster.readback import listed_problem
from vibetunnel.errors import BadRequest, NodeUnavailable
from vibetunnel.pty.manager import SessionManager
from vibetunnel.pty.session import Session

FIRST_REFRESH = 2.0
"""Seconds a node's start waits for its first look at the other nodes, at most."""


class Cluster:
    def __init__(self, link: RedisLink, name: str, ttl: float, manager: SessionManager) -> None:
        """`link`: the node's one Redis pool, shared with the rate limits and refresh tokens
        (the app closes it)."""
        self.name = name
        self.manager = manager
        self.link = link
        link.on_change.append(manager.touch)
        self.owner = Owner(self.link, manager, name, ttl)
        self.gateway = Gateway(self.link, name, ttl, manager.touch)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def degraded(self) -> bool:
        return self.link.down

    async def start(self) -> None:
        """Join: this node's list out, and the others' in once, before the app's lifespan
        ends (uvicorn accepts no connection before that), so that a node just started
        knows every session when it answers; at most FIRST_REFRESH seconds with a Redis
        that does not answer (the node then starts alone, and refreshes later)."""
        self._tasks = await self.owner.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_REFRESH):
                await self.gateway.refresh_once()
        self._tasks += self.gateway.start()

    def shutdown_clients(self) -> None:
        """The server is stopping: viewers of other nodes' sessions are told (1001)."""
        self.gateway.close()

    async def stop(self) -> None:
        if not self._tasks:
            return
        await self.owner.leave()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- the API's view -------------------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        """Every other node's sessions."""
        return list(self.gateway.sessions.values())

    def session(self, session_id: str) -> dict[str, Any]:
        """Another node's session as last heard of; SessionNotFound if not."""
        return self.gateway.session(session_id)

    async def lookup(self, session_id: str) -> dict[str, Any]:
        """Another node's session, asked of Redis if not heard of yet; SessionNotFound if
        no node has it, NodeUnavailable if Redis cannot be asked."""
        return await self.gateway.lookup(session_id)

    def nodes(self) -> list[dict[str, Any]]:
        """Every other node: {name, online, sessions, lastSeen}."""
        return self.gateway.node_list()

    async def order(self, session_id: str, order: dict[str, Any]) -> Any:
        """Carry out `order` on the node that runs the session; its answer or its error."""
        node = (await self.lookup(session_id))["node"]
        answer = await self.gateway.call(node, {**order, "id": session_id})
        if order["op"] == "delete":
            self.gateway.learn(session_id, None)
        elif answer is not None:
            answer = owned_session(node, answer)
            self.gateway.learn(session_id, answer)
        return answer

    async def create(self, node: str, options: dict[str, Any]) -> Any:
        if node not in self.gateway.nodes:
            raise BadRequest(f"node: no such node: {node}")
        created = owned_session(
            node, await self.gateway.call(node, {"op": "create", "options": options})
        )
        self.gateway.learn(created["id"], created)
        return created

    def watch(self, session_id: str) -> contextlib.AbstractAsyncContextManager[Session]:
        return self.gateway.watch(session_id)


def owned_session(node: str, answer: Any) -> dict[str, Any]:
    """A session an owner answered with (created, resized, renamed), checked as a listed one."""
    key = str(answer.get("id")).encode() if isinstance(answer, dict) else b""
    problem = listed_problem(node, key, answer)
    if problem is not None:
        raise NodeUnavailable(f"node {node} answered with a malformed session: {problem}")
    session: dict[str, Any] = answer
    return session
