"""JWT issue and verify rules, on an injected clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

from tests.clock import FakeClock
from vibetunnel.auth.tokens import (
    ACCESS_TOKEN_TTL,
    LOGIN_TOKEN_TTL,
    MAX_TOKEN_TTL,
    Claims,
    TokenService,
    parse_duration,
    scope_allows,
    token_key,
)
from vibetunnel.errors import AuthError

KEY = b"0123456789abcdef" * 4  # 64 bytes: long enough for HS512 too, so PyJWT never warns
OTHER_KEY = b"fedcba9876543210" * 4
T0 = 1_700_000_000
SESSION = "0b9c6f3e-3f5e-4c1a-9d1e-2f3a4b5c6d7e"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def service(clock: FakeClock) -> TokenService:
    return TokenService(KEY, clock=clock, leeway=10)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload: bytes, key: bytes | None = KEY) -> str:
    """A JWS with any header and payload bytes, HMAC-SHA256 signed (or unsigned)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    if key is None:
        return signing_input + "."
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def signed(payload: dict[str, Any]) -> str:
    return raw_token({"alg": "HS256", "typ": "JWT"}, json.dumps(payload).encode())


def good_payload(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "iat": T0, "exp": T0 + 60, **extra}


def unverified(token: str) -> dict[str, Any]:
    result: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return result


# Issue and verify


def test_round_trip(service: TokenService) -> None:
    claims = service.verify(service.issue("alice", 900))
    assert claims == Claims(
        sub="alice", iat=T0, exp=T0 + 900, session_id=None, kind="access", jti=None
    )


def test_access_token_has_exactly_the_protocol_claims(service: TokenService) -> None:
    token = service.issue("alice", 60, session_id=SESSION)
    assert unverified(token) == {"sub": "alice", "iat": T0, "exp": T0 + 60, "sessionId": SESSION}
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_scoped_token_carries_session_id(service: TokenService) -> None:
    claims = service.verify(service.issue("alice", 60, session_id=SESSION))
    assert claims.session_id == SESSION


def test_fractional_clock_and_ttl(clock: FakeClock, service: TokenService) -> None:
    clock.now = T0 + 0.9
    claims = service.verify(service.issue("alice", 90.7))
    assert (claims.iat, claims.exp) == (T0, T0 + 90)


def test_tiny_ttl_still_lives_one_second(service: TokenService) -> None:
    claims = service.verify(service.issue("alice", 0.2))
    assert claims.exp == claims.iat + 1


def test_default_ttls() -> None:
    assert ACCESS_TOKEN_TTL == 15 * 60
    assert LOGIN_TOKEN_TTL == 5 * 60


def test_the_longest_lifetime_is_issued_and_accepted(service: TokenService) -> None:
    assert MAX_TOKEN_TTL == 30 * 86400
    claims = service.verify(service.issue("alice", MAX_TOKEN_TTL))
    assert claims.exp - claims.iat == MAX_TOKEN_TTL
    with pytest.raises(ValueError, match="30 days"):
        service.issue("alice", MAX_TOKEN_TTL + 1)
    with pytest.raises(ValueError, match="login"):
        service.issue("alice", LOGIN_TOKEN_TTL + 1, kind="login")


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": "alice", "iat": T0, "exp": 253402300799},  # 9999-12-31
        {"sub": "alice", "iat": T0, "exp": T0 + MAX_TOKEN_TTL + 1},
        {"sub": "alice", "iat": T0 - 400 * 86400, "exp": T0 + 60},  # "issued" long ago
        {"sub": "alice", "iat": -(2**53), "exp": T0 + 60},
    ],
)
def test_a_lifetime_longer_than_the_server_issues_is_refused(
    service: TokenService, payload: dict[str, Any]
) -> None:
    with pytest.raises(AuthError, match="lifetime"):
        service.verify(signed(payload))


