"""Refresh tokens: rotation, reuse detection by family, expiry, persistence."""

from __future__ import annotations

import hashlib
import json
import logging
import stat
import threading
from pathlib import Path

import pytest

from tests.clock import FakeClock
from vibetunnel.auth.refresh import REFRESH_TOKEN_TTL, RefreshStore
from vibetunnel.errors import AuthError

T0 = 1_700_000_000.0
TTL = 1000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "refresh.json"


@pytest.fixture
def store(path: Path, clock: FakeClock) -> RefreshStore:
    return RefreshStore(path, clock=clock, ttl=TTL)


def reopen(path: Path, clock: FakeClock) -> RefreshStore:
    return RefreshStore(path, clock=clock, ttl=TTL)


# Issue and rotate


def test_issue_gives_distinct_opaque_tokens(store: RefreshStore) -> None:
    tokens = {store.issue("alice") for _ in range(10)}
    assert len(tokens) == 10
    assert all(len(t) >= 40 and "." not in t for t in tokens)


def test_issue_rejects_empty_sub(store: RefreshStore) -> None:
    with pytest.raises(ValueError):
        store.issue("")


def test_bad_ttl_refused(path: Path) -> None:
    with pytest.raises(ValueError):
        RefreshStore(path, ttl=0)


def test_default_ttl_is_30_days() -> None:
    assert REFRESH_TOKEN_TTL == 30 * 86400


def test_rotate_returns_sub_and_a_new_token(store: RefreshStore) -> None:
    t1 = store.issue("alice")
    sub, t2 = store.rotate(t1)
    assert sub == "alice" and t2 != t1
    sub, t3 = store.rotate(t2)
    assert sub == "alice" and t3 not in (t1, t2)


def test_unknown_token_refused(store: RefreshStore) -> None:
    store.issue("alice")
    for token in ("nope", "", "x" * 43):
        with pytest.raises(AuthError, match="unknown refresh token"):
            store.rotate(token)


def test_reuse_revokes_the_whole_family(store: RefreshStore) -> None:
    t1 = store.issue("alice")
    _, t2 = store.rotate(t1)
    _, t3 = store.rotate(t2)
    with pytest.raises(AuthError, match="refresh token reused; session revoked"):
        store.rotate(t1)
    # The newest token of the family stops working too.
    with pytest.raises(AuthError, match="unknown refresh token"):
        store.rotate(t3)
    with pytest.raises(AuthError):
        store.rotate(t2)


def test_immediate_reuse_revokes_the_new_token(store: RefreshStore) -> None:
    t1 = store.issue("alice")
    _, t2 = store.rotate(t1)
    with pytest.raises(AuthError, match="reused"):
        store.rotate(t1)
    with pytest.raises(AuthError):
        store.rotate(t2)


def test_reuse_spares_other_families(store: RefreshStore) -> None:
    a1 = store.issue("alice")
    b1 = store.issue("alice")  # a second login of the same user: its own family
    store.rotate(a1)
    with pytest.raises(AuthError, match="reused"):
        store.rotate(a1)
    assert store.rotate(b1)[0] == "alice"


def test_reuse_is_logged(store: RefreshStore, caplog: pytest.LogCaptureFixture) -> None:
    t1 = store.issue("alice")
    store.rotate(t1)
    with caplog.at_level(logging.WARNING), pytest.raises(AuthError):
        store.rotate(t1)
    assert "reused" in caplog.text and t1 not in caplog.text


def test_concurrent_rotation_of_one_token_lets_one_through(store: RefreshStore) -> None:
    token = store.issue("alice")
    barrier = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            store.rotate(token)
            outcome = "ok"
        except AuthError as e:
            outcome = e.message
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1
    assert len(results) == 8


# Expiry


def test_token_valid_until_ttl(clock: FakeClock, store: RefreshStore) -> None:
    t1 = store.issue("alice")
    clock.now = T0 + TTL - 0.001
    assert store.rotate(t1)[0] == "alice"


def test_expired_token_refused(clock: FakeClock, store: RefreshStore) -> None:
    t1 = store.issue("alice")
    clock.now = T0 + TTL
    with pytest.raises(AuthError, match="expired"):
        store.rotate(t1)


