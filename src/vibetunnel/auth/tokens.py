"""HS256 JWTs (docs/protocol.md, "Authentication"), issued and checked on an injected clock.

An access token carries exactly the specified claims: `sub`, `iat`, `exp` and, for a share
link, `sessionId`. It has no `kind` claim, so a token signed with the same secret by another
tool is an access token too. A one-time login token (the URL printed at start) adds
`"kind": "login"` and a random `jti`, so it can never pass for an access token; so does a
nonce (`"kind": "nonce"`, 60 s), which a browser signs to prove it holds its sign-in's device
key (proof.py).

PyJWT checks the signature and the algorithm; the time claims are checked here against the
injected clock, so tests never depend on the wall clock.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AuthError
from ..protocol.values import is_number
from .secret import MIN_SECRET_BYTES


def _import_jwt() -> Any:
    """PyJWT, without `cryptography`: importing PyJWT loads it when it is installed (for RSA
    and EC keys, which we never use: HS256 only), and it is 8 MB of an idle server. It is
    kept out only while PyJWT is imported (PyJWT checks for it with try/except), so `--tls
    self-signed` still imports it later (network.py)."""
    if "jwt" in sys.modules or "cryptography" in sys.modules:
        return importlib.import_module("jwt")
    sys.modules["cryptography"] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("jwt")
    finally:
        del sys.modules["cryptography"]


if TYPE_CHECKING:
    import jwt
else:
    jwt = _import_jwt()
ALGORITHM = "HS256"
ACCESS_TOKEN_TTL = 15 * 60.0
"""Seconds an access token from login or refresh lives."""
LOGIN_TOKEN_TTL = 5 * 60.0
"""Seconds the one-time login token of the start-up URL lives."""
MAX_TOKEN_TTL = 30 * 86400.0
"""The longest an access token may live (`vibetunnel token --ttl`, share links included): a
leaked token is good for this long at most, whatever its `exp` says."""
NONCE_TTL = 60.0
"""Seconds a nonce for a device-key proof lives (proof.py)."""
KINDS = ("access", "login", "nonce")
LONGEST = {"access": MAX_TOKEN_TTL, "login": LOGIN_TOKEN_TTL, "nonce": NONCE_TTL}
"""The longest lifetime (exp - iat) this server issues, per kind: anything longer was not
made by it, or not on purpose (a token valid until 9999), and is refused."""


@dataclass(frozen=True)
class Claims:
    """The checked claims of a token."""

    sub: str
    iat: int
    exp: int
    session_id: str | None
    """The one session this token opens (a share link), or None for all of them."""
    kind: str
    """"access", "login" or "nonce"."""
    jti: str | None = None
    """The unique id of a login token (to spend it once) or a nonce; None for access tokens."""
    read_only: bool = False
    """A watch-only token: it may not type into or resize a session."""


class TokenService:
    """Issue and verify HS256 tokens signed with one secret, on an injectable clock."""

    def __init__(
        self,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
        leeway: float = 10.0,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            # PyJWT would only warn; a short HMAC key is guessable offline.
            raise ValueError(f"the token secret needs at least {MIN_SECRET_BYTES} bytes")
        if leeway < 0:
            raise ValueError("leeway must not be negative")
        self._secret = secret
        self._clock = clock
        self._leeway = leeway

    def issue(
        self,
        sub: str,
        ttl: float,
        *,
        session_id: str | None = None,
        kind: str = "access",
        read_only: bool = False,
    ) -> str:
        """Return a signed token for `sub` that lives `ttl` seconds (whole seconds, at least 1)."""
        if not isinstance(sub, str) or not sub:
            raise ValueError("sub must be a non-empty string")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        if kind not in KINDS:
            raise ValueError(f"unknown token kind {kind!r}")
        if ttl > LONGEST[kind]:
            raise ValueError(f"a {kind} token lives at most {_days(LONGEST[kind])}")
        if session_id is not None and not session_id:
            raise ValueError("session_id must not be empty")
        iat = int(self._clock())
        payload: dict[str, Any] = {"sub": sub, "iat": iat, "exp": iat + max(1, int(ttl))}
        if session_id is not None:
            payload["sessionId"] = session_id
        if read_only:
            payload["readOnly"] = True
        if kind != "access":
            payload["kind"] = kind
            payload["jti"] = secrets.token_urlsafe(16)
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, *, kind: str = "access") -> Claims:
        """Return the claims of a valid token of this `kind`, else raise `AuthError`.

        Refused: a malformed token, a bad signature, any algorithm but HS256 (`none` included),
        a missing or mistyped claim, an expired token, one issued (or valid from) in the future
        beyond the leeway, a token of another kind, and one whose lifetime (exp - iat) is
        longer than this server issues for its kind.
        """
        payload = self._decode(token)
        sub = payload.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("token has no valid sub claim")
        iat = _numeric(payload, "iat")
        exp = _numeric(payload, "exp")
        session_id = payload.get("sessionId")
        if session_id is not None and (not isinstance(session_id, str) or not session_id):
            raise AuthError("token has an invalid sessionId claim")
        actual = payload.get("kind", "access")
        if actual not in KINDS:
            raise AuthError("token has an unknown kind")
        read_only = payload.get("readOnly", False)
        if not isinstance(read_only, bool):
            raise AuthError("token has an invalid readOnly claim")
        jti = payload.get("jti")
        if jti is not None and not isinstance(jti, str):
            raise AuthError("token has an invalid jti claim")

        now = self._clock()
        if now >= exp + self._leeway:
            raise AuthError("token expired")
        if iat > now + self._leeway:
            raise AuthError("token issued in the future")
        if "nbf" in payload and _numeric(payload, "nbf") > now + self._leeway:
            raise AuthError("token not valid yet")
        if actual != kind:
            raise AuthError(f"wrong token kind: {actual} (expected {kind})")
        if exp - iat > LONGEST[actual]:
            raise AuthError(f"token lifetime longer than {_days(LONGEST[actual])}")
        if actual == "login" and not jti:
            raise AuthError("login token has no jti claim")
        return Claims(
            sub=sub,
            iat=int(iat),
            exp=int(exp),
            session_id=session_id,
            kind=actual,
            jti=jti,
            read_only=read_only,
        )

    def _decode(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise AuthError("missing token")
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={
                    # Time claims are checked in verify() on the injected clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["sub", "iat", "exp"],
                },
            )
        except jwt.InvalidAlgorithmError:
            raise AuthError(f"token algorithm not accepted (only {ALGORITHM})") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad token signature") from None
        except jwt.MissingRequiredClaimError as e:
            raise AuthError(f"token lacks the {e.claim} claim") from None
        except jwt.DecodeError:
            raise AuthError("malformed token") from None
        except jwt.InvalidTokenError as e:
            raise AuthError(f"invalid token: {e}") from None
        return payload


def token_key(token: str) -> str:
    """A name of `token` for the limits (a share link's own budget and connection count):
    a hash of its signed part, never the token itself (keys live in memory and in Redis).

    The signed part (header and claims), not the whole: the signature can be spelled more
    than one way (PyJWT takes trailing base64 padding), and no spelling may be a new budget.
    Two tokens with the same claims are one client, as they should be."""
    signed = token.rpartition(".")[0] or token
    return hashlib.sha256(signed.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def scope_allows(claims: Claims, session_id: str) -> bool:
    """Whether these claims may open `session_id`: False when the token names another session."""
    return claims.session_id is None or claims.session_id == session_id


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in "90s", "15m", "12h", "7d" or a bare number of seconds ("3600").

    Raises ValueError naming the accepted forms for anything else, zero included.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: use a number of seconds or a number followed by "
            "s, m, h or d (e.g. 90s, 15m, 12h, 7d)"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be more than zero")
    return seconds


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds / 60:g} minutes"


def _numeric(payload: dict[str, Any], name: str) -> float:
    value = payload.get(name)
    # bool is an int in Python, but never a NumericDate.
    if not is_number(value):
        raise AuthError(f"token has an invalid {name} claim")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise AuthError(f"token has an invalid {name} claim")
    return number
