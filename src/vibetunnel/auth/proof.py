"""A browser's sign-in bound to a key that only the server's own origin holds.

Browsers send a host's cookies to every port of it, so a refresh cookie alone would sign in
any page served from another port of the same host (another local user's server, say). The
web app therefore signs in with a `deviceKey` (32 random bytes, base64url) that it keeps as a
non-extractable HMAC key in IndexedDB, which is per origin (scheme, host and port). The refresh
family is bound to that key, and every use of one of its tokens (refresh, logout; by cookie or
by body) carries a proof:

    X-Refresh-Nonce: a nonce token (POST /api/auth/nonce: a JWT of kind "nonce", 60 s)
    X-Refresh-Proof: base64url(HMAC-SHA256(key, nonce + " " + purpose))

where `purpose` names the route ("refresh", "logout"). A fresh server nonce, not a client
timestamp: a client's clock may be off, and an injected script could sign a future timestamp
for use once the tab is closed. A cross-origin page cannot send these headers at all.

Pure: the routes (api/routes/auth.py) call `check_proof` before spending or revoking.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from ..errors import AuthError
from .tokens import NONCE_TTL, TokenService

DEVICE_KEY_BYTES = 32
PURPOSES = ("refresh", "logout")
NONCE_HEADER = "X-Refresh-Nonce"
PROOF_HEADER = "X-Refresh-Proof"
_NONCE_SUB = "proof"


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 4648 section 5, as JWTs write it)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_device_key(text: str) -> str:
    """`text` if it is base64url (unpadded) of exactly 32 bytes, else ValueError saying so."""
    wrong = ValueError(f"must be base64url (no padding) of exactly {DEVICE_KEY_BYTES} random bytes")
    if not text.isascii() or "=" in text:
        raise wrong
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise wrong from None
    # Exactly one spelling per key: trailing bits that are not zero are another string.
    if len(raw) != DEVICE_KEY_BYTES or b64url(raw) != text:
        raise wrong
    return text


def make_proof(key: str, nonce: str, purpose: str) -> str:
    """The proof of holding `key` (a device key as parse_device_key accepts) for `purpose`."""
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    mac = hmac.new(raw, f"{nonce} {purpose}".encode(), hashlib.sha256)
    return b64url(mac.digest())


def issue_nonce(tokens: TokenService) -> str:
    """A fresh nonce: a token of its own kind, good for NONCE_TTL seconds and for nothing
    else (not an access token, not a login token)."""
    return tokens.issue(_NONCE_SUB, NONCE_TTL, kind="nonce")


def check_proof(
    tokens: TokenService, key: str, nonce: str | None, proof: str | None, purpose: str
) -> None:
    """Raise AuthError unless `proof` is a proof of `key` over a valid `nonce` for `purpose`."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    if not nonce or not proof:
        raise AuthError(
            f"this sign-in is bound to a device key: send {NONCE_HEADER} and {PROOF_HEADER}"
        )
    try:
        tokens.verify(nonce, kind="nonce")
    except AuthError as exc:
        raise AuthError(f"bad {NONCE_HEADER}: {exc.message}") from None
    expected = make_proof(key, nonce, purpose).encode("ascii")
    if not hmac.compare_digest(expected, proof.encode()):
        raise AuthError(f"bad {PROOF_HEADER}: not made with this sign-in's key for {purpose}")