def test_a_login_token_lives_five_minutes_at_most(service: TokenService) -> None:
    payload = {"sub": "a", "iat": T0, "exp": T0 + LOGIN_TOKEN_TTL, "kind": "login", "jti": "j"}
    assert service.verify(signed(payload), kind="login").jti == "j"
    payload["exp"] = T0 + LOGIN_TOKEN_TTL + 1
    with pytest.raises(AuthError, match="lifetime"):
        service.verify(signed(payload), kind="login")


def test_token_from_another_tool_with_the_same_secret(service: TokenService) -> None:
    token = jwt.encode(good_payload(sessionId=SESSION), KEY, algorithm="HS256")
    claims = service.verify(token)
    assert (claims.sub, claims.session_id, claims.kind) == ("alice", SESSION, "access")


def test_float_numeric_dates_accepted(service: TokenService) -> None:
    claims = service.verify(signed({"sub": "a", "iat": T0 + 0.5, "exp": T0 + 60.5}))
    assert (claims.iat, claims.exp) == (T0, T0 + 60)


def test_verify_uses_the_injected_clock_not_the_wall_clock() -> None:
    # Issued and checked in 2001: long expired by the wall clock, valid on this clock.
    clock = FakeClock(1_000_000_000)
    service = TokenService(KEY, clock=clock)
    assert service.verify(service.issue("alice", 60)).sub == "alice"