def test_rotation_starts_a_fresh_term(clock: FakeClock, store: RefreshStore) -> None:
    t1 = store.issue("alice")
    clock.now = T0 + TTL - 1
    _, t2 = store.rotate(t1)
    clock.now = T0 + 2 * TTL - 2
    assert store.rotate(t2)[0] == "alice"


def test_expired_tokens_are_pruned_from_the_file(
    clock: FakeClock, store: RefreshStore, path: Path
) -> None:
    store.issue("alice")
    clock.now = T0 + TTL + 1
    store.issue("bob")
    assert len(json.loads(path.read_text())["tokens"]) == 1


# Revoke (logout)


def test_revoke_ends_the_family(store: RefreshStore) -> None:
    t1 = store.issue("alice")
    _, t2 = store.rotate(t1)
    store.revoke(t2)
    with pytest.raises(AuthError, match="unknown"):
        store.rotate(t2)


def test_revoke_with_an_older_token_ends_the_newest(store: RefreshStore) -> None:
    t1 = store.issue("alice")
    _, t2 = store.rotate(t1)
    store.revoke(t1)
    with pytest.raises(AuthError):
        store.rotate(t2)


def test_revoke_spares_other_families(store: RefreshStore) -> None:
    a = store.issue("alice")
    b = store.issue("bob")
    store.revoke(a)
    assert store.rotate(b)[0] == "bob"


def test_revoke_unknown_is_a_no_op(store: RefreshStore, path: Path) -> None:
    t1 = store.issue("alice")
    before = path.read_bytes()
    store.revoke("unknown")
    store.revoke("")
    assert path.read_bytes() == before
    assert store.rotate(t1)[0] == "alice"


def test_revoke_twice_is_harmless(store: RefreshStore) -> None:
    t1 = store.issue("alice")
    store.revoke(t1)
    store.revoke(t1)


# Device keys (auth/proof.py): a family bound to one keeps it


KEY = "k" * 43


def test_a_family_keeps_its_device_key(store: RefreshStore) -> None:
    t1 = store.issue("alice", KEY)
    plain = store.issue("alice")
    assert store.bound_key(t1) == KEY and store.bound_key(plain) is None
    _, t2 = store.rotate(t1)
    assert store.bound_key(t2) == KEY
    assert store.bound_key(t1) == KEY  # spent, still known: its replay needs the proof too
    assert store.bound_key("unknown") is None


def test_an_expired_token_still_kept_answers_with_its_key(
    clock: FakeClock, store: RefreshStore
) -> None:
    """rotate() revokes the family for a spent token even past its expiry: such a replay must
    need the proof as much as a use does."""
    t1 = store.issue("alice", KEY)
    store.rotate(t1)
    clock.now = T0 + TTL  # t1 has expired, and nothing pruned it yet
    assert store.bound_key(t1) == KEY


def test_the_key_survives_a_restart(clock: FakeClock, store: RefreshStore, path: Path) -> None:
    t1 = store.issue("alice", KEY)
    _, t2 = store.rotate(t1)
    store.issue("bob")
    data = json.loads(path.read_text())
    assert sorted(e.get("key") is not None for e in data["tokens"].values()) == [False, True, True]
    again = reopen(path, clock)
    assert again.bound_key(t2) == KEY
    _, t3 = again.rotate(t2)
    assert again.bound_key(t3) == KEY


# Storage


