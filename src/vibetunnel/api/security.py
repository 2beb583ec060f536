"""Who may do what: bearer tokens and their scope, rate limits, Host and Origin checks.

With `--redis`, both rate limits are counted in the shared Redis (auth.SharedRateLimiter), so
that switching nodes dodges nothing; while it is unreachable, in this node's memory.

The edge middleware calls `gate` first: it reads the token once (its subject keys the rate
limit), refuses a request for a protected path that has no valid token before its body is
read, and leaves the result in the request state, where `require` (HTTP routes: the token's
scope) and `authorize_ws` (WebSockets) find it. Before all that it refuses the refresh cookie
sent by a page of another origin (`foreign_cookie`): browsers send it to every port of the host.

A share link (a token with `sessionId`) is a client of its own: its rate-limit bucket is
keyed by the token (a hash of it: auth.token_key), not by its owner's subject, and its
requests and WebSockets are counted apart from their address, at most SHARE_CONNECTIONS
open at once (the connection's Seat, api/peers.py). So a link, however busy, cannot spend
its owner's budget nor take the owner's connection slots.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import Scope
from starlette.websockets import WebSocket

from vibetunnel.api.peers import SEAT, Seat, peer_key
from vibetunnel.auth import (
    FAILED_LOGINS_PER_MINUTE,
    Claims,
    Limiter,
    RateLimiter,
    RedisLink,
    SharedRateLimiter,
    TokenService,
    token_key,
)
from vibetunnel.auth.tokens import scope_allows
from vibetunnel.config import Config
from vibetunnel.errors import (
    AuthError,
    Forbidden,
    TooManyRequests,
    UnsupportedMediaType,
    VibeTunnelError,
)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SCOPED_PARAMS = ("session_id", "recording_id")
SHARE_ROUTES = frozenset(
    {
        ("GET", "/api/sessions/{session_id}"),
        ("GET", "/api/sessions/{session_id}/events"),
        ("POST", "/api/sessions/{session_id}/input"),
        ("POST", "/api/sessions/{session_id}/resize"),
        ("GET", "/api/recordings/{recording_id}"),
    }
)
"""What a share token (`sessionId`) may do over HTTP, besides opening its WebSocket: read,
type into and resize its session, fetch its recording. A list of what is allowed, so a
route added later is closed to share links until it is added here."""
REFRESH_COOKIE = "vibetunnel_refresh"
"""The cookie that holds a browser's refresh token (api/routes/auth.py), Path=/api/auth."""
SHARE_CONNECTIONS = 16
"""Connections one share link may hold open at once (requests being served, WebSockets,
event streams), apart from its address's cap: a few viewers' tabs, each a socket, a stream
and a request or two. Never more than `--max-connections-per-address`."""
OPEN_PATHS = ("/api/health", "/api/openapi.json")
OPEN_PREFIXES = ("/api/auth/",)
"""Under /api, what answers without a token. Pages and assets (outside /api) need none."""


FORM_METHODS = ("POST", "PUT", "PATCH")
"""Methods that carry a state-changing body. A cross-site page can send POST (an HTML form,
or fetch in no-cors mode) but never PUT, PATCH or DELETE without a CORS preflight, which
this server never grants; PUT and PATCH are here in case a route ever takes them."""


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type is JSON (`application/json`, parameters allowed): a type no
    cross-site form or no-cors fetch can send."""
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def needs_token(path: str) -> bool:
    """Whether `path` is refused without a valid token (when auth is on)."""
    return path.startswith("/api/") and not (path in OPEN_PATHS or path.startswith(OPEN_PREFIXES))


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_key(scope: Scope) -> str:
    """The client of a request as the limits count it: its address (uvicorn put the one a
    `--trusted-proxy` forwarded in `client`), every loopback address one client."""
    client = scope.get("client")
    return peer_key(client[0] if client else None)


def host_name(value: str) -> str:
    """The host part of a Host header (`[::1]:4020` -> `::1`); "" when it has none."""
    try:
        return urlsplit("//" + value).hostname or ""
    except ValueError:  # an unclosed "[": no host at all
        return ""


def bearer_token(headers: Headers, query: bytes) -> str | None:
    """The token from `Authorization: Bearer` or, for WebSockets and share links, `?token=`."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    values = parse_qs(query.decode("latin-1")).get("token")
    return values[0] if values else None


def foreign_cookie(scope: Scope, headers: Headers) -> bool:
    """Whether a request carries the refresh cookie and an `Origin` that is not this server:
    a page of another origin, which may well be on this host (cookies ignore the port)."""
    origin = headers.get("origin")
    if origin is None or not scope["path"].startswith("/api/auth/"):
        return False
    if REFRESH_COOKIE not in cookie_parser(headers.get("cookie", "")):
        return False
    return _netloc(origin) != headers.get("host")


def _netloc(url: str) -> str | None:
    try:
        return urlsplit(url).netloc
    except ValueError:  # not a URL: matches no Host
        return None


