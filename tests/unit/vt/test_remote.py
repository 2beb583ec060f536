"""RemotePty (the server's view of a vt PTY) and the manager's handling of adopted sessions."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from vibetunnel.errors import InputOverflow
from vibetunnel.protocol import host
from vibetunnel.pty.manager import SessionManager
from vibetunnel.pty.remote import RemotePty
from vibetunnel.pty.session import Session


def drain(remote: RemotePty) -> list[dict[str, object]]:
    out = []
    while remote._outbox:
        out.append(json.loads(remote._outbox.popleft()))
    return out


async def test_input_resize_signal_become_messages() -> None:
    remote = RemotePty(42)
    remote.write("ls €\r".encode())
    remote.write(b"")
    remote.resize(100, 30)
    remote.signal(signal.SIGHUP)
    assert await remote.next_message() == host.input_message("ls €\r")
    assert drain(remote) == [
        {"type": "resize", "cols": 100, "rows": 30},
        {"type": "signal", "signal": int(signal.SIGHUP)},
    ]


async def test_output_and_exit_reach_the_session() -> None:
    remote = RemotePty(42)
    seen: list[object] = []
    remote.start(seen.append, lambda code: seen.append(("exit", code)))
    remote.feed(b"hi")
    remote.finish(3)
    remote.finish(4)  # once
    remote.feed(b"late")
    assert seen == [b"hi", ("exit", 3)]
    assert remote.exited.is_set() and remote.returncode == 3
    remote.write(b"ignored")
    assert drain(remote) == []


async def test_input_backlog_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vibetunnel.pty.remote.WRITE_QUEUE_LIMIT", 100)
    remote = RemotePty(42)
    remote.write(b"x" * 50)
    with pytest.raises(InputOverflow):
        remote.write(b"x" * 60)
    await remote.next_message()
    remote.write(b"x" * 60)  # read: room again


async def test_input_backlog_counts_the_queued_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    # JSON escapes a control character as six: the limit counts what is queued, not the input.
    monkeypatch.setattr("vibetunnel.pty.remote.WRITE_QUEUE_LIMIT", 1000)
    remote = RemotePty(42)
    with pytest.raises(InputOverflow):
        remote.write(b"\x01" * 500)  # 500 characters, 3000 queued
    assert drain(remote) == []
    remote.write(b"\x01" * 100)
    assert remote._queued <= 1000


async def test_resizes_count_against_the_backlog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vibetunnel.pty.remote.WRITE_QUEUE_LIMIT", 1000)
    remote = RemotePty(42)
    with pytest.raises(InputOverflow):
        for i in range(1000):
            remote.resize(80 + i % 2, 24)
    assert remote._queued <= 1000
    remote.signal(signal.SIGHUP)  # a kill is never refused
    assert drain(remote)[-1] == {"type": "signal", "signal": int(signal.SIGHUP)}


async def test_staged_terminate() -> None:
    remote = RemotePty(42)
    remote.start(lambda data: None, lambda code: None)
    task = asyncio.create_task(remote.terminate(grace=0.05))
    assert json.loads(await remote.next_message() or "") == {"type": "signal", "signal": 1}
    assert json.loads(await remote.next_message() or "") == {"type": "signal", "signal": 15}
    remote.finish(143)  # vt reports the exit: no SIGKILL
    await task
    assert drain(remote) == []


async def test_unlink_ends_the_sender_and_a_pending_kill() -> None:
    remote = RemotePty(42)
    task = asyncio.create_task(remote.terminate(grace=10))
    await asyncio.sleep(0)
    remote.unlink()
    await asyncio.wait_for(task, 1)
    assert await remote.next_message() is None
    remote.write(b"x")
    assert drain(remote) == []


def vt_session(sid: str, remote: RemotePty) -> Session:
    return Session(
        id=sid, name="n", command="sh", args=[], cwd="/", cols=80, rows=24, process=remote
    )


async def test_manager_forgets_only_the_same_session() -> None:
    manager = SessionManager()
    old = vt_session("a", RemotePty(1))
    manager.adopt(old)
    manager.forget(old)
    assert manager.list() == []
    new = vt_session("a", RemotePty(1))
    manager.adopt(new)
    manager.forget(old)  # a stale link's cleanup never removes its successor
    assert manager.list() == [new]


async def test_shutdown_leaves_vt_programs_running() -> None:
    manager = SessionManager()
    remote = RemotePty(1)
    manager.adopt(vt_session("a", remote))
    assert manager.shutdown() == []  # nothing to hand the keeper
    assert drain(remote) == []  # no signal sent to vt


async def test_a_refused_resize_leaves_the_session_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vibetunnel.pty.remote.WRITE_QUEUE_LIMIT", 60)
    remote = RemotePty(1)
    session = vt_session("a", remote)
    session.start()
    session.resize(100, 30)
    with pytest.raises(InputOverflow):
        session.resize(120, 40)
    assert (session.cols, session.rows) == (100, 30)  # what vt was told last
