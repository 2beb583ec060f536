"""The app factory: one FastAPI app per server, holding the session manager and the policies."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

from vibetunnel import __version__
from vibetunnel.api import errors, ws
from vibetunnel.api.middleware import EdgeMiddleware, Gate
from vibetunnel.api.routes import health, sessions
from vibetunnel.config import Config
from vibetunnel.pty.manager import SessionManager

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(
    config: Config,
    manager: SessionManager | None = None,
    authorize: ws.Authorizer | None = None,
    gate: Gate | None = None,
) -> FastAPI:
    app = FastAPI(
        title="VibeTunnel",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.config = config
    app.state.manager = manager or SessionManager(
        max_sessions=config.max_sessions, record_input=config.record_input
    )
    app.state.started = time.monotonic()
    errors.install(app)
    app.include_router(health.router)
    app.include_router(sessions.router)

    @app.websocket("/api/sessions/{session_id}/ws")
    async def session_socket(websocket: WebSocket, session_id: str) -> None:
        await ws.serve_socket(
            websocket, session_id, app.state.manager, authorize, config.ws_idle_timeout
        )

    _mount_web(app)
    app.add_middleware(EdgeMiddleware, gate=gate)
    return app


def _mount_web(app: FastAPI) -> None:
    """The web app: one page for every front-end route, its assets under /assets."""
    app.mount("/assets", StaticFiles(directory=WEB_DIR / "assets", check_dir=False), name="assets")

    async def page(request: Request) -> Response:
        index = WEB_DIR / "index.html"
        if not index.exists():
            return PlainTextResponse(
                "The web app is not built: install the package (pip install .) with npm present.",
                status_code=503,
            )
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    for path in ("/", "/sessions/{session_id}", "/recordings", "/login"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
