"""/api/auth: password login, the login URL's one-time token, refresh with rotation, logout.

A browser's sign-in is bound to its device key (auth/proof.py): the web app sends `deviceKey`
at sign-in, and only then is the refresh token also set as an HttpOnly, SameSite=Strict cookie
scoped to /api/auth, which every tab of the browser signs in with. Browsers send that cookie to
every port of the host, so it is worth nothing alone: each use of a key-bound family's token
(refresh, logout; by cookie or by body) needs a proof made with the key, checked before the
token is spent or its family revoked, and a cookie sent from a page of another origin is
refused before that (api/security.py). A sign-in without `deviceKey` (the spec's clients,
scripts) gets its tokens in the body only and uses them as before.

With `--redis` the tokens live in the shared Redis; while it is unreachable, sign-in, the login
URL, refresh and logout answer 503 `cluster_unavailable` (auth/redisrefresh.py says why).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Header, Request, Response
from pydantic import BaseModel, Field, StrictStr, field_validator

from vibetunnel.api.models import Body, errors
from vibetunnel.api.security import REFRESH_COOKIE, Security, client_key
from vibetunnel.auth import (
    ACCESS_TOKEN_TTL,
    NONCE_TTL,
    REFRESH_TOKEN_TTL,
    RefreshTokens,
    TokenService,
    check_password,
)
from vibetunnel.auth.proof import (
    NONCE_HEADER,
    PROOF_HEADER,
    check_proof,
    issue_nonce,
    parse_device_key,
)
from vibetunnel.auth.user import user_name
from vibetunnel.errors import AuthError, BadRequest, TooManyRequests

router = APIRouter(prefix="/api/auth", tags=["auth"])


class SignInBody(Body):
    deviceKey: StrictStr | None = None
    """base64url (no padding) of 32 random bytes: the key this browser's sign-in is bound to.
    Only a sign-in with one sets the refresh cookie."""

    @field_validator("deviceKey")
    @classmethod
    def _device_key(cls, value: str | None) -> str | None:
        return None if value is None else parse_device_key(value)


class LoginBody(SignInBody):
    username: StrictStr | None = None
    password: StrictStr = Field(min_length=1, max_length=1024)


class ExchangeBody(SignInBody):
    loginToken: StrictStr = Field(min_length=1, max_length=4096)


class RefreshBody(Body):
    refreshToken: StrictStr = Field(min_length=1, max_length=512)


class TokenPair(BaseModel):
    accessToken: str
    refreshToken: str
    expiresIn: int
    tokenType: str = "Bearer"


class Nonce(BaseModel):
    nonce: str
    """Sign `nonce + " " + purpose` with the device key (auth/proof.py)."""
    expiresIn: int


class AuthConfig(BaseModel):
    authRequired: bool


NonceHeader = Annotated[
    str | None,
    Header(
        alias=NONCE_HEADER,
        description="A nonce from POST /api/auth/nonce; needed for a key-bound sign-in.",
    ),
]
ProofHeader = Annotated[
    str | None,
    Header(
        alias=PROOF_HEADER,
        description='base64url(HMAC-SHA256(device key, nonce + " " + purpose)), purpose '
        '"refresh" or "logout"; needed for a key-bound sign-in.',
    ),
]
RefreshCookie = Annotated[
    str | None,
    Cookie(
        alias=REFRESH_COOKIE,
        description="The browser's refresh token, used when there is no body (with a proof).",
    ),
]


def _parts(request: Request) -> tuple[Security, TokenService, RefreshTokens]:
    state = request.app.state
    if state.tokens is None or state.refresh is None:
        raise BadRequest("authentication is off on this server (--no-auth)")
    return state.security, state.tokens, state.refresh


COOKIE_PATH = "/api/auth"


def _signed_in(
    request: Request, response: Response, tokens: TokenService, refresh_token: str, sub: str
) -> dict[str, Any]:
    """The token pair of the answer, and the refresh token as this browser's cookie (for a
    family bound to a device key only: the cookie reaches every port of the host)."""
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        max_age=int(REFRESH_TOKEN_TTL),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return _pair(tokens, refresh_token, sub)


async def _start(
    request: Request,
    response: Response,
    tokens: TokenService,
    refresh: RefreshTokens,
    sub: str,
    device_key: str | None,
) -> dict[str, Any]:
    """A new sign-in: its tokens, and the cookie when it is bound to a device key."""
    refresh_token = await refresh.issue(sub, device_key)
    if device_key is None:
        return _pair(tokens, refresh_token, sub)
    return _signed_in(request, response, tokens, refresh_token, sub)


async def _usable(
    refresh: RefreshTokens,
    tokens: TokenService,
    body: RefreshBody | None,
    cookie: str | None,
    proof: tuple[str | None, str | None],
    purpose: str,
) -> str:
    """The refresh token this request may spend or revoke for `purpose` (the body's, else the
    cookie's): raises AuthError, having changed nothing, when it may not."""
    token = body.refreshToken if body is not None else cookie
    if not token:
        raise AuthError("no refresh token: sign in")
    key = await refresh.bound_key(token)
    if key is not None:
        check_proof(tokens, key, proof[0], proof[1], purpose)
    elif body is None:
        # Only a key-bound sign-in sets the cookie; an older one, or a cookie planted by
        # hand, is refused whole rather than honoured without a proof.
        raise AuthError("this browser's sign-in is unknown, expired or not bound to a key: sign in")
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
    return await _start(request, response, tokens, refresh, user_name(), body.deviceKey)


@router.post("/exchange", response_model=TokenPair, responses=errors(400, 401, 503))
async def exchange(request: Request, response: Response, body: ExchangeBody) -> dict[str, Any]:
    """Trade the login URL's one-time token for access and refresh tokens."""
    _, tokens, refresh = _parts(request)
    claims = tokens.verify(body.loginToken, kind="login")
    if claims.jti is None or not await refresh.use_once(claims.jti, claims.exp):
        raise AuthError(
            "this login link was already used; run `vibetunnel login-link` for a new one"
        )
    return await _start(request, response, tokens, refresh, claims.sub, body.deviceKey)


@router.post("/nonce", response_model=Nonce, responses=errors(400))
async def nonce(request: Request) -> dict[str, Any]:
    """A fresh nonce for the proof a key-bound sign-in's refresh and logout need; it lives
    60 s and is good for nothing else (not an access token)."""
    _, tokens, _ = _parts(request)
    return {"nonce": issue_nonce(tokens), "expiresIn": int(NONCE_TTL)}


@router.post("/refresh", response_model=TokenPair, responses=errors(400, 401, 403, 503))
async def refresh_tokens(
    request: Request,
    response: Response,
    nonce: NonceHeader = None,
    proof: ProofHeader = None,
    cookie: RefreshCookie = None,
    body: RefreshBody | None = None,
) -> dict[str, Any]:
    """A new access token and a new refresh token; the old refresh token stops working.

    Without a body, the browser's refresh cookie is used (and replaced). A sign-in bound to a
    device key needs the proof headers, by cookie or by body; without them it is a 401 that
    spends nothing."""
    _, tokens, refresh = _parts(request)
    old = await _usable(refresh, tokens, body, cookie, (nonce, proof), "refresh")
    sub, new_refresh = await refresh.rotate(old)
    if body is None:
        return _signed_in(request, response, tokens, new_refresh, sub)
    return _pair(tokens, new_refresh, sub)


@router.post("/logout", status_code=204, responses=errors(400, 401, 403, 503))
async def logout(
    request: Request,
    nonce: NonceHeader = None,
    proof: ProofHeader = None,
    cookie: RefreshCookie = None,
    body: RefreshBody | None = None,
) -> Response:
    """Revoke the refresh token's family (the body's, else the cookie's); drop the cookie.

    A sign-in bound to a device key needs the proof headers; without them it is a 401 that
    revokes nothing. An unknown token in the body is revoked as a no-op (204)."""
    _, tokens, refresh = _parts(request)
    await refresh.revoke(await _usable(refresh, tokens, body, cookie, (nonce, proof), "logout"))
    done = Response(status_code=204)
    done.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return done