# Issue arguments


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("", 60), {}),
        (("alice", 0), {}),
        (("alice", -5), {}),
        (("alice", 60), {"kind": "refresh"}),
        (("alice", 60), {"session_id": ""}),
    ],
)
def test_issue_rejects_bad_arguments(
    service: TokenService, args: tuple[str, float], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        service.issue(*args, **kwargs)


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenService(b"x" * 31)


def test_32_byte_secret_accepted() -> None:
    service = TokenService(b"x" * 32, clock=FakeClock())
    assert service.verify(service.issue("a", 60)).sub == "a"


def test_negative_leeway_refused() -> None:
    with pytest.raises(ValueError):
        TokenService(KEY, leeway=-1)


# Expiry and leeway


def test_valid_just_before_expiry_plus_leeway(clock: FakeClock, service: TokenService) -> None:
    token = service.issue("alice", 60)
    clock.now = T0 + 60 + 9.999
    assert service.verify(token).sub == "alice"


def test_expired_at_expiry_plus_leeway(clock: FakeClock, service: TokenService) -> None:
    token = service.issue("alice", 60)
    clock.now = T0 + 60 + 10
    with pytest.raises(AuthError, match="expired"):
        service.verify(token)


def test_expired_long_ago(clock: FakeClock, service: TokenService) -> None:
    token = service.issue("alice", 60)
    clock.now = T0 + 86400
    with pytest.raises(AuthError, match="expired"):
        service.verify(token)


def test_no_leeway_expires_exactly_at_exp(clock: FakeClock) -> None:
    service = TokenService(KEY, clock=clock, leeway=0)
    token = service.issue("alice", 60)
    clock.now = T0 + 59.999
    service.verify(token)
    clock.now = T0 + 60
    with pytest.raises(AuthError, match="expired"):
        service.verify(token)


def test_iat_in_future_within_leeway_accepted(clock: FakeClock, service: TokenService) -> None:
    clock.now = T0 + 10
    token = service.issue("alice", 60)  # iat = T0 + 10
    clock.now = T0
    assert service.verify(token).iat == T0 + 10


def test_iat_in_future_beyond_leeway_refused(clock: FakeClock, service: TokenService) -> None:
    clock.now = T0 + 11
    token = service.issue("alice", 60)
    clock.now = T0
    with pytest.raises(AuthError, match="future"):
        service.verify(token)


def test_nbf_in_future_refused(service: TokenService) -> None:
    service.verify(signed(good_payload(nbf=T0 + 10)))
    with pytest.raises(AuthError, match="not valid yet"):
        service.verify(signed(good_payload(nbf=T0 + 11)))


# Signature, algorithm, tampering


def test_wrong_key_refused(clock: FakeClock, service: TokenService) -> None:
    token = TokenService(OTHER_KEY, clock=clock).issue("alice", 60)
    with pytest.raises(AuthError, match="bad token signature"):
        service.verify(token)


def test_unsigned_alg_none_refused(service: TokenService) -> None:
    payload = json.dumps(good_payload()).encode()
    for alg in ("none", "None", "NONE"):
        token = raw_token({"alg": alg, "typ": "JWT"}, payload, key=None)
        with pytest.raises(AuthError, match="algorithm not accepted"):
            service.verify(token)


def test_alg_none_made_by_pyjwt_refused(service: TokenService) -> None:
    token = jwt.encode(good_payload(), "", algorithm="none")
    with pytest.raises(AuthError, match="algorithm not accepted"):
        service.verify(token)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_the_same_key_refused(service: TokenService, alg: str) -> None:
    token = jwt.encode(good_payload(), KEY, algorithm=alg)
    with pytest.raises(AuthError, match="algorithm not accepted"):
        service.verify(token)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA"])
def test_asymmetric_algorithms_refused(service: TokenService, alg: str) -> None:
    # Key confusion: an RS256 header over an HMAC made with our secret must not pass.
    token = raw_token({"alg": alg, "typ": "JWT"}, json.dumps(good_payload()).encode())
    with pytest.raises(AuthError, match="algorithm not accepted"):
        service.verify(token)


def test_header_without_alg_refused(service: TokenService) -> None:
    token = raw_token({"typ": "JWT"}, json.dumps(good_payload()).encode())
    with pytest.raises(AuthError):
        service.verify(token)


def test_tampered_payload_refused(service: TokenService) -> None:
    token = service.issue("alice", 60)
    header, _, sig = token.split(".")
    forged = b64(json.dumps({"sub": "root", "iat": T0, "exp": T0 + 10**6}).encode())
    with pytest.raises(AuthError, match="bad token signature"):
        service.verify(f"{header}.{forged}.{sig}")


def test_scope_removed_by_tampering_refused(service: TokenService) -> None:
    token = service.issue("alice", 60, session_id=SESSION)
    header, _, sig = token.split(".")
    unscoped = b64(json.dumps({"sub": "alice", "iat": T0, "exp": T0 + 60}).encode())
    with pytest.raises(AuthError, match="bad token signature"):
        service.verify(f"{header}.{unscoped}.{sig}")


def test_tampered_signature_refused(service: TokenService) -> None:
    token = service.issue("alice", 60)
    head, _, sig = token.rpartition(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    with pytest.raises(AuthError, match="bad token signature"):
        service.verify(f"{head}.{flipped}")


def test_stripped_signature_refused(service: TokenService) -> None:
    head, _, _ = service.issue("alice", 60).rpartition(".")
    with pytest.raises(AuthError):
        service.verify(head + ".")


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c", "a.b.c.d", "....", "Bearer x.y.z", "eyJhbGciOiJIUzI1NiJ9.%%%.x"],
)
def test_malformed_refused(service: TokenService, token: str) -> None:
    with pytest.raises(AuthError):
        service.verify(token)


def test_non_string_token_refused(service: TokenService) -> None:
    with pytest.raises(AuthError, match="missing token"):
        service.verify(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"not json", b"\xff\xfe"])
def test_payload_not_an_object_refused(service: TokenService, payload: bytes) -> None:
    with pytest.raises(AuthError, match="malformed token"):
        service.verify(raw_token({"alg": "HS256", "typ": "JWT"}, payload))


# Claims


@pytest.mark.parametrize("missing", ["sub", "iat", "exp"])
def test_missing_claim_refused(service: TokenService, missing: str) -> None:
    payload = good_payload()
    del payload[missing]
    with pytest.raises(AuthError, match=f"lacks the {missing} claim"):
        service.verify(signed(payload))


@pytest.mark.parametrize(
    "bad",
    [
        {"sub": 42},
        {"sub": ""},
        {"sub": None},
        {"iat": "now"},
        {"iat": True},
        {"exp": "later"},
        {"exp": False},
        {"exp": [T0]},
        {"exp": 10**400},
        {"iat": None},
        {"nbf": "soon"},
        {"sessionId": 7},
        {"sessionId": ""},
        {"kind": "refresh"},
        {"kind": 1},
        {"jti": 5},
    ],
)
def test_invalid_claim_refused(service: TokenService, bad: dict[str, Any]) -> None:
    with pytest.raises(AuthError):
        service.verify(signed(good_payload(**bad)))


