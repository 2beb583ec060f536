"""Private files written whole: replace (write_private) and create-if-missing (create_private)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vibetunnel.files import create_private, remove_stale_temps, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_private_writes_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "file.json"
    write_private(path, b"data")
    assert path.read_bytes() == b"data"
    assert mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.json"]


def test_write_private_replaces_and_tightens_mode(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.read_bytes() == b"new"
    assert mode(path) == 0o600


def test_write_private_failure_keeps_old_content_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_private(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_create_private_makes_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new"
    assert create_private(path, b"mine")
    assert path.read_bytes() == b"mine"
    assert mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["new"]


def test_create_private_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "taken"
    path.write_bytes(b"theirs")
    assert not create_private(path, b"mine")
    assert path.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_stale_temps_of_one_file_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".metadata.json.abc123.tmp").write_text("{")
    (tmp_path / ".other.abc.tmp").write_text("{")
    remove_stale_temps(tmp_path / "metadata.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.abc.tmp"]
