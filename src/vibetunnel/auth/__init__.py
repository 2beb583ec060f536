"""Authentication: the signing secret, JWTs, refresh tokens, the password, rate limits.

Pure or file-local parts, and with `serve --redis` their shared counterparts (redislink.py,
redisrefresh.py, `SharedRateLimiter`), which import `redis` only when used. The HTTP routes
and middleware live in `vibetunnel.api`.
"""

from __future__ import annotations

from .passwords import check_password, password_configured, set_password
from .ratelimit import (
    FAILED_LOGINS_PER_MINUTE,
    Limiter,
    RateLimiter,
    RateState,
    SharedRateLimiter,
)
from .redislink import ClusterUnavailable, RedisLink
from .redisrefresh import RedisRefreshStore
from .refresh import REFRESH_TOKEN_TTL, OffLoop, RefreshStore, RefreshTokens
from .secret import SecretError, load_or_create_secret
from .tokens import (
    ACCESS_TOKEN_TTL,
    LOGIN_TOKEN_TTL,
    MAX_TOKEN_TTL,
    NONCE_TTL,
    Claims,
    TokenService,
    parse_duration,
    scope_allows,
    token_key,
)

__all__ = [
    "ACCESS_TOKEN_TTL",
    "FAILED_LOGINS_PER_MINUTE",
    "LOGIN_TOKEN_TTL",
    "MAX_TOKEN_TTL",
    "NONCE_TTL",
    "REFRESH_TOKEN_TTL",
    "Claims",
    "ClusterUnavailable",
    "Limiter",
    "OffLoop",
    "RateLimiter",
    "RateState",
    "RedisLink",
    "RedisRefreshStore",
    "RefreshStore",
    "RefreshTokens",
    "SecretError",
    "SharedRateLimiter",
    "TokenService",
    "check_password",
    "load_or_create_secret",
    "parse_duration",
    "password_configured",
    "scope_allows",
    "set_password",
    "token_key",
]
