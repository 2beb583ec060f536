"""GET /api/nodes: the cluster's nodes (docs/cluster.md); one, this server, without --redis."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from vibetunnel.api.models import NodeOut
from vibetunnel.protocol.times import iso

router = APIRouter(prefix="/api/nodes", tags=["nodes"])


@router.get("", response_model=list[NodeOut])
async def list_nodes(request: Request) -> list[dict[str, Any]]:
    """Every node, this one first: online while it heart-beats, with its session count."""
    manager = request.app.state.manager
    own = {
        "name": manager.node,
        "online": True,
        "sessions": len(manager.list()),
        "lastSeen": iso(time.time()),
    }
    cluster = request.app.state.cluster
    return [own, *(cluster.nodes() if cluster is not None else [])]
