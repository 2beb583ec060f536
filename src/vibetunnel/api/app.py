"""The app factory: one FastAPI app per server, built from the Config once.

app.state holds: config, manager (sessions), cluster (None without --redis), recordings,
security, tokens, refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

from vibetunnel import __version__
from vibetunnel.api import errors, host, ws
from vibetunnel.api.middleware import EdgeMiddleware
from vibetunnel.api.routes import auth, health, nodes, recordings, sessions
from vibetunnel.api.security import Security
from vibetunnel.auth import (
    OffLoop,
    RedisLink,
    RedisRefreshStore,
    RefreshStore,
    RefreshTokens,
    TokenService,
    load_or_create_secret,
)
from vibetunnel.config import Config
from vibetunnel.errors import VibeTunnelError
from vibetunnel.files import private_dir
from vibetunnel.keeper.client import Attachment, KeeperLink
from vibetunnel.pty.manager import SessionManager
from vibetunnel.recording.recorder import Recordings

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PRUNE_EVERY = 86400.0
BUDGET_EVERY = 60.0
"""Seconds between two checks of the recordings budget while the server runs."""

log = logging.getLogger("vibetunnel")


def create_app(
    config: Config, keeper: Attachment | None = None, *, keep_sessions: bool = False
) -> FastAPI:
    """The app. With `keep_sessions` or a `keeper` (attached before: keeper.client.find),
    programs are spawned by the keeper and outlive this server: the keeper attached, or,
    with none, one started at the first spawn. Else they are this process's children."""
    private_dir(config.home)
    tokens = TokenService(load_or_create_secret(config.home)) if config.auth else None
    # With --redis, rate limits and refresh tokens are shared by every node (docs/security.md).
    shared = RedisLink(config.redis_url) if config.redis_url else None
    security = Security(config, tokens, shared)
    refresh: RefreshTokens | None = None
    if config.auth:
        refresh = (
            RedisRefreshStore(shared)
            if shared is not None
            else OffLoop(RefreshStore(config.home / "refresh.json"))
        )
    # After attaching: the keeper has stopped writing, so the index may repair the files.
    recs = Recordings(
        config.recordings_dir,
        max_bytes=config.max_recording_size,
        budget=config.recordings_budget,
    )
    manager = SessionManager(
        max_sessions=config.max_sessions,
        record_input=config.record_input,
        recorders=recs if config.record else None,
        node=config.node,
    )
    cluster = None
    if shared is not None:
        from vibetunnel.cluster.node import Cluster

        cluster = Cluster(shared, config.node, config.cluster_ttl, manager)

    def kept(sessions: list[tuple[dict[str, Any], int | None]]) -> None:
        for session in manager.adopt_all(sessions):
            if not session.running and config.record:
                exited_at = session.exited_at or time.time()
                recs.ended_meanwhile(session.id, session.exit_code, exited_at)

    link = KeeperLink(
        config.home,
        manager.kept_exit,
        manager.keeper_lost,
        kept,
        config.max_recording_size,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if keeper is not None:
            link.take(keeper)
        if keeper is not None or keep_sessions:
            manager.spawner = link
        if cluster is not None:
            await cluster.start()
        tasks = [asyncio.create_task(_budget_kept(recs))]  # after adopting kept sessions
        if config.keep_recordings_days is not None:
            tasks.append(asyncio.create_task(_prune_daily(recs, config.keep_recordings_days)))
        yield
        for task in tasks:
            task.cancel()
        if cluster is not None:
            await cluster.stop()
        if shared is not None:
            await shared.close()

    app = FastAPI(
        title="VibeTunnel",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.manager = manager
    app.state.recordings = recs
    app.state.security = security
    app.state.tokens = tokens
    app.state.cluster = cluster
    app.state.refresh = refresh
    app.state.started = time.monotonic()
    app.state.kept = 0

    async def shutdown() -> None:
        if cluster is not None:
            cluster.shutdown_clients()
        handoff = manager.shutdown()
        await manager.clients_gone(2.0)  # each closed with 1001 before uvicorn closes the rest
        await manager.end_local()
        await asyncio.to_thread(recs.close)  # on disk before the keeper appends
        await link.leave(handoff)
        app.state.kept = len(handoff)
        if cluster is not None:
            await cluster.stop()  # offline at once; the sessions stay listed

    app.state.shutdown = shutdown
    errors.install(app)
    guarded = [Depends(security.require)]
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(sessions.router, dependencies=guarded)
    app.include_router(recordings.router, dependencies=guarded)
    app.include_router(nodes.router, dependencies=guarded)

    @app.websocket("/api/sessions/{session_id}/ws")
    async def session_socket(websocket: WebSocket, session_id: str) -> None:
        await ws.serve_socket(
            websocket,
            session_id,
            manager,
            security.authorize_ws,
            config.ws_idle_timeout,
            cluster.watch if cluster is not None else None,
        )

    @app.websocket("/api/host")
    async def host_socket(websocket: WebSocket) -> None:
        """vt's link: a PTY running in the user's own terminal, shared through this server."""
        try:
            await ws.admit(websocket, security.authorize_ws, None)
        except VibeTunnelError as exc:
            await ws.refuse(websocket, exc)
            return
        await host.serve_host(websocket, manager, recs)

    _mount_web(app)
    app.add_middleware(EdgeMiddleware, gate=security.gate)
    return app


async def _budget_kept(recs: Recordings) -> None:
    """Check the recordings budget now and every BUDGET_EVERY seconds: running sessions'
    recordings grow (and each end checks it too). The check runs on the index worker."""
    while True:
        recs.check_budget()
        await asyncio.sleep(BUDGET_EVERY)


async def _prune_daily(recs: Recordings, days: float) -> None:
    while True:
        try:
            removed = await asyncio.to_thread(recs.index.prune, days)
        except OSError as exc:  # a folder that cannot be written: try again tomorrow
            log.warning("recordings not pruned: %s", exc)
        else:
            if removed:
                log.warning("removed %d recordings older than %g days", len(removed), days)
        await asyncio.sleep(PRUNE_EVERY)


def _mount_web(app: FastAPI) -> None:
    """The web app: one page for every front-end route, its assets under /assets, and its
    not-found page (status 404) for any other page a browser asks for."""
    if (WEB_DIR / "assets").is_dir():
        # Not built (a checkout without npm): no route, so /assets/... is a 404, not the
        # 500 of a StaticFiles whose folder is missing.
        app.mount("/assets", StaticFiles(directory=WEB_DIR / "assets"), name="assets")
    index = WEB_DIR / "index.html"

    async def page(request: Request) -> Response:
        if not index.exists():
            return PlainTextResponse(
                "The web app is not built: install the package (pip install .) with npm present.",
                status_code=503,
            )
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    for path in ("/", "/sessions/{session_id}", "/recordings", "/login"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    async def not_found(request: Request, exc: Exception) -> Response:
        # The app reads the path and shows its not-found page; API paths and assets keep the
        # JSON error body, and so does any method but GET and HEAD.
        path = request.url.path
        is_page = not any(path == p or path.startswith(p + "/") for p in ("/api", "/assets"))
        if request.method in ("GET", "HEAD") and is_page and index.exists():
            return FileResponse(index, status_code=404, headers={"Cache-Control": "no-cache"})
        return await errors.http_error(request, exc)

    app.add_exception_handler(404, not_found)
