"""Refresh tokens with rotation and families, persisted so they survive restarts.

Each login starts a family. Refreshing spends the presented token and returns the family's next
one. A spent token presented again means a copy leaked (or a client replayed it): the whole family
is revoked, its newest token included, so the thief and the user both have to log in again.

A family may be bound to a browser's device key (proof.py): each use of its tokens then needs
a proof made with that key, which the routes check before `rotate` or `revoke`. The key is kept
with each of the family's tokens (`bound_key` answers for spent ones too, so that a replay
without the proof changes nothing).

Only SHA-256 hashes of tokens are kept, in memory and on disk; a copy of the store file opens
nothing (it holds device keys, but no token to use them with). The same file records spent
one-time login token ids (`use_once`).

File format (JSON, mode 0600, replaced atomically on every change):

    {"version": 1,
     "tokens": {"<sha256 hex>": {"family": "...", "sub": "...", "exp": 1.0, "spent": false,
                                 "key": "<device key>"}},
     "once": {"<jti>": <exp>}}

`key` is present only for a family bound to a device key.

The routes use a store through `RefreshTokens` (coroutines): `OffLoop(RefreshStore(...))` on
one machine (its file writes on a worker thread), `RedisRefreshStore` (redisrefresh.py) for
servers sharing one Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import AuthError
from ..files import write_private
from ..protocol.values import is_number

REFRESH_TOKEN_TTL = 30 * 86400.0
"""Seconds a refresh token lives; each rotation starts a fresh term."""
_VERSION = 1

logger = logging.getLogger(__name__)


class RefreshTokens(Protocol):
    """A refresh-token store as the routes use it; the methods are RefreshStore's."""

    async def issue(self, sub: str, key: str | None = None) -> str: ...

    async def bound_key(self, token: str) -> str | None: ...

    async def rotate(self, token: str) -> tuple[str, str]: ...

    async def revoke(self, token: str) -> None: ...

    async def use_once(self, key: str, exp: float) -> bool: ...


class OffLoop:
    """A RefreshStore as RefreshTokens: each call on a worker thread, as it writes a file."""

    def __init__(self, store: RefreshStore) -> None:
        self.store = store

    async def issue(self, sub: str, key: str | None = None) -> str:
        return await asyncio.to_thread(self.store.issue, sub, key)

    async def bound_key(self, token: str) -> str | None:
        # No file, but the lock may be held by a thread writing one.
        return await asyncio.to_thread(self.store.bound_key, token)

    async def rotate(self, token: str) -> tuple[str, str]:
        return await asyncio.to_thread(self.store.rotate, token)

    async def revoke(self, token: str) -> None:
        await asyncio.to_thread(self.store.revoke, token)

    async def use_once(self, key: str, exp: float) -> bool:
        return await asyncio.to_thread(self.store.use_once, key, exp)


@dataclass
class _Entry:
    family: str
    sub: str
    exp: float
    spent: bool
    key: str | None = None


