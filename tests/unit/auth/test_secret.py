"""The signing secret and private atomic writes."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from vibetunnel.auth import secret as secret_mod
from vibetunnel.auth.secret import (
    ENV_SECRET,
    MIN_SECRET_BYTES,
    SecretError,
    load_or_create_secret,
)


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SECRET, raising=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_on_first_use_with_mode_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"  # does not exist yet
    key = load_or_create_secret(home)
    path = home / "secret"
    assert mode(path) == 0o600
    text = path.read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    assert key == text[:-1].encode("utf-8")
    assert len(key) >= MIN_SECRET_BYTES


def test_no_temporary_files_left(tmp_path: Path) -> None:
    load_or_create_secret(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_reused_across_calls(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path)
    assert load_or_create_secret(tmp_path) == first


def test_two_homes_get_different_secrets(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path / "a") != load_or_create_secret(tmp_path / "b")


def test_existing_file_is_read_first_line_without_newline(tmp_path: Path) -> None:
    line = "x" * 40 + " é"
    (tmp_path / "secret").write_text(line + "\r\nignored\n")
    assert load_or_create_secret(tmp_path) == line.encode("utf-8")


def test_existing_file_without_newline(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("y" * 40)
    assert load_or_create_secret(tmp_path) == b"y" * 40


def test_env_overrides_and_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SECRET, "z" * 32)
    assert load_or_create_secret(tmp_path) == b"z" * 32
    assert not (tmp_path / "secret").exists()


def test_env_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret").write_text("f" * 40 + "\n")
    monkeypatch.setenv(ENV_SECRET, "e" * 40)
    assert load_or_create_secret(tmp_path) == b"e" * 40


def test_empty_env_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SECRET, "")
    key = load_or_create_secret(tmp_path)
    assert key == (tmp_path / "secret").read_text().strip().encode()


def test_short_env_secret_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SECRET, "short")
    with pytest.raises(SecretError, match=f"at least {MIN_SECRET_BYTES} bytes"):
        load_or_create_secret(tmp_path)


@pytest.mark.parametrize("content", ["", "\n", "\n" + "x" * 40 + "\n"])
def test_empty_secret_file_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "secret").write_text(content)
    with pytest.raises(SecretError, match="empty"):
        load_or_create_secret(tmp_path)
    assert (tmp_path / "secret").read_text() == content  # never silently replaced


def test_short_secret_file_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("abc\n")
    with pytest.raises(SecretError, match="3 bytes"):
        load_or_create_secret(tmp_path)


def test_secret_error_is_a_value_error() -> None:
    assert issubclass(SecretError, ValueError)


def test_readable_by_others_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "secret"
    path.write_text("w" * 40 + "\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert load_or_create_secret(tmp_path) == b"w" * 40
    assert "readable by others" in caplog.text


def test_race_loser_keeps_the_winners_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("winner" * 8 + "\n")
    secret_mod._create_secret(path)  # as if we lost the race after our read found nothing
    assert path.read_text() == "winner" * 8 + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_race_during_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process creates the file between our failed read and our link.
    real_link = os.link

    def link_after_other(src: str, dst: str) -> None:
        Path(dst).write_text("other" * 8 + "\n")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_other)
    assert load_or_create_secret(tmp_path) == b"other" * 8


def test_without_hard_links_falls_back_to_exclusive_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: str, dst: str) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_link)
    key = load_or_create_secret(tmp_path)
    path = tmp_path / "secret"
    assert mode(path) == 0o600
    assert path.read_text() == key.decode() + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]
    assert load_or_create_secret(tmp_path) == key


def test_created_with_0600_despite_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_secret(tmp_path)
    finally:
        os.umask(old)
    assert mode(tmp_path / "secret") == 0o600
