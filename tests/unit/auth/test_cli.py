"""`vibetunnel token` and `vibetunnel passwd`."""

from __future__ import annotations

import argparse
import getpass
import io
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from argon2 import PasswordHasher

from vibetunnel.auth import passwords
from vibetunnel.auth.passwords import ENV_PASSWORD, check_password, password_path
from vibetunnel.auth.secret import ENV_SECRET, load_or_create_secret
from vibetunnel.auth.tokens import TokenService
from vibetunnel.cli import passwd as passwd_cli
from vibetunnel.cli import token as token_cli

SESSION = "0b9c6f3e-3f5e-4c1a-9d1e-2f3a4b5c6d7e"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIBETUNNEL_HOME", str(tmp_path))
    monkeypatch.delenv(ENV_SECRET, raising=False)
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    return tmp_path


def run(module: ModuleType, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.configure(parser)
    code: int = module.run(parser.parse_args(argv))
    return code


@pytest.mark.parametrize("module", [token_cli, passwd_cli])
def test_command_convention(module: ModuleType) -> None:
    assert isinstance(module.HELP, str) and module.HELP and "\n" not in module.HELP
    assert callable(module.configure) and callable(module.run)


# vibetunnel token


def verify(home: Path, token: str) -> tuple[str, int, str | None]:
    claims = TokenService(load_or_create_secret(home)).verify(token)
    return claims.sub, claims.exp - claims.iat, claims.session_id


def test_token_defaults(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(token_cli, []) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # only the token, for $(vibetunnel token)
    sub, ttl, session = verify(home, out.strip())
    assert ttl == 24 * 3600 and session is None and sub
    assert stat.S_IMODE((home / "secret").stat().st_mode) == 0o600


def test_token_options(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--ttl", "15m", "--sub", "bob"]
    assert run(token_cli, argv) == 0
    assert verify(home, capsys.readouterr().out.strip()) == ("bob", 900, None)


def test_share_link_needs_a_running_server(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `--session` prints a whole link of the running server (tested with one in integration).
    assert run(token_cli, ["--session", SESSION]) == 2
    assert "no VibeTunnel server running" in capsys.readouterr().err


def test_token_signed_with_env_secret(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SECRET, "s" * 40)
    assert run(token_cli, []) == 0
    TokenService(b"s" * 40).verify(capsys.readouterr().out.strip())
    assert not (home / "secret").exists()


def test_token_reuses_the_existing_secret(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = load_or_create_secret(home)
    assert run(token_cli, []) == 0
    TokenService(secret).verify(capsys.readouterr().out.strip())


def test_token_default_sub_without_a_user_name(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_user() -> str:
        raise OSError("no user name")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert run(token_cli, []) == 0
    assert verify(home, capsys.readouterr().out.strip())[0] == "user"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ttl", "soon"], "--ttl: invalid duration"),
        (["--ttl", "0"], "--ttl: invalid duration"),
        (["--ttl", "31d"], "--ttl: at most 30 days"),
        (["--session", "not-a-uuid"], "is not a session id"),
        (["--sub", ""], "--sub must not be empty"),
    ],
)
def test_token_bad_options(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(token_cli, argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_token_bad_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SECRET, "short")
    assert run(token_cli, []) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot load the signing secret" in captured.err


# vibetunnel passwd


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Make stdin a terminal and getpass answer from this list."""
    replies: list[str] = []
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: object = None) -> str:
        prompts.append(prompt)
        return replies.pop(0)

    monkeypatch.setattr(sys, "stdin", FakeTty())
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    yield replies
    assert not replies, "not every answer was asked for"


def test_passwd_on_a_terminal(
    home: Path, answers: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    answers.extend(["s3cret pw", "s3cret pw"])
    assert run(passwd_cli, []) == 0
    assert check_password(home, "s3cret pw")
    assert "s3cret pw" not in password_path(home).read_text()
    assert "Password set" in capsys.readouterr().out


def test_passwd_mismatch(
    home: Path, answers: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    answers.extend(["one", "two"])
    assert run(passwd_cli, []) == 1
    assert "do not match" in capsys.readouterr().err
    assert not password_path(home).exists()


def test_passwd_empty_on_a_terminal(
    home: Path, answers: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    answers.append("")
    assert run(passwd_cli, []) == 1
    assert "must not be empty" in capsys.readouterr().err
    assert not password_path(home).exists()


def test_passwd_eof_on_a_terminal(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def eof(prompt: str = "", stream: object = None) -> str:
        raise EOFError

    monkeypatch.setattr(sys, "stdin", FakeTty())
    monkeypatch.setattr(getpass, "getpass", eof)
    assert run(passwd_cli, []) == 1
    assert "no password given" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stdin", "password"),
    [
        ("from script\n", "from script"),
        ("crlf\r\n", "crlf"),
        ("no newline", "no newline"),
        ("  spaces kept  \n", "  spaces kept  "),
        ("first\nsecond\n", "first"),
    ],
)
def test_passwd_from_a_pipe(
    home: Path, monkeypatch: pytest.MonkeyPatch, stdin: str, password: str
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert run(passwd_cli, []) == 0
    assert check_password(home, password)
    assert stat.S_IMODE(password_path(home).stat().st_mode) == 0o600


@pytest.mark.parametrize(("stdin", "message"), [("\n", "must not be empty"), ("", "no password")])
def test_passwd_from_a_pipe_refuses(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin: str,
    message: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert run(passwd_cli, []) == 1
    assert message in capsys.readouterr().err
    assert not password_path(home).exists()


def test_passwd_notes_the_env_override(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_PASSWORD, "env-pw")
    monkeypatch.setattr(sys, "stdin", io.StringIO("file-pw\n"))
    assert run(passwd_cli, []) == 0
    assert ENV_PASSWORD in capsys.readouterr().err
    monkeypatch.delenv(ENV_PASSWORD)
    assert check_password(home, "file-pw")


def test_passwd_unwritable_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("VIBETUNNEL_HOME", str(blocker / "home"))  # parent is a file
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    assert run(passwd_cli, []) == 1
    assert f"cannot use the home {blocker / 'home'}: {blocker}: not a folder" in (
        capsys.readouterr().err
    )
