"""Compact JWS with HS256 (RFC 7515, 7519), the one form of token this server makes and takes.

Pure and stdlib-only: PyJWT, which this replaces, imports `cryptography` (its asymmetric
algorithms) at import, 9 MB of an idle server's memory for an HMAC the stdlib does. What it
checks is what PyJWT checked for us: the header names HS256 and nothing this code does not
understand (`crit`), the signature (compared in constant time), the payload is a JSON object
with the required claims, and no audience is claimed (we take none). Time claims are the
caller's (auth/tokens.py, on its injected clock).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

ALGORITHM = "HS256"
_HEADER = b'{"alg":"HS256","typ":"JWT"}'


class TokenError(Exception):
    """A token that is not a valid HS256 JWS under this secret; `str()` says why."""


class AlgorithmError(TokenError):
    """The header names another algorithm (`none`, RS256, HS512, ...) or none at all."""


class SignatureError(TokenError):
    """Well formed, but not signed with this secret."""


class MissingClaim(TokenError):
    """A required claim is absent."""

    def __init__(self, claim: str) -> None:
        super().__init__(f"token lacks the {claim} claim")
        self.claim = claim


def b64encode(data: bytes) -> str:
    """base64url without padding (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """The inverse of `b64encode`, strict: any character outside base64url is an error."""
    try:
        raw = text.encode("ascii")
        return base64.b64decode(raw.translate(_TO_STANDARD) + b"=" * (-len(raw) % 4), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise TokenError("malformed token") from None


_TO_STANDARD = bytes.maketrans(b"-_+/", b"+/-_")
"""base64url to base64, and base64's own "+/" to characters `validate` refuses."""


def encode(payload: dict[str, Any], secret: bytes) -> str:
    """`payload` signed with `secret`: header.payload.signature."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    signing_input = f"{b64encode(_HEADER)}.{b64encode(body)}"
    return f"{signing_input}.{b64encode(_sign(signing_input, secret))}"


def decode(token: str, secret: bytes, require: Iterable[str] = ()) -> dict[str, Any]:
    """The payload of `token` if it is an HS256 JWS signed with `secret` that has every
    claim in `require`. Raises a `TokenError` saying what is wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_object(b64decode(header_b64))
    if header.get("alg") != ALGORITHM:
        raise AlgorithmError(f"token algorithm not accepted (only {ALGORITHM})")
    if "crit" in header:  # extensions that must be understood: we understand none
        raise TokenError("malformed token")
    body = b64decode(payload_b64)  # base64url, hence ASCII, before it is signed over
    signature = b64decode(signature_b64)
    if not hmac.compare_digest(signature, _sign(f"{header_b64}.{payload_b64}", secret)):
        raise SignatureError("bad token signature")
    payload = _json_object(body)
    for claim in require:
        if claim not in payload:
            raise MissingClaim(claim)
    if payload.get("aud"):  # a token meant for some audience is not meant for us
        raise TokenError("invalid token: it names an audience")
    return payload


def _sign(signing_input: str, secret: bytes) -> bytes:
    return hmac.digest(secret, signing_input.encode("ascii"), hashlib.sha256)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise TokenError("malformed token") from None
    if not isinstance(value, dict):
        raise TokenError("malformed token")
    return value
