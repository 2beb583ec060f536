"""Authentication: the signing secret, JWTs, refresh tokens, the password, rate limits.

Pure or file-local parts only; the HTTP routes and middleware live in `vibetunnel.api`.
"""

from __future__ import annotations

from .passwords import check_password, password_configured, set_password
from .ratelimit import FAILED_LOGINS_PER_MINUTE, RateLimiter, RateState
from .refresh import REFRESH_TOKEN_TTL, RefreshStore
from .secret import SecretError, load_or_create_secret
from .tokens import (
    ACCESS_TOKEN_TTL,
    LOGIN_TOKEN_TTL,
    MAX_TOKEN_TTL,
    Claims,
    TokenService,
    parse_duration,
    scope_allows,
)

__all__ = [
    "ACCESS_TOKEN_TTL",
    "FAILED_LOGINS_PER_MINUTE",
    "LOGIN_TOKEN_TTL",
    "MAX_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "Claims",
    "RateLimiter",
    "RateState",
    "RefreshStore",
    "SecretError",
    "TokenService",
    "check_password",
    "load_or_create_secret",
    "parse_duration",
    "password_configured",
    "scope_allows",
    "set_password",
]
