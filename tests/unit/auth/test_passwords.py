"""The login password: argon2id hash on disk, or `$VIBETUNNEL_PASSWORD`."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from vibetunnel.auth import passwords
from vibetunnel.auth.passwords import (
    ENV_PASSWORD,
    check_password,
    password_configured,
    password_path,
    set_password,
)

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def _no_env_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    # The real parameters cost ~0.1 s a hash; one test below checks them.
    monkeypatch.setattr(passwords, "_hasher", FAST)


def test_real_hasher_is_argon2id_with_default_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    set_password(tmp_path, "pw")
    stored = password_path(tmp_path).read_text().strip()
    assert stored.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(stored)
    assert check_password(tmp_path, "pw")


def test_nothing_configured(tmp_path: Path) -> None:
    assert not password_configured(tmp_path)
    assert not check_password(tmp_path, "anything")
    assert not check_password(tmp_path, "")


def test_set_and_check(tmp_path: Path) -> None:
    set_password(tmp_path, "correct horse")
    assert password_configured(tmp_path)
    assert check_password(tmp_path, "correct horse")
    assert not check_password(tmp_path, "correct hors")
    assert not check_password(tmp_path, "Correct horse")
    assert not check_password(tmp_path, "")


def test_username_is_ignored(tmp_path: Path) -> None:
    set_password(tmp_path, "pw")
    assert check_password(tmp_path, "pw", "anyone")
    assert check_password(tmp_path, "pw", None)
    assert not check_password(tmp_path, "bad", "admin")


def test_stores_an_argon2id_hash_not_the_password(tmp_path: Path) -> None:
    set_password(tmp_path, "hunter2-secret")
    path = password_path(tmp_path)
    assert path == tmp_path / "password"
    text = path.read_text()
    assert text.startswith("$argon2id$")
    assert "hunter2-secret" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_same_password_hashes_differently(tmp_path: Path) -> None:
    set_password(tmp_path / "a", "pw")
    set_password(tmp_path / "b", "pw")
    assert password_path(tmp_path / "a").read_text() != password_path(tmp_path / "b").read_text()


def test_set_again_replaces(tmp_path: Path) -> None:
    set_password(tmp_path, "old")
    set_password(tmp_path, "new")
    assert check_password(tmp_path, "new")
    assert not check_password(tmp_path, "old")


def test_unicode_password(tmp_path: Path) -> None:
    set_password(tmp_path, "pässwörd 🔑")
    assert check_password(tmp_path, "pässwörd 🔑")
    assert not check_password(tmp_path, "passwort 🔑")


def test_empty_password_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        set_password(tmp_path, "")
    assert not password_path(tmp_path).exists()


def test_env_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSWORD, "from-env")
    assert password_configured(tmp_path)
    assert check_password(tmp_path, "from-env")
    assert not check_password(tmp_path, "from-en")
    assert not check_password(tmp_path, "from-env ")
    assert not check_password(tmp_path, "")


def test_env_overrides_stored_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_password(tmp_path, "stored")
    monkeypatch.setenv(ENV_PASSWORD, "from-env")
    assert check_password(tmp_path, "from-env")
    assert not check_password(tmp_path, "stored")


def test_unicode_env_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSWORD, "ünï")
    assert check_password(tmp_path, "ünï")


def test_empty_env_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PASSWORD, "")
    assert not password_configured(tmp_path)
    assert not check_password(tmp_path, "")
    set_password(tmp_path, "stored")
    assert check_password(tmp_path, "stored")


def test_blank_password_file_is_not_configured(tmp_path: Path) -> None:
    password_path(tmp_path).write_text("\n")
    assert not password_configured(tmp_path)
    assert not check_password(tmp_path, "x")


def test_damaged_hash_is_refused_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password_path(tmp_path).write_text("plain-text-password\n")
    with caplog.at_level(logging.WARNING):
        assert not check_password(tmp_path, "plain-text-password")
    assert "vibetunnel passwd" in caplog.text


def test_unreadable_password_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    password_path(tmp_path).mkdir()
    with caplog.at_level(logging.WARNING):
        assert not check_password(tmp_path, "x")
        assert not password_configured(tmp_path)


def test_weak_hash_is_upgraded_on_a_good_login(tmp_path: Path) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    password_path(tmp_path).write_text(weak + "\n")
    assert not check_password(tmp_path, "wrong")
    assert password_path(tmp_path).read_text().strip() == weak  # no upgrade on a failure
    assert check_password(tmp_path, "pw")
    upgraded = password_path(tmp_path).read_text().strip()
    assert upgraded != weak and upgraded.startswith("$argon2id$")
    assert not FAST.check_needs_rehash(upgraded)
    assert check_password(tmp_path, "pw")
