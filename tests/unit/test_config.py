"""Config: one set of defaults, and the names of things in the home."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from vibetunnel.cli import serve
from vibetunnel.config import Config, home_dir, recordings_dir


def test_serve_defaults_are_configs_defaults() -> None:
    parser = argparse.ArgumentParser()
    serve.configure(parser)
    args = parser.parse_args([])
    config = Config(home=Path("/nowhere"))
    assert (args.host, args.port) == (config.host, config.port)
    assert args.rate_limit == config.rate_limit
    assert args.max_sessions == config.max_sessions
    assert args.keep_recordings == config.keep_recordings_days
    assert args.idle_timeout == config.ws_idle_timeout
    assert (not args.no_auth, not args.no_record) == (config.auth, config.record)
    assert args.record_input == config.record_input
    assert args.trusted_proxy == config.trusted_proxies == []
    assert args.header_timeout == config.header_timeout == 10
    assert args.max_connections_per_address == config.max_connections_per_address


def test_home_and_recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIBETUNNEL_HOME", str(tmp_path))
    assert home_dir() == tmp_path
    assert recordings_dir(tmp_path) == tmp_path / "recordings"
    assert Config().recordings_dir == tmp_path / "recordings"
    monkeypatch.delenv("VIBETUNNEL_HOME")
    assert home_dir() == Path.home() / ".vibetunnel"
