"""The server's side of the keeper (KeeperLink) against a peer that misbehaves: one that
never answers, or answers with values no keeper sends."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.aio import debug_loop, until  # noqa: F401 (an autouse fixture)
from tests.conftest import UNIT
from tests.unit.keeper.test_channel import open_fds
from vibetunnel.keeper import client as client_module
from vibetunnel.keeper.channel import Channel, send_message
from vibetunnel.keeper.client import KeeperError, KeeperLink
from vibetunnel.pty.manager import SessionManager, SessionOptions


class Peer:
    """The keeper's end of a socket pair, driven by the test."""

    def __init__(self, link: KeeperLink, sock: socket.socket) -> None:
        self.link, self.sock = link, sock
        self.exits: list[tuple[str, int | None, float]] = []


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[Peer]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    exits: list[tuple[str, int | None, float]] = []
    link = KeeperLink(
        tmp_path, lambda *exit: exits.append(exit), lambda why: None, lambda kept: None
    )
    link.channel = Channel(ours, link._message, link._closed)
    p = Peer(link, theirs)
    p.exits = exits
    yield p
    link._leaving = True
    link.channel.close()
    theirs.close()


def request() -> dict[str, Any]:
    return {"argv": ["true"], "cwd": "/", "env": {}, "cols": 80, "rows": 24}


async def test_a_keeper_that_never_answers_is_a_keeper_error_not_a_bad_request(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TimeoutError is an OSError: taken for the spawn's own, it was a 400 "cannot start
    # /bin/sh: None" after 30 s.
    monkeypatch.setattr(client_module, "ANSWER_TIMEOUT", 0.2 * UNIT)
    manager = SessionManager(spawner=peer.link)
    with pytest.raises(KeeperError, match="did not answer within"):
        await manager.create(SessionOptions(command="true", cwd="/"))


async def test_a_spawned_answer_without_a_pid_is_refused_and_its_fd_closed(peer: Peer) -> None:
    task = asyncio.ensure_future(peer.link.spawn(request()))
    await until(lambda: bool(peer.link._waiting), "the request sent")
    before = open_fds()
    r, w = os.pipe()
    try:
        send_message(peer.sock, {"type": "spawned", "req": 1, "pid": "x"}, [r])
        with pytest.raises(KeeperError, match="malformed"):
            await task
        assert open_fds() == before | {r, w}  # the copy that came with it was closed
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize(
    ("code", "at", "taken"),
    [
        (3, 1700000000.0, (3, 1700000000.0)),
        (10**6, 1e20, (None, None)),
        ("3", float("nan"), (None, None)),
        (True, True, (None, None)),
    ],
)
async def test_an_exit_is_taken_only_with_values_a_session_can_have(
    peer: Peer, code: object, at: object, taken: tuple[int | None, float | None]
) -> None:
    before = time.time()
    send_message(peer.sock, {"type": "exited", "id": "s1", "code": code, "at": at})
    await until(lambda: peer.exits, "the exit")
    ((session_id, got_code, got_at),) = peer.exits
    assert (session_id, got_code) == ("s1", taken[0])
    if taken[1] is None:
        assert before <= got_at <= time.time()  # now, not the value sent
    else:
        assert got_at == taken[1]
