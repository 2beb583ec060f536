"""GET /api/health: no auth, for monitors and for clients to find the server."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from vibetunnel import __version__
from vibetunnel.api.models import Health

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health)
async def health(request: Request) -> dict[str, Any]:
    cluster = request.app.state.cluster
    return {
        "status": "ok",
        "version": __version__,
        "uptime": round(time.monotonic() - request.app.state.started, 3),
        "sessions": len(request.app.state.manager.list()),
        "node": request.app.state.config.node,
        "cluster": None if cluster is None else "degraded" if cluster.degraded else "ok",
    }
