"""Fixtures of the recording tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from vibetunnel.recording import index as index_module


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write of metadata.json from now on."""
    done: list[bytes] = []
    real = index_module.write_private

    def counted(path: Path, data: bytes) -> None:
        done.append(data)
        real(path, data)

    monkeypatch.setattr(index_module, "write_private", counted)
    return done
