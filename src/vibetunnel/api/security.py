"""Who may do what: bearer tokens and their scope, rate limits, Host and Origin checks.

The edge middleware calls `gate` first: it reads the token once (its subject keys the rate
limit) and leaves the result in the request state, where `require` (HTTP routes) and
`authorize_ws` (WebSockets) find it.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import Scope
from starlette.websockets import WebSocket

from vibetunnel.auth import FAILED_LOGINS_PER_MINUTE, Claims, RateLimiter, TokenService
from vibetunnel.auth.tokens import scope_allows
from vibetunnel.config import Config
from vibetunnel.errors import AuthError, Forbidden, TooManyRequests, VibeTunnelError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SCOPED_PARAMS = ("session_id", "recording_id")
# Routes that answer without a token.
OPEN_PATHS = ("/api/health", "/api/auth/")


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def _netloc(url: str) -> str | None:
    try:
        return urlsplit(url).netloc
    except ValueError:  # not a URL: matches no Host
        return None


class Security:
    """The server's access policy, built once from the Config."""

    def __init__(self, config: Config, tokens: TokenService | None) -> None:
        self.auth = config.auth
        self.tokens = tokens
        self.guard_host = not config.auth and is_loopback(config.host)
        self.limiter = RateLimiter(config.rate_limit)
        self.failed_logins = RateLimiter(FAILED_LOGINS_PER_MINUTE)

    # -- the edge ---------------------------------------------------------------------------

    def gate(self, scope: Scope, headers: Headers) -> tuple[VibeTunnelError | None, dict[str, str]]:
        state: dict[str, Any] = scope["state"]
        claims = self._read_token(state, headers, scope.get("query_string", b""))
        client = scope.get("client")
        key = f"sub:{claims.sub}" if claims else f"addr:{client[0] if client else '-'}"
        if scope["path"].startswith("/api/"):
            allowed, rate = self.limiter.hit(key)
        else:  # pages and assets: shown the budget, not charged for it
            allowed, rate = self.limiter.peek(key)
        refusal: VibeTunnelError | None = None
        if self.guard_host and not is_loopback(host_name(headers.get("host", ""))):
            # Without auth, only loopback names: a DNS-rebinding page gets nothing.
            refusal = Forbidden("this server only answers to localhost (it runs without auth)")
        elif not allowed:
            refusal = TooManyRequests(
                f"rate limit of {rate.limit} requests a minute reached",
                retry_after=rate.retry_after(),
            )
        return refusal, rate.headers()

    def _read_token(self, state: dict[str, Any], headers: Headers, query: bytes) -> Claims | None:
        state["claims"] = None
        state["auth_error"] = None
        if self.tokens is None:
            return None
        token = bearer_token(headers, query)
        if token is None:
            state["auth_error"] = AuthError("missing token: send Authorization: Bearer <token>")
            return None
        try:
            claims = self.tokens.verify(token)
        except AuthError as exc:
            state["auth_error"] = exc
            return None
        state["claims"] = claims
        return claims

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
