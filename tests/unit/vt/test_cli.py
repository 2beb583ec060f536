"""`vt`'s command line: what runs, the nested-session refusal, the --list table."""

from __future__ import annotations

import pytest

from vibetunnel.cli.vt import main, nested_refusal, parse_args
from vibetunnel.vt.link import describe


def test_command_and_its_options_are_kept_whole() -> None:
    opts = parse_args(["ls", "-la", "--name", "x"], env={})
    assert (opts.argv, opts.name, opts.list_sessions) == (["ls", "-la", "--name", "x"], None, False)


def test_name_before_the_command() -> None:
    opts = parse_args(["--name", "build", "make", "-j8"], env={})
    assert (opts.argv, opts.name) == (["make", "-j8"], "build")


def test_double_dash() -> None:
    assert parse_args(["--", "--weird-command"], env={}).argv == ["--weird-command"]


def test_no_command_is_the_login_shell() -> None:
    assert parse_args([], env={"SHELL": "/bin/zsh"}).argv == ["/bin/zsh", "-l"]
    assert parse_args([], env={}).argv == ["/bin/sh", "-l"]


def test_list() -> None:
    assert parse_args(["--list"], env={}).list_sessions
    with pytest.raises(SystemExit) as exc:
        parse_args(["--list", "ls"], env={})
    assert exc.value.code == 2


def test_nested_refusal() -> None:
    assert nested_refusal({}) is None
    assert nested_refusal({"VIBETUNNEL_SESSION_ID": ""}) is None
    message = nested_refusal({"VIBETUNNEL_SESSION_ID": "abc"})
    assert message is not None and "abc" in message and "nested vt is not supported" in message


def test_nested_main_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIBETUNNEL_SESSION_ID", "s-1")
    assert main(["true"]) == 1
    assert "already inside VibeTunnel session s-1" in capsys.readouterr().err


def test_describe_table() -> None:
    lines = describe(
        [
            {
                "id": "a1",
                "name": "sh",
                "status": "running",
                "clients": 2,
                "command": "sh",
                "args": ["-l"],
                "exitCode": None,
            },
            {
                "id": "b22",
                "name": "make",
                "status": "exited",
                "clients": 0,
                "command": "make",
                "args": [],
                "exitCode": 2,
            },
        ]
    )
    assert lines[0].split() == ["ID", "NAME", "STATUS", "CLIENTS", "COMMAND"]
    assert lines[1].split() == ["a1", "sh", "running", "2", "sh", "-l"]
    assert lines[2].split() == ["b22", "make", "exited", "(2)", "0", "make"]
    assert lines[1].index("sh") == lines[0].index("NAME")  # columns line up
    assert len(describe("not a list")) == 1
