"""`Cluster`: this node in the cluster, as the API uses it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from vibetunnel.auth.redislink import RedisLink
from vibetunnel.cluster.gateway import Gateway
from vibetunnel.cluster.owner import Owner
from vibetunnel.errors import BadRequest
from vibetunnel.pty.manager import SessionManager
from vibetunnel.pty.session import Session


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
        self._tasks = await self.owner.start() + self.gateway.start()

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
        """Another node's session; SessionNotFound if no node has it."""
        return self.gateway.session(session_id)

    def nodes(self) -> list[dict[str, Any]]:
        """Every other node: {name, online, sessions, lastSeen}."""
        return self.gateway.node_list()

    async def order(self, session_id: str, order: dict[str, Any]) -> Any:
        """Carry out `order` on the node that runs the session; its answer or its error."""
        node = self.session(session_id)["node"]
        answer = await self.gateway.call(node, {**order, "id": session_id})
        if order["op"] == "delete":
            self.gateway.learn(session_id, None)
        elif isinstance(answer, dict):
            self.gateway.learn(session_id, answer)
        return answer

    async def create(self, node: str, options: dict[str, Any]) -> Any:
        if node not in self.gateway.nodes:
            raise BadRequest(f"node: no such node: {node}")
        created = await self.gateway.call(node, {"op": "create", "options": options})
        self.gateway.learn(created["id"], created)
        return created

    def watch(self, session_id: str) -> contextlib.AbstractAsyncContextManager[Session]:
        return self.gateway.watch(session_id)
