"""Config: one set of defaults, and the names of things in the home."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from vibetunnel.cli import main, serve
from vibetunnel.config import (
    MAX_RECORDING,
    RECORDINGS_BUDGET,
    Config,
    format_size,
    home_dir,
    parse_size,
    recordings_dir,
)


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
    assert args.max_recording_size == config.max_recording_size == MAX_RECORDING == 1024**3
    assert args.recordings_budget == config.recordings_budget == RECORDINGS_BUDGET == 20 * 1024**3


def test_home_and_recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIBETUNNEL_HOME", str(tmp_path))
    assert home_dir() == tmp_path
    assert recordings_dir(tmp_path) == tmp_path / "recordings"
    assert Config().recordings_dir == tmp_path / "recordings"
    monkeypatch.delenv("VIBETUNNEL_HOME")
    assert home_dir() == Path.home() / ".vibetunnel"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 1048576),
        ("100K", 100 * 1024),
        ("64k", 64 * 1024),
        ("500M", 500 * 1024**2),
        ("2G", 2 * 1024**3),
        ("1.5G", 3 * 1024**3 // 2),
        ("0.5K", 512),
        ("1.0001K", 1024),  # rounded down to whole bytes
        ("2T", 2 * 1024**4),
        ("1GiB", 1024**3),
        ("3mib", 3 * 1024**2),
        (" 2G\n", 2 * 1024**3),
    ],
)
def test_sizes_are_bytes_or_powers_of_1024(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text",
    ["", " ", "G", "1.5", "-1", "+1", "1e3", "1KB", "1 G", "1G1", "1.5.5G", "1P", "nan", "inf"]
    + ["100iB", "0x10", "1_000", "1,5G", "\u0661\u0662"],  # Arabic-Indic digits: not ASCII
)
def test_anything_else_is_no_size(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size: .* K, M, G or T"):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (64 * 1024, "64 KiB")]
    + [(1024**3, "1 GiB"), (20 * 1024**3, "20 GiB"), (1024**4 * 3, "3 TiB")],
)
def test_sizes_are_said_in_binary_units(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--max-recording-size", "12Q", "'12Q' is not a size"),
        ("--max-recording-size", "1.5", "is not a size"),
        ("--recordings-budget", "-2G", "is not a size"),
        ("--recordings-budget", "1K", "too small: at least 4 KiB"),
        ("--max-recording-size", "0", "too small"),
    ],
)
def test_a_bad_size_option_exits_2_naming_it(
    option: str, value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main.main(["serve", f"{option}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and said in err


def test_size_options_take_sizes() -> None:
    parser = argparse.ArgumentParser()
    serve.configure(parser)
    args = parser.parse_args(["--max-recording-size", "64K", "--recordings-budget", "1.5G"])
    assert (args.max_recording_size, args.recordings_budget) == (65536, 3 * 1024**3 // 2)