class RefreshStore:
    """Opaque refresh tokens, rotated on use, with reuse detection by family. Thread-safe."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        ttl: float = REFRESH_TOKEN_TTL,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self._path = path
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._tokens: dict[str, _Entry] = {}
        self._once: dict[str, float] = {}
        self._load()

    def issue(self, sub: str, key: str | None = None) -> str:
        """Start a new family for `sub` and return its first token; `key`, the device key
        the family is bound to (None: a family any holder of its token may use)."""
        if not sub:
            raise ValueError("sub must not be empty")
        with self._lock:
            token = self._add(secrets.token_urlsafe(16), sub, key)
            self._save()
        return token

    def bound_key(self, token: str) -> str | None:
        """The device key of `token`'s family; None when the family has none or the token
        is unknown. Spent and expired tokens still kept answer too: `rotate` revokes a family
        for the replay of one, which must need the key's proof as much as a use does."""
        with self._lock:
            entry = self._tokens.get(_hash(token))
            return None if entry is None else entry.key

    def rotate(self, token: str) -> tuple[str, str]:
        """Spend `token` and return `(sub, next token of its family)`.

        Raises AuthError for an unknown or expired token, and for a token already spent, in
        which case its whole family is revoked first.
        """
        with self._lock:
            digest = _hash(token)
            entry = self._tokens.get(digest)
            if entry is None:
                raise AuthError("unknown refresh token")
            if entry.spent:
                self._drop_family(entry.family)
                self._save()
                logger.warning("refresh token reused: family of %r revoked", entry.sub)
                raise AuthError("refresh token reused; session revoked")
            if self._clock() >= entry.exp:
                raise AuthError("refresh token expired")
            entry.spent = True
            new_token = self._add(entry.family, entry.sub, entry.key)
            self._save()
        return entry.sub, new_token

    def revoke(self, token: str) -> None:
        """Revoke the whole family of `token` (logout). An unknown token is a no-op."""
        with self._lock:
            entry = self._tokens.get(_hash(token))
            if entry is None:
                return
            self._drop_family(entry.family)
            self._save()

    def use_once(self, key: str, exp: float) -> bool:
        """Record `key` (a login token's jti) as used until `exp`; False if it already was."""
        with self._lock:
            self._prune()
            if key in self._once:
                return False
            self._once[key] = exp
            self._save()
        return True

    # Everything below runs with the lock held.

    def _add(self, family: str, sub: str, key: str | None) -> str:
        token = secrets.token_urlsafe(32)
        exp = self._clock() + self._ttl
        self._tokens[_hash(token)] = _Entry(family, sub, exp, spent=False, key=key)
        return token

    def _drop_family(self, family: str) -> None:
        for digest in [d for d, e in self._tokens.items() if e.family == family]:
            del self._tokens[digest]

    def _prune(self) -> None:
        # Spent tokens stay until they expire, so that a replay is recognised as one.
        now = self._clock()
        self._tokens = {d: e for d, e in self._tokens.items() if e.exp > now}
        self._once = {k: exp for k, exp in self._once.items() if exp > now}

    def _save(self) -> None:
        self._prune()
        data = {
            "version": _VERSION,
            "tokens": {d: _entry_json(e) for d, e in self._tokens.items()},
            "once": self._once,
        }
        try:
            write_private(self._path, json.dumps(data, indent=1).encode("utf-8"))
        except OSError as e:
            # The memory state stays authoritative while we run; only a restart loses it.
            logger.error("cannot save refresh tokens to %s: %s", self._path, e)

    def _load(self) -> None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            logger.warning("cannot read %s (%s): refresh tokens start empty", self._path, e)
            return
        try:
            tokens, once = _parse(json.loads(raw))
        except (ValueError, TypeError, KeyError) as e:
            logger.warning("damaged %s (%s): refresh tokens start empty", self._path, e)
            return
        self._tokens, self._once = tokens, once
        self._prune()


def token_hash(token: str) -> str:
    """What a store keeps of a token: its SHA-256, hex."""
    return _hash(token)


def _hash(token: str) -> str:
    # A dict lookup by hash: an attacker cannot steer the hash, so timing tells nothing.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _entry_json(entry: _Entry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "family": entry.family,
        "sub": entry.sub,
        "exp": entry.exp,
        "spent": entry.spent,
    }
    if entry.key is not None:
        item["key"] = entry.key
    return item


def _parse(data: Any) -> tuple[dict[str, _Entry], dict[str, float]]:
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        raise ValueError("not a version 1 store")
    raw_tokens, raw_once = data["tokens"], data["once"]
    if not isinstance(raw_tokens, dict) or not isinstance(raw_once, dict):
        raise ValueError("tokens and once must be objects")
    tokens: dict[str, _Entry] = {}
    for digest, item in raw_tokens.items():
        if not isinstance(item, dict):
            raise ValueError("a token entry is not an object")
        family, sub, exp, spent = item["family"], item["sub"], item["exp"], item["spent"]
        key = item.get("key")
        if not (
            isinstance(family, str)
            and isinstance(sub, str)
            and is_number(exp)
            and isinstance(spent, bool)
            and (key is None or isinstance(key, str))
        ):
            raise ValueError("a token entry has a wrong field type")
        tokens[digest] = _Entry(family, sub, float(exp), spent, key)
    once: dict[str, float] = {}
    for key, exp in raw_once.items():
        if not is_number(exp):
            raise ValueError("a login token entry has a wrong expiry")
        once[key] = float(exp)
    return tokens, once
