"""/api/auth: password login, the login URL's one-time token, refresh with rotation, logout.

Each sign-in also sets the refresh token as an HttpOnly, SameSite=Strict cookie scoped to
/api/auth: every tab of the browser then signs in with it (a refresh with no body), and no
page script can read it. Clients written from the spec keep sending the token in the body.

With `--redis` the tokens live in the shared Redis; while it is unreachable, sign-in, the login
URL, refresh and logout answer 503 `cluster_unavailable` (auth/redisrefresh.py says why).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StrictStr

from vibetunnel.api.models import Body, errors
from vibetunnel.api.security import Security, client_key
from vibetunnel.auth import (
    ACCESS_TOKEN_TTL,
    REFRESH_TOKEN_TTL,
    RefreshTokens,
    TokenService,
    check_password,
)
from vibetunnel.auth.user import user_name
from vibetunnel.errors import AuthError, BadRequest, TooManyRequests

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginBody(Body):
    username: StrictStr | None = None
    password: StrictStr = Field(min_length=1, max_length=1024)


class ExchangeBody(Body):
    loginToken: StrictStr = Field(min_length=1, max_length=4096)


class RefreshBody(Body):
    refreshToken: StrictStr = Field(min_length=1, max_length=512)


class TokenPair(BaseModel):
    accessToken: str
    refreshToken: str
    expiresIn: int
    tokenType: str = "Bearer"


class AuthConfig(BaseModel):
    authRequired: bool


def _parts(request: Request) -> tuple[Security, TokenService, RefreshTokens]:
    state = request.app.state
    if state.tokens is None or state.refresh is None:
        raise BadRequest("authentication is off on this server (--no-auth)")
    return state.security, state.tokens, state.refresh


COOKIE = "vibetunnel_refresh"
COOKIE_PATH = "/api/auth"


def _signed_in(
    request: Request, response: Response, tokens: TokenService, refresh_token: str, sub: str
) -> dict[str, Any]:
    """The token pair of the answer, and the refresh token as this browser's cookie."""
    response.set_cookie(
        COOKIE,
        refresh_token,
        max_age=int(REFRESH_TOKEN_TTL),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return _pair(tokens, refresh_token, sub)


def _refresh_token(request: Request, body: RefreshBody | None) -> str:
    """The body's refresh token, else the cookie's."""
    token = body.refreshToken if body is not None else request.cookies.get(COOKIE)
    if not token:
        raise AuthError("no refresh token: sign in")
    return token


def _pair(tokens: TokenService, refresh_token: str, sub: str) -> dict[str, Any]:
    return {
        "accessToken": tokens.issue(sub, ACCESS_TOKEN_TTL),
        "refreshToken": refresh_token,
        "expiresIn": int(ACCESS_TOKEN_TTL),
        "tokenType": "Bearer",
    }


@router.get("/config", response_model=AuthConfig)
async def auth_config(request: Request) -> dict[str, Any]:
    """Whether this server wants a token (the web app asks before showing the sign-in form)."""
    return {"authRequired": request.app.state.config.auth}


@router.post("/login", response_model=TokenPair, responses=errors(400, 401, 429, 503))
async def login(request: Request, response: Response, body: LoginBody) -> dict[str, Any]:
    """Password sign-in; at most 10 failures a minute per address."""
    security, tokens, refresh = _parts(request)
    address = client_key(request.scope)
    ok, rate = await security.failed_logins.peek(address)
    if not ok:
        raise TooManyRequests("too many failed logins; wait a minute", rate.retry_after())
    home = request.app.state.config.home
    # argon2 is slow on purpose: keep it off the event loop.
    if not await asyncio.to_thread(check_password, home, body.password, body.username):
        await security.failed_logins.hit(address)
        raise AuthError("wrong password (or none set: run `vibetunnel passwd`)")
    sub = user_name()
    return _signed_in(request, response, tokens, await refresh.issue(sub), sub)


@router.post("/exchange", response_model=TokenPair, responses=errors(400, 401, 503))
async def exchange(request: Request, response: Response, body: ExchangeBody) -> dict[str, Any]:
    """Trade the login URL's one-time token for access and refresh tokens."""
    _, tokens, refresh = _parts(request)
    claims = tokens.verify(body.loginToken, kind="login")
    if claims.jti is None or not await refresh.use_once(claims.jti, claims.exp):
        raise AuthError(
            "this login link was already used; run `vibetunnel login-link` for a new one"
        )
    new = await refresh.issue(claims.sub)
    return _signed_in(request, response, tokens, new, claims.sub)


@router.post("/refresh", response_model=TokenPair, responses=errors(400, 401, 503))
async def refresh_tokens(
    request: Request, response: Response, body: RefreshBody | None = None
) -> dict[str, Any]:
    """A new access token and a new refresh token; the old refresh token stops working.

    Without a body, the browser's refresh cookie is used (and replaced)."""
    _, tokens, refresh = _parts(request)
    old = _refresh_token(request, body)
    sub, new_refresh = await refresh.rotate(old)
    if body is None:
        return _signed_in(request, response, tokens, new_refresh, sub)
    return _pair(tokens, new_refresh, sub)


@router.post("/logout", status_code=204, responses=errors(400, 503))
async def logout(request: Request, body: RefreshBody | None = None) -> Response:
    """Revoke the refresh token's family (the body's, else the cookie's); drop the cookie."""
    _, _, refresh = _parts(request)
    await refresh.revoke(_refresh_token(request, body))
    done = Response(status_code=204)
    done.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return done
