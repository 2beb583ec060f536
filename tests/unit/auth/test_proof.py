"""Device keys and their proofs (auth/proof.py): what a key-bound sign-in needs to be used."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import pytest

from tests.clock import FakeClock
from vibetunnel.auth.proof import (
    DEVICE_KEY_BYTES,
    b64url,
    check_proof,
    issue_nonce,
    make_proof,
    parse_device_key,
)
from vibetunnel.auth.tokens import LOGIN_TOKEN_TTL, NONCE_TTL, TokenService
from vibetunnel.errors import AuthError

SECRET = b"0123456789abcdef" * 4
T0 = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def tokens(clock: FakeClock) -> TokenService:
    return TokenService(SECRET, clock=clock, leeway=10)


def new_key() -> str:
    return b64url(secrets.token_bytes(DEVICE_KEY_BYTES))


def test_a_device_key_is_32_bytes_of_base64url() -> None:
    key = new_key()
    assert len(key) == 43 and parse_device_key(key) == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        b64url(bytes(31)),
        b64url(bytes(33)),
        b64url(bytes(32)) + "=",  # padding: another spelling of the same key
        base64.b64encode(bytes(range(200, 232))).decode().rstrip("="),  # + and /, not - and _
        "A" * 42 + "B",  # 43 characters whose last one carries bits past the 32 bytes
        "A" * 42 + "!",
        "A" * 42 + "é",
        "A" * 21 + " " + "A" * 21,
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="exactly 32 random bytes"):
        parse_device_key(text)


def test_the_proof_is_hmac_sha256_of_the_nonce_and_the_purpose() -> None:
    raw = secrets.token_bytes(32)
    expected = hmac.new(raw, b"the-nonce refresh", hashlib.sha256).digest()
    assert make_proof(b64url(raw), "the-nonce", "refresh") == b64url(expected)


def test_a_good_proof_passes(tokens: TokenService) -> None:
    key = new_key()
    nonce = issue_nonce(tokens)
    for purpose in ("refresh", "logout"):
        check_proof(tokens, key, nonce, make_proof(key, nonce, purpose), purpose)


@pytest.mark.parametrize("missing", ["nonce", "proof"])
def test_a_missing_header_is_refused(tokens: TokenService, missing: str) -> None:
    key = new_key()
    nonce = issue_nonce(tokens)
    proof = make_proof(key, nonce, "refresh")
    with pytest.raises(AuthError, match="X-Refresh-Nonce and X-Refresh-Proof"):
        check_proof(
            tokens,
            key,
            None if missing == "nonce" else nonce,
            None if missing == "proof" else proof,
            "refresh",
        )


def test_another_key_or_purpose_or_nonce_is_refused(tokens: TokenService) -> None:
    key = new_key()
    nonce, other_nonce = issue_nonce(tokens), issue_nonce(tokens)
    assert nonce != other_nonce
    for proof in (
        make_proof(new_key(), nonce, "refresh"),
        make_proof(key, nonce, "logout"),
        make_proof(key, other_nonce, "refresh"),
        make_proof(key, nonce, "refresh")[:-1],
        "not a proof",
        "é",
    ):
        with pytest.raises(AuthError, match="bad X-Refresh-Proof"):
            check_proof(tokens, key, nonce, proof, "refresh")


def test_a_nonce_lives_a_minute(clock: FakeClock, tokens: TokenService) -> None:
    key = new_key()
    nonce = issue_nonce(tokens)
    proof = make_proof(key, nonce, "logout")
    clock.advance(NONCE_TTL + 9)  # within the leeway
    check_proof(tokens, key, nonce, proof, "logout")
    clock.advance(1)
    with pytest.raises(AuthError, match="bad X-Refresh-Nonce: token expired"):
        check_proof(tokens, key, nonce, proof, "logout")


def test_a_token_of_another_kind_is_no_nonce(tokens: TokenService) -> None:
    key = new_key()
    for other in (
        tokens.issue("alice", 60),
        tokens.issue("alice", LOGIN_TOKEN_TTL, kind="login"),
        TokenService(b"k" * 40).issue("proof", 60, kind="nonce"),  # another server's
    ):
        with pytest.raises(AuthError, match="bad X-Refresh-Nonce"):
            check_proof(tokens, key, other, make_proof(key, other, "refresh"), "refresh")


def test_a_nonce_is_no_access_or_login_token(tokens: TokenService) -> None:
    nonce = issue_nonce(tokens)
    with pytest.raises(AuthError, match=r"wrong token kind: nonce \(expected access\)"):
        tokens.verify(nonce)
    with pytest.raises(AuthError, match=r"wrong token kind: nonce \(expected login\)"):
        tokens.verify(nonce, kind="login")


def test_a_longer_lived_nonce_is_refused(tokens: TokenService) -> None:
    with pytest.raises(ValueError, match="a nonce token lives at most"):
        tokens.issue("proof", NONCE_TTL + 1, kind="nonce")


def test_an_unknown_purpose_is_a_bug(tokens: TokenService) -> None:
    with pytest.raises(ValueError, match="purpose"):
        check_proof(tokens, new_key(), "n", "p", "delete")
