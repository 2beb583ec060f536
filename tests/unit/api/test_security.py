"""The access policy's tables match the routes they name."""

from __future__ import annotations

from fastapi.routing import APIRoute

from vibetunnel.api.routes import recordings, sessions
from vibetunnel.api.security import SHARE_ROUTES


def test_every_route_a_share_link_may_use_exists() -> None:
    routes = {
        (method, route.path)
        for router in (sessions.router, recordings.router)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert SHARE_ROUTES.issubset(routes)
    # DELETE is never among them: a share link must not end what it was shown.
    assert not any(method == "DELETE" for method, _ in SHARE_ROUTES)