class Security:
    """The server's access policy, built once from the Config."""

    def __init__(
        self, config: Config, tokens: TokenService | None, shared: RedisLink | None = None
    ) -> None:
        self.auth = config.auth
        self.tokens = tokens
        self.guard_host = not config.auth and is_loopback(config.host)
        self.share_connections = min(SHARE_CONNECTIONS, config.max_connections_per_address)
        self.limiter: Limiter
        self.failed_logins: Limiter
        if shared is None:
            self.limiter = RateLimiter(config.rate_limit)
            self.failed_logins = RateLimiter(FAILED_LOGINS_PER_MINUTE, "logins")
        else:
            self.limiter = SharedRateLimiter(config.rate_limit, shared)
            self.failed_logins = SharedRateLimiter(FAILED_LOGINS_PER_MINUTE, shared, "logins")

    # -- the edge ---------------------------------------------------------------------------

    async def gate(
        self, scope: Scope, headers: Headers
    ) -> tuple[VibeTunnelError | None, dict[str, str]]:
        state: dict[str, Any] = scope["state"]
        claims, token = self._read_token(state, headers, scope.get("query_string", b""))
        share = claims is not None and claims.session_id is not None
        if claims is None:
            key = f"addr:{client_key(scope)}"
        elif share:  # its own budget, never its owner's
            key = f"share:{token_key(token)}"
        else:
            key = f"sub:{claims.sub}"
        if scope["path"].startswith("/api/"):
            allowed, rate = await self.limiter.hit(key)
        else:  # pages and assets: shown the budget, not charged for it
            allowed, rate = await self.limiter.peek(key)
        refusal: VibeTunnelError | None = None
        if foreign_cookie(scope, headers):
            refusal = Forbidden("the sign-in cookie is refused from a page of another origin")
        elif self.guard_host and not is_loopback(host_name(headers.get("host", ""))):
            # Without auth, only loopback names: a DNS-rebinding page gets nothing.
            refusal = Forbidden("this server only answers to localhost (it runs without auth)")
        elif (
            not self.auth
            and scope["type"] == "http"
            and scope["method"] in FORM_METHODS
            and scope["path"].startswith("/api/")
            and not is_json(headers.get("content-type"))
        ):
            # Without a token to check, JSON is what keeps a cross-site form from starting a
            # shell, even one with an empty body.
            refusal = UnsupportedMediaType(
                "send JSON with Content-Type: application/json (this server runs without auth)"
            )
        elif not allowed:
            refusal = TooManyRequests(
                f"rate limit of {rate.limit} requests a minute reached",
                retry_after=rate.retry_after(),
            )
        elif share and not self._seat(scope, key):
            refusal = TooManyRequests(
                f"a share link may hold {self.share_connections} connections open at once; "
                "close one first"
            )
        elif self.tokens is not None and claims is None and needs_token(scope["path"]):
            # Here, before the app reads a byte of the body: a client without a valid token
            # costs the server its socket and no more.
            refusal = state["auth_error"]
        return refusal, rate.headers()

    def _seat(self, scope: Scope, client: str) -> bool:
        """Count this request's connection as `client`'s (a share link's): False when that
        client has all its connections busy. Without a seat (a test transport), True."""
        seat: Seat | None = scope.get("extensions", {}).get(SEAT)
        return seat is None or seat.count_as(client, self.share_connections)

    def _read_token(
        self, state: dict[str, Any], headers: Headers, query: bytes
    ) -> tuple[Claims | None, str]:
        """The token's claims (None: none, or not valid) and the token as sent."""
        state["claims"] = None
        state["auth_error"] = None
        if self.tokens is None:
            return None, ""
        token = bearer_token(headers, query)
        if token is None:
            state["auth_error"] = AuthError("missing token: send Authorization: Bearer <token>")
            return None, ""
        try:
            claims = self.tokens.verify(token)
        except AuthError as exc:
            state["auth_error"] = exc
            return None, token
        state["claims"] = claims
        return claims, token

    # -- HTTP routes ------------------------------------------------------------------------

    async def require(self, request: Request) -> Claims | None:
        """Route dependency: a valid token, and one whose scope covers this resource."""
        if not self.auth:
            return None
        claims: Claims | None = request.state.claims
        if claims is None:
            raise request.state.auth_error or AuthError("missing token")
        if claims.read_only and request.method not in ("GET", "HEAD"):
            raise Forbidden("this token is read-only")
        if claims.session_id is not None:
            target = next(
                (request.path_params[p] for p in SCOPED_PARAMS if p in request.path_params), None
            )
            if target is None or not scope_allows(claims, target):
                raise Forbidden("this token opens one session only")
            method = "GET" if request.method == "HEAD" else request.method
            route = getattr(request.scope.get("route"), "path", None)
            if (method, route) not in SHARE_ROUTES:
                raise Forbidden("a share link may watch, type and resize, not this")
        return claims

    # -- WebSockets -------------------------------------------------------------------------

    def check_origin(self, ws: WebSocket) -> None:
        """Browsers send Origin; one that is not this server's is a cross-site page."""
        origin = ws.headers.get("origin")
        if origin and _netloc(origin) != ws.headers.get("host"):
            raise Forbidden("cross-origin WebSocket refused")

    async def authorize_ws(self, ws: WebSocket, session_id: str | None) -> bool:
        """Raise AuthError or Forbidden (closed with 1008) unless the token opens this socket.

        Returns whether the client may type and resize (False for a read-only token).
        `session_id` None means a socket that needs a full token (vt's host link).
        """
        self.check_origin(ws)
        if not self.auth:
            return True
        state = ws.scope["state"]
        claims: Claims | None = state.get("claims")
        if claims is None:
            raise state.get("auth_error") or AuthError("missing token")
        if claims.session_id is not None and (
            session_id is None or not scope_allows(claims, session_id)
        ):
            raise Forbidden("token is for another session")
        if claims.read_only and session_id is None:
            raise Forbidden("this token is read-only")
        return not claims.read_only
