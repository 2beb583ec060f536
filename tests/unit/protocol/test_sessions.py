"""The checks of a session as the API lists it (what another node publishes in Redis), and
of a new session's environment."""

from __future__ import annotations

import time
from typing import Any

import pytest

from vibetunnel.protocol.sessions import MAX_ARGS, MAX_TEXT, env_problem, session_problem
from vibetunnel.pty.session import Session


def listed(**changes: Any) -> dict[str, Any]:
    """A session as a real one writes itself (pty/session.py's to_json), then `changes`."""
    session = Session(
        id="s-1",
        name="bash",
        command="/bin/bash",
        args=["-l"],
        cwd="/",
        cols=80,
        rows=24,
        process=None,
        pid=42,
    )
    session.node = "alpha"
    session.created_at = time.time()
    return {**session.to_json(), **changes}


def test_a_real_session_is_one() -> None:
    assert session_problem(listed()) is None
    exited = listed(status="exited", exitCode=130, exitedAt="2024-01-01T00:00:01.000Z")
    assert session_problem(exited) is None
    assert session_problem(listed(lost="why", title="t", recordingError="no room")) is None


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"id": None}, "id"),
        ({"id": "../etc"}, "id"),
        ({"id": "x" * 129}, "id"),
        ({"name": 7}, "name"),
        ({"name": "n" * (MAX_TEXT + 1)}, "name"),
        ({"command": None}, "command"),
        ({"args": "-l"}, "args"),
        ({"args": ["-l", 3]}, "args"),
        ({"args": ["x" * (MAX_ARGS + 1)]}, "args"),
        ({"cwd": ["/"]}, "cwd"),
        ({"cols": 10**9}, "cols"),
        ({"rows": -5}, "rows"),
        ({"cols": "80"}, "cols"),
        ({"rows": True}, "rows"),
        ({"status": "zombie"}, "status"),
        ({"exitCode": 10**6}, "exitCode"),
        ({"exitCode": "0"}, "exitCode"),
        ({"pid": 0}, "pid"),
        ({"pid": 2**40}, "pid"),
        ({"createdAt": 1e20}, "createdAt"),
        ({"createdAt": "9999-12-31T23:59:59-05:00"}, "createdAt"),
        ({"exitedAt": "soon"}, "exitedAt"),
        ({"clients": -1}, "clients"),
        ({"lost": 1}, "lost"),
        ({"title": {}}, "title"),
        ({"activityAt": 5}, "activityAt"),
        ({"recording": "yes"}, "recording"),
        ({"recordingError": 0}, "recordingError"),
        ({"node": "n" * 65}, "node"),
    ],
)
def test_a_field_out_of_shape_is_named(changes: dict[str, Any], named: str) -> None:
    problem = session_problem(listed(**changes))
    assert problem is not None and problem.startswith(named)


def test_a_field_missing_is_named() -> None:
    session = listed()
    del session["cwd"]
    assert session_problem(session) == "cwd must be a string"


@pytest.mark.parametrize("value", [None, [], "a session", 42])
def test_not_an_object_is_no_session(value: object) -> None:
    assert session_problem(value) == "a session must be a JSON object"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("A=B", "x", "name 'A=B' holds '='"),
        ("", "x", "a name must not be empty"),
        ("A\0B", "x", "name 'A\\x00B' holds NUL"),
        ("A", "x\0y", "the value of 'A' holds NUL"),
        ("A", 1, "names and values must be strings"),
    ],
)
def test_an_environment_exec_cannot_pass_is_refused(name: str, value: object, problem: str) -> None:
    assert env_problem(name, value) == problem


@pytest.mark.parametrize(("name", "value"), [("A", ""), ("LANG", "C.UTF-8 = é"), ("_x1", "a=b")])
def test_a_passable_environment_is_taken(name: str, value: str) -> None:
    assert env_problem(name, value) is None
