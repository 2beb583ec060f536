"""Refresh tokens in the shared Redis: RefreshStore's rules, the same on every node.

A token spent on one node is spent on all of them, and its reuse anywhere revokes its family
everywhere. Keys (`vt:refresh:` then):

    token:<sha256 hex>   hash {family, sub, spent "0"|"1", key?}; expires when the token
                         does (`key`: the device key a browser's family is bound to, proof.py)
    family:<family id>   set of the family's token hashes; expires with its newest token
    once:<jti>           "1": a one-time login token already used; expires with that token

Only SHA-256 hashes of refresh tokens reach Redis, never a token. Expiry is Redis's own (the
keys' TTLs): an expired token is an unknown one. A spent token stays, marked, until it would
have expired, so that its replay is recognised.

Rotation and revocation are Lua scripts, so each runs whole with nothing in between: of two
nodes rotating the same token at once, exactly one gets the next token; the other sees a spent
token, which revokes the family (as a replay would). The scripts reach keys they do not declare
(the family's), so this needs one Redis, not a Redis Cluster.

When Redis is unreachable every call raises ClusterUnavailable (503): a node cannot tell
whether a token was spent elsewhere, and must not guess.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from ..errors import AuthError
from .redislink import RedisLink
from .refresh import REFRESH_TOKEN_TTL, token_hash

PREFIX = "vt:refresh:"
logger = logging.getLogger(__name__)

_DROP_FAMILY = """
local function drop_family(prefix, family)
  local members_key = prefix .. 'family:' .. family
  for _, member in ipairs(redis.call('SMEMBERS', members_key)) do
    redis.call('DEL', prefix .. 'token:' .. member)
  end
  redis.call('DEL', members_key)
end
"""

_ROTATE = (
    _DROP_FAMILY
    + """
-- KEYS[1]: the presented token's key. ARGV: prefix, the next token's hash, its TTL (ms).
local prefix = ARGV[1]
local entry = redis.call('HMGET', KEYS[1], 'family', 'sub', 'spent', 'key')
local family, sub, spent, key = entry[1], entry[2], entry[3], entry[4]
if not family then
  return {'unknown', ''}
end
if spent == '1' then
  drop_family(prefix, family)
  return {'reused', sub}
end
redis.call('HSET', KEYS[1], 'spent', '1')  -- keeps its TTL: spent, but known until it expires
local next_key = prefix .. 'token:' .. ARGV[2]
redis.call('HSET', next_key, 'family', family, 'sub', sub, 'spent', '0')
if key then
  redis.call('HSET', next_key, 'key', key)  -- the family stays bound to its device key
end
redis.call('PEXPIRE', next_key, ARGV[3])
local members_key = prefix .. 'family:' .. family
redis.call('SADD', members_key, ARGV[2])
redis.call('PEXPIRE', members_key, ARGV[3])
return {'ok', sub}
"""
)

_REVOKE = (
    _DROP_FAMILY
    + """
-- KEYS[1]: the presented token's key. ARGV: prefix.
local family = redis.call('HGET', KEYS[1], 'family')
if not family then
  return 0
end
drop_family(ARGV[1], family)
return 1
"""
)


class RedisRefreshStore:
    """RefreshTokens (refresh.py) kept in the shared Redis; see the module docstring."""

    def __init__(
        self,
        link: RedisLink,
        *,
        ttl: float = REFRESH_TOKEN_TTL,
        clock: Callable[[], float] = time.time,
        prefix: str = PREFIX,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._link = link
        self._ttl_ms = max(1, round(ttl * 1000))
        self._clock = clock
        self._prefix = prefix
        self._rotate = link.client.register_script(_ROTATE)
        self._revoke = link.client.register_script(_REVOKE)

    def _token_key(self, token: str) -> str:
        return f"{self._prefix}token:{token_hash(token)}"

    async def issue(self, sub: str, key: str | None = None) -> str:
        """Start a new family for `sub` and return its first token; `key`, the device key
        the family is bound to (None: a family any holder of its token may use)."""
        if not sub:
            raise ValueError("sub must not be empty")
        token = secrets.token_urlsafe(32)
        family = secrets.token_urlsafe(16)
        name = self._token_key(token)
        members = f"{self._prefix}family:{family}"

        async def write() -> None:
            async with self._link.client.pipeline(transaction=True) as pipe:
                pipe.hset(name, mapping={"family": family, "sub": sub, "spent": "0"})
                if key is not None:
                    pipe.hset(name, "key", key)
                pipe.pexpire(name, self._ttl_ms)
                pipe.sadd(members, token_hash(token))
                pipe.pexpire(members, self._ttl_ms)
                await pipe.execute()

        await self._link.run(write)
        return token

    async def bound_key(self, token: str) -> str | None:
        """The device key of `token`'s family (spent tokens included); None when the family
        has none or the token is unknown."""

        async def run() -> Any:
            return await self._link.client.hget(self._token_key(token), "key")

        value = await self._link.run(run)
        return None if value is None else bytes(value).decode("utf-8")

    async def rotate(self, token: str) -> tuple[str, str]:
        """Spend `token` and return `(sub, next token of its family)`.

        Raises AuthError for an unknown or expired token, and for a token already spent (on
        any node), in which case its whole family is revoked first."""
        new_token = secrets.token_urlsafe(32)
        args: list[str | int] = [self._prefix, token_hash(new_token), self._ttl_ms]

        async def run() -> Any:
            return await self._rotate(keys=[self._token_key(token)], args=args)

        outcome, sub = (part.decode("utf-8") for part in await self._link.run(run))
        if outcome == "unknown":
            raise AuthError("unknown or expired refresh token")
        if outcome == "reused":
            logger.warning("refresh token reused: family of %r revoked", sub)
            raise AuthError("refresh token reused; session revoked")
        return sub, new_token

    async def revoke(self, token: str) -> None:
        """Revoke the whole family of `token` (logout). An unknown token is a no-op."""

        async def run() -> Any:
            return await self._revoke(keys=[self._token_key(token)], args=[self._prefix])

        await self._link.run(run)

    async def use_once(self, key: str, exp: float) -> bool:
        """Record `key` (a login token's jti) as used until `exp`; False if it already was,
        on any node."""
        ttl_ms = max(1, round((exp - self._clock()) * 1000))

        async def run() -> Any:
            return await self._link.client.set(f"{self._prefix}once:{key}", "1", nx=True, px=ttl_ms)

        return bool(await self._link.run(run))
