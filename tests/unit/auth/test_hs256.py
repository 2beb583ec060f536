"""The stdlib HS256 JWS against PyJWT (a test dependency only): each takes the other's tokens,
and what PyJWT refused for us is still refused."""

from __future__ import annotations

import json

import jwt
import pytest

from tests.unit.auth.test_tokens import KEY, OTHER_KEY, b64, raw_token
from vibetunnel.auth import hs256

HS = b64(b'{"alg":"HS256"}')
PAYLOAD = {"sub": "alice", "iat": 1_700_000_000, "exp": 1_700_000_060, "sessionId": "s é"}


def test_pyjwt_reads_ours_and_we_read_pyjwts() -> None:
    ours = hs256.encode(PAYLOAD, KEY)
    assert jwt.decode(ours, KEY, algorithms=["HS256"], options={"verify_exp": False}) == PAYLOAD
    assert jwt.get_unverified_header(ours) == {"alg": "HS256", "typ": "JWT"}
    theirs = jwt.encode(PAYLOAD, KEY, algorithm="HS256")
    assert hs256.decode(theirs, KEY, require=("sub", "iat", "exp")) == PAYLOAD


def test_other_secret_is_a_bad_signature() -> None:
    with pytest.raises(hs256.SignatureError):
        hs256.decode(hs256.encode(PAYLOAD, OTHER_KEY), KEY)


def test_missing_claim_is_named() -> None:
    with pytest.raises(hs256.MissingClaim, match="lacks the exp claim") as info:
        hs256.decode(hs256.encode({"sub": "a", "iat": 1}, KEY), KEY, require=("sub", "exp"))
    assert info.value.claim == "exp"


@pytest.mark.parametrize(
    "header",
    [{"alg": "none"}, {"alg": "HS512"}, {"alg": "RS256"}, {"typ": "JWT"}, {"alg": ["HS256"]}],
)
def test_only_hs256(header: dict[str, object]) -> None:
    with pytest.raises(hs256.AlgorithmError):
        hs256.decode(raw_token(header, json.dumps(PAYLOAD).encode()), KEY)


def test_critical_extensions_and_audiences_refused() -> None:
    crit = raw_token({"alg": "HS256", "crit": ["b64"], "b64": False}, json.dumps(PAYLOAD).encode())
    with pytest.raises(hs256.TokenError, match="malformed"):
        hs256.decode(crit, KEY)
    with pytest.raises(hs256.TokenError, match="audience"):
        hs256.decode(hs256.encode({**PAYLOAD, "aud": "elsewhere"}, KEY), KEY)


@pytest.mark.parametrize(
    "token",
    [
        "a.b.c.d",
        "é.b.c",
        f"{b64(b'[1]')}.{b64(b'{}')}.x",  # a header that is not an object
        f"{HS}.{b64(b'[]')}.",  # neither is this payload
        f"{HS}.e30+.AAAA",  # "+" is base64, not base64url
        f"{HS}.e30.AA=A",
    ],
)
def test_malformed(token: str) -> None:
    with pytest.raises(hs256.TokenError):
        hs256.decode(token, KEY)


def test_a_valid_signature_over_a_non_object_payload_is_malformed() -> None:
    token = raw_token({"alg": "HS256"}, b"[1, 2]")
    with pytest.raises(hs256.TokenError, match="malformed"):
        hs256.decode(token, KEY)
