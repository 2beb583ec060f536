"""The server's lifecycle: bind, say where we listen, serve, and shut down cleanly.

Shutdown order (SIGINT or SIGTERM): stop accepting, close every WebSocket with 1001, end
every program (SIGHUP first), flush recordings, then let uvicorn drain what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI

from vibetunnel.api.wsconn import BoundedWebSocketProtocol
from vibetunnel.config import Config

log = logging.getLogger("vibetunnel")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], Awaitable[None]]):
        super().__init__(config)
        self._before_shutdown = before_shutdown

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal after shutting down; we exit 0 after a clean shutdown.
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        try:
            await asyncio.wait_for(self._before_shutdown(), timeout=10)
        except TimeoutError:
            log.error("shutdown: programs did not end in time")
        await super().shutdown(sockets)


async def serve(
    config: Config,
    app: FastAPI,
    on_listening: Callable[[str], None],
    before_shutdown: Callable[[], Awaitable[None]],
) -> None:
    """Serve `app` until SIGINT or SIGTERM."""
    sock = bind(config.host, config.port)
    uv_config = uvicorn.Config(
        app,
        http="httptools",
        ws=BoundedWebSocketProtocol,  # websockets-sansio, bounded for peers that do not read
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(uv_config, before_shutdown)
    on_listening(url_of(sock))
    sys.stdout.flush()
    await server.serve(sockets=[sock])