def test_nan_exp_refused(service: TokenService) -> None:
    payload = json.dumps(good_payload()).replace(str(T0 + 60), "NaN").encode()
    with pytest.raises(AuthError, match="invalid exp"):
        service.verify(raw_token({"alg": "HS256", "typ": "JWT"}, payload))


def test_auth_error_maps_to_401_and_1008(service: TokenService) -> None:
    with pytest.raises(AuthError) as info:
        service.verify("nope")
    assert (info.value.status, info.value.close_code) == (401, 1008)
    assert info.value.message == "malformed token"


# Kinds


def test_login_token(service: TokenService) -> None:
    token = service.issue("alice", LOGIN_TOKEN_TTL, kind="login")
    payload = unverified(token)
    assert payload["kind"] == "login" and isinstance(payload["jti"], str)
    claims = service.verify(token, kind="login")
    assert claims.kind == "login" and claims.jti == payload["jti"]
    assert claims.exp == T0 + LOGIN_TOKEN_TTL


def test_login_tokens_have_distinct_ids(service: TokenService) -> None:
    ids = {
        service.verify(service.issue("a", 60, kind="login"), kind="login").jti for _ in range(20)
    }
    assert len(ids) == 20


def test_login_token_is_not_an_access_token(service: TokenService) -> None:
    token = service.issue("alice", 60, kind="login")
    with pytest.raises(AuthError, match=r"wrong token kind: login \(expected access\)"):
        service.verify(token)


def test_access_token_is_not_a_login_token(service: TokenService) -> None:
    with pytest.raises(AuthError, match=r"wrong token kind: access \(expected login\)"):
        service.verify(service.issue("alice", 60), kind="login")


def test_login_token_without_jti_refused(service: TokenService) -> None:
    with pytest.raises(AuthError, match="jti"):
        service.verify(signed(good_payload(kind="login")), kind="login")


def test_expired_login_token_refused(clock: FakeClock, service: TokenService) -> None:
    token = service.issue("alice", LOGIN_TOKEN_TTL, kind="login")
    clock.now = T0 + LOGIN_TOKEN_TTL + 10
    with pytest.raises(AuthError, match="expired"):
        service.verify(token, kind="login")


# Scope


def claims_for(session_id: str | None) -> Claims:
    return Claims(sub="a", iat=T0, exp=T0 + 1, session_id=session_id, kind="access")


def test_unscoped_token_opens_any_session() -> None:
    assert scope_allows(claims_for(None), SESSION)
    assert scope_allows(claims_for(None), "another")


def test_scoped_token_opens_its_session_only() -> None:
    assert scope_allows(claims_for(SESSION), SESSION)
    assert not scope_allows(claims_for(SESSION), "another")
    assert not scope_allows(claims_for(SESSION), SESSION.upper())
    assert not scope_allows(claims_for(SESSION), "")


# Durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("12h", 43200),
        ("7d", 604800),
        ("3600", 3600),
        ("1", 1),
        ("1.5h", 5400),
        ("0.5s", 0.5),
        (" 2H ", 7200),
        ("24h", 86400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "10x",
        "-5m",
        "+5m",
        "0",
        "0s",
        "0.0h",
        "1h30m",
        "m",
        "1e3",
        "inf",
        "nan",
        "5 m",
        "1,5h",
        "1.h",
        ".5h",
        "5ms",
        "5mins",
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_a_token_s_key_names_its_signed_part_never_the_token() -> None:
    service = TokenService(KEY)
    share = service.issue("me", 600, session_id="abc", read_only=True)
    key = token_key(share)
    assert len(key) == 32 and all(part not in key for part in share.split("."))
    assert token_key(share + "=") == key  # a signature spelled another way: the same link
    assert token_key(service.issue("me", 600, session_id="abd")) != key
    assert token_key("not a jwt") != token_key("not a jwt either")