def test_file_has_mode_0600_and_only_hashes(store: RefreshStore, path: Path) -> None:
    t1 = store.issue("alice")
    _, t2 = store.rotate(t1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert t1 not in text and t2 not in text
    data = json.loads(text)
    assert hashlib.sha256(t2.encode()).hexdigest() in data["tokens"]
    assert data["version"] == 1


def test_survives_a_restart(clock: FakeClock, store: RefreshStore, path: Path) -> None:
    t1 = store.issue("alice")
    _, t2 = store.rotate(t1)
    again = reopen(path, clock)
    sub, t3 = again.rotate(t2)
    assert sub == "alice"
    # Reuse detection survives the restart too.
    with pytest.raises(AuthError, match="reused"):
        reopen(path, clock).rotate(t1)
    with pytest.raises(AuthError):
        reopen(path, clock).rotate(t3)


def test_revocation_survives_a_restart(clock: FakeClock, store: RefreshStore, path: Path) -> None:
    t1 = store.issue("alice")
    store.revoke(t1)
    with pytest.raises(AuthError):
        reopen(path, clock).rotate(t1)


def test_expiry_applies_after_a_restart(clock: FakeClock, store: RefreshStore, path: Path) -> None:
    t1 = store.issue("alice")
    clock.now = T0 + TTL + 1
    with pytest.raises(AuthError):
        reopen(path, clock).rotate(t1)


def test_missing_file_starts_empty_and_is_created_on_change(path: Path, clock: FakeClock) -> None:
    store = reopen(path, clock)
    assert not path.exists()
    store.issue("alice")
    assert path.exists()


def test_parent_folder_created(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "home" / "refresh.json"
    RefreshStore(path, clock=clock).issue("alice")
    assert path.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe garbage",
        b"[]",
        b"null",
        b'{"version": 2, "tokens": {}, "once": {}}',
        b'{"version": 1}',
        b'{"version": 1, "tokens": [], "once": {}}',
        b'{"version": 1, "tokens": {"h": 5}, "once": {}}',
        b'{"version": 1, "tokens": {"h": {"family": "f"}}, "once": {}}',
        b'{"version": 1, "tokens": {"h": {"family": 1, "sub": "a", "exp": 1, "spent": false}},'
        b' "once": {}}',
        b'{"version": 1, "tokens": {"h": {"family": "f", "sub": "a", "exp": "x", "spent": false}},'
        b' "once": {}}',
        b'{"version": 1, "tokens": {"h": {"family": "f", "sub": "a", "exp": 1, "spent": 0}},'
        b' "once": {}}',
        b'{"version": 1, "tokens": {"h": {"family": "f", "sub": "a", "exp": 1, "spent": false,'
        b' "key": 7}}, "once": {}}',
        b'{"version": 1, "tokens": {}, "once": {"k": "soon"}}',
        b'{"version": 1, "tokens": {}, "once": {"k": true}}',
    ],
)
def test_damaged_file_starts_empty_and_warns(
    path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        store = reopen(path, clock)
    assert "refresh tokens start empty" in caplog.text
    with pytest.raises(AuthError):
        store.rotate("anything")
    t1 = store.issue("alice")  # and it works again, overwriting the damaged file
    assert reopen(path, clock).rotate(t1)[0] == "alice"


def test_unreadable_or_unwritable_path_never_crashes(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a-folder"
    path.mkdir()
    with caplog.at_level(logging.WARNING):
        store = reopen(path, clock)
        t1 = store.issue("alice")
        sub, _ = store.rotate(t1)  # memory stays authoritative
    assert sub == "alice"
    assert "cannot save refresh tokens" in caplog.text


# One-time login tokens


def test_use_once(store: RefreshStore) -> None:
    assert store.use_once("jti-1", T0 + 60)
    assert not store.use_once("jti-1", T0 + 60)
    assert store.use_once("jti-2", T0 + 60)


def test_use_once_survives_a_restart(clock: FakeClock, store: RefreshStore, path: Path) -> None:
    assert store.use_once("jti-1", T0 + 60)
    assert not reopen(path, clock).use_once("jti-1", T0 + 60)


def test_use_once_entries_expire(clock: FakeClock, store: RefreshStore, path: Path) -> None:
    assert store.use_once("jti-1", T0 + 60)
    assert store.use_once("jti-2", T0 + 600)
    clock.now = T0 + 61
    assert store.use_once("jti-3", T0 + 120)
    assert set(json.loads(path.read_text())["once"]) == {"jti-2", "jti-3"}
    # Pruned once expired: the token's own exp check is what refuses it then.
    assert store.use_once("jti-1", T0 + 120)
    assert not store.use_once("jti-2", T0 + 600)


def test_use_once_is_atomic_under_threads(store: RefreshStore) -> None:
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        outcome = store.use_once("jti", T0 + 60)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
