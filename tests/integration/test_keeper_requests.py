"""A real keeper, talked to directly as its server does: every spawn is answered, whatever
it holds, and no message stops it serving the next one."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import UNIT, processes_of, wait_until
from vibetunnel.keeper.channel import Message, recv_messages, send_message
from vibetunnel.keeper.client import Attachment, attach
from vibetunnel.keeper.client import stop as keeper_stop
from vibetunnel.keeper.wire import encode


@pytest.fixture
def keeper(tmp_path: Path) -> Iterator[Attachment]:
    """A keeper started for a home of its own, this test attached as its server."""
    home = tmp_path / "home"
    attachment = attach(home, timeout=10 * UNIT)
    try:
        yield attachment
    finally:
        attachment.close()
        keeper_stop(home, sessions=True, timeout=10 * UNIT)
        wait_until(lambda: processes_of(home) == [], what="the keeper and its programs gone")


def spawn(req: int, **changes: Any) -> Message:
    request: Message = {
        "type": "spawn",
        "req": req,
        "id": f"s{req}",
        "argv": ["sh", "-c", "exit 0"],
        "cwd": "/",
        "env": {"PATH": os.environ["PATH"]},
        "cols": 80,
        "rows": 24,
        "name": "sh",
        "command": "sh",
        "args": ["-c", "exit 0"],
        "record": False,
        "recordInput": False,
        "createdAt": time.time(),
    }
    return {**request, **changes}


def answer(keeper: Attachment, req: int) -> tuple[Message, list[int]]:
    """The keeper's answer to spawn `req`, within a few units (the server waits 30 s)."""
    deadline = time.monotonic() + 3 * UNIT

    def mine(m: Message) -> bool:
        return m["type"] in ("spawned", "failed") and m.get("req") == req

    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"spawn {req} was never answered"
        for message, fds in recv_messages(keeper.sock, mine, left, keeper.inbox):
            if mine(message):
                return message, fds
            for fd in fds:
                os.close(fd)


BAD_SPAWNS: list[tuple[dict[str, Any], str]] = [
    ({"env": {"A=B": "x"}}, "env: name 'A=B' holds '='"),
    ({"env": {"": "x"}}, "env: a name must not be empty"),
    ({"env": {"A\0B": "x"}}, "env: name 'A\\x00B' holds NUL"),
    ({"env": {"A": "x\0y"}}, "env: the value of 'A' holds NUL"),
    ({"env": ["A=B"]}, "env must map strings to strings"),
    ({"argv": ["sh\0", "-c"]}, "argv must not hold NUL"),
    ({"argv": []}, "argv must be a non-empty list of strings"),
    ({"cwd": "/tmp\0x"}, "cwd must not hold NUL"),
    ({"cols": "80"}, "cols must be an integer"),
    ({"rows": 10**9}, "rows must be an integer 1..1000"),
    ({"id": "../x"}, "id must be"),
    ({"name": 5}, "name must be a string"),
    ({"createdAt": 1e20}, "createdAt must be a Unix time in range"),
    ({"command": None}, "command must be a string"),
]


def test_every_bad_spawn_is_answered_failed_and_the_keeper_serves_on(
    keeper: Attachment,
) -> None:
    for req, (changes, why) in enumerate(BAD_SPAWNS, start=1):
        message, fds = answer_to(keeper, spawn(req, **changes))
        assert fds == []
        assert message["type"] == "failed", (changes, message)
        assert why in message["why"], (changes, message)
    good, fds = answer_to(keeper, spawn(100))
    assert good["type"] == "spawned" and good["pid"] > 0 and len(fds) == 1
    os.close(fds[0])


def test_a_message_the_keeper_cannot_handle_does_not_take_the_next(keeper: Attachment) -> None:
    # Both in one write, so in one read: the bad one (held bytes that are not hex) must not
    # take the spawn after it down with it, nor the channel.
    bad = encode({"type": "screen", "id": "s1", "data": "", "held": "not hex"})
    first, fds = answer_to(keeper, spawn(1, argv=["sh", "-c", "read x"]))
    assert first["type"] == "spawned"
    os.close(fds[0])
    keeper.sock.sendall(bad + encode(spawn(2)))
    second, fds = answer(keeper, 2)
    assert second["type"] == "spawned"
    os.close(fds[0])


def answer_to(keeper: Attachment, request: Message) -> tuple[Message, list[int]]:
    send_message(keeper.sock, request)
    return answer(keeper, request["req"])


def test_the_keeper_log_names_the_refusal_and_no_value(keeper: Attachment) -> None:
    secret = "s3cr3t-value-of-a-variable"
    message, _ = answer_to(keeper, spawn(1, env={"A=B": secret}))
    assert message["type"] == "failed"
    home = Path(keeper.sock.getpeername()).parent
    wait_until(lambda: "spawn 1 refused" in (home / "keeper.log").read_text(), what="the line")
    assert secret not in (home / "keeper.log").read_text()
