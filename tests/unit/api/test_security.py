"""The access policy's tables match the routes they name."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from starlette.datastructures import Headers

from vibetunnel.api.routes import recordings, sessions
from vibetunnel.api.security import SHARE_ROUTES, foreign_cookie

COOKIE = "vibetunnel_refresh=t"


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


@pytest.mark.parametrize(
    ("path", "headers", "refused"),
    [
        ("/api/auth/refresh", {"cookie": "vibetunnel_refresh=t"}, False),  # no Origin: no page
        ("/api/auth/refresh", {"origin": "http://127.0.0.1:4020"}, False),  # no cookie
        ("/api/auth/refresh", {"origin": "http://127.0.0.1:4020", "cookie": COOKIE}, False),
        ("/api/auth/refresh", {"origin": "http://127.0.0.1:4021", "cookie": COOKIE}, True),
        ("/api/auth/logout", {"origin": "http://localhost:4020", "cookie": COOKIE}, True),
        ("/api/auth/nonce", {"origin": "null", "cookie": COOKIE}, True),
        ("/api/auth/login", {"origin": "http://[", "cookie": "a=b; " + COOKIE}, True),
        ("/api/auth/refresh", {"origin": "http://127.0.0.1:4021", "cookie": "other=t"}, False),
        ("/api/sessions", {"origin": "http://127.0.0.1:4021", "cookie": COOKIE}, False),
    ],
)
def test_the_refresh_cookie_from_another_origin(
    path: str, headers: dict[str, str], refused: bool
) -> None:
    scope = {"type": "http", "path": path}
    sent = Headers({"host": "127.0.0.1:4020", **headers})
    assert foreign_cookie(scope, sent) is refused
