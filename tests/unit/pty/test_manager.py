"""SessionManager with real PTYs (LocalSpawner), real recordings, and masters handed over as
the keeper hands them (adopt_kept)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aio import debug_loop, until  # noqa: F401 (an autouse fixture)
from tests.conftest import UNIT
from vibetunnel.errors import BadRequest, Conflict, SessionNotFound, TooManyRequests
from vibetunnel.pty import manager as manager_module
from vibetunnel.pty.client import Client, Ending
from vibetunnel.pty.manager import SessionManager, SessionOptions
from vibetunnel.pty.process import PtyProcess
from vibetunnel.pty.session import Session
from vibetunnel.recording.asciicast import parse
from vibetunnel.recording.recorder import Recordings
from vibetunnel.recording.writer import flush_all

DEADLINE = 5 * UNIT


async def ended(session: Session) -> None:
    await until(lambda: not session.running, f"session {session.id} to end")


def pty_of(session: Session) -> PtyProcess:
    assert isinstance(session.process, PtyProcess)
    return session.process


def sh(script: str, **kwargs: Any) -> SessionOptions:
    return SessionOptions(command="sh", args=["-c", script], cwd="/", **kwargs)


class Foreign:
    """A program whose parent is the test, as the keeper is the parent of what a server runs:
    the manager is handed its master; `spare` is the keeper's own copy."""

    def __init__(self, script: str) -> None:
        master, slave = os.openpty()
        try:
            self.popen = subprocess.Popen(
                ["sh", "-c", script], stdin=slave, stdout=slave, stderr=slave
            )
        finally:
            os.close(slave)
        self.master = master
        self.spare = os.dup(master)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=DEADLINE)
        os.close(self.spare)


@pytest.fixture
def recordings(tmp_path: Path) -> Recordings:
    return Recordings(tmp_path / "recordings")


@pytest.fixture
async def manager(recordings: Recordings) -> AsyncIterator[SessionManager]:
    m = SessionManager(recorders=recordings, max_sessions=10)
    yield m
    await m.end_local()
    recordings.close()


@pytest.fixture
def foreign() -> Iterator[Callable[[str], Foreign]]:
    made: list[Foreign] = []

    def make(script: str) -> Foreign:
        made.append(Foreign(script))
        return made[-1]

    yield make
    for f in made:
        f.close()


def kept(session_id: str, pid: int, **changes: Any) -> dict[str, Any]:
    """A `session` message of the keeper."""
    return {
        "type": "session",
        "id": session_id,
        "name": "bash",
        "command": "/bin/bash",
        "args": ["-l"],
        "cwd": "/",
        "cols": 80,
        "rows": 24,
        "pid": pid,
        "createdAt": time.time() - 60,
        "record": True,
        "recordInput": False,
        "exitCode": None,
        "exitedAt": None,
        "lost": None,
        "screen": "",
        "held": "",
        **changes,
    }


def write_cast(path: Path, *outputs: str) -> None:
    header = {"version": 2, "width": 80, "height": 24, "timestamp": int(time.time()) - 60}
    lines = [json.dumps(header)] + [json.dumps([n + 0.5, "o", o]) for n, o in enumerate(outputs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- create ---------------------------------------------------------------------------------


async def test_create_with_defaults(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHELL", "/bin/sh")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VIBETUNNEL_PASSWORD", "server-secret")
    s = await manager.create(SessionOptions(env={"EXTRA": "extra-1"}))
    assert (s.command, s.args, s.name, s.cwd) == ("/bin/sh", ["-l"], "sh", str(tmp_path))
    assert (s.cols, s.rows) == (80, 24) and s.running and s.pid > 0
    assert manager.get(s.id) is s and manager.list() == [s]
    s.write('echo "T=$TERM I=$VIBETUNNEL_SESSION_ID P=${VIBETUNNEL_PASSWORD-none} $EXTRA"; pwd\r')
    expected = f"T=xterm-256color I={s.id} P=none extra-1\r\n{tmp_path}\r\n".encode()
    await until(lambda: expected in s.snapshot(), "the environment echoed")
    s.write("exit 4\r")
    await ended(s)
    assert s.exit_code == 4 and manager.list() == [s]  # exited sessions stay listed


async def test_create_with_options(manager: SessionManager, tmp_path: Path) -> None:
    s = await manager.create(
        SessionOptions(
            id="mine",
            name="Named",
            cols=100,
            rows=30,
            cwd=str(tmp_path),
            command="sh",
            args=["-c", "stty size; pwd"],
        )
    )
    await ended(s)
    assert (s.id, s.name, s.cols, s.rows, s.exit_code) == ("mine", "Named", 100, 30, 0)
    assert s.snapshot() == f"30 100\r\n{tmp_path}\r\n".encode()


@pytest.mark.parametrize(
    ("opts", "field"),
    [
        (SessionOptions(cwd="/no/such/dir", command="sh"), "cwd: no such directory"),
        (SessionOptions(cwd="/", command="no-such-program-here"), "command: not found"),
        (SessionOptions(cwd="/", command=""), "command: must not be empty"),
        # What a cluster order may carry (cluster/owner.py): checked by no body model before.
        (sh("true", env={"A=B": "x"}), "env: name 'A=B' holds '='"),
        (sh("true", env={"": "x"}), "env: a name must not be empty"),
        (sh("true", env={"A\0B": "x"}), "env: name 'A\\\\x00B' holds NUL"),
        (sh("true", env={"A": "x\0y"}), "env: the value of 'A' holds NUL"),
        (sh("true", env=["A=B"]), "env: must be an object"),  # type: ignore[arg-type]
        (sh("true", env={"A": 1}), "env: names and values must be strings"),  # type: ignore[dict-item]
        (sh("true", cols="80"), "cols must be an integer"),  # type: ignore[arg-type]
        (sh("true", rows=10**9), "rows must be an integer 1..1000"),
        (sh("true", id="../x"), "id must be"),
        (sh("true", name=7), "name must be a string"),  # type: ignore[arg-type]
        (SessionOptions(cwd="/", command="sh", args="-c true"), "args must be"),  # type: ignore[arg-type]
        (SessionOptions(cwd="/", command="sh\0"), "command: .* must not hold NUL"),
        (SessionOptions(cwd="/", command="sh", args=["-c", "tr\0ue"]), "must not hold NUL"),
    ],
)
async def test_bad_options(manager: SessionManager, opts: SessionOptions, field: str) -> None:
    with pytest.raises(BadRequest, match=field):
        await manager.create(opts)
    assert manager.list() == []


async def test_command_not_executable(manager: SessionManager, tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(BadRequest, match="not executable"):
        await manager.create(SessionOptions(cwd="/", command=str(script)))


async def test_id_conflict(manager: SessionManager) -> None:
    first = await manager.create(sh("exit 0", id="same"))
    await ended(first)
    with pytest.raises(Conflict, match="same"):
        await manager.create(sh("exit 0", id="same"))  # exited, but still listed
    assert manager.list() == [first]


async def test_session_limit_counts_running_sessions(manager: SessionManager) -> None:
    manager.max_sessions = 2
    a = await manager.create(sh("read line"))
    await manager.create(sh("read line"))
    with pytest.raises(TooManyRequests) as raised:
        await manager.create(sh("exit 0"))
    assert raised.value.status == 429 and raised.value.retry_after == 5
    a.write("\r")
    await ended(a)
    assert manager.running_count() == 1
    await manager.create(sh("exit 0"))  # room again


# -- look up, delete, change notification ---------------------------------------------------


async def test_delete(manager: SessionManager) -> None:
    s = await manager.create(sh("echo ready; exec sleep 30"))
    await until(lambda: b"ready" in s.snapshot(), "the program to start")
    seen = manager.version
    await manager.delete(s.id)
    assert not s.running and s.exit_code == 129  # SIGHUP
    assert manager.version > seen and manager.list() == []
    with pytest.raises(SessionNotFound):
        manager.get(s.id)
    with pytest.raises(SessionNotFound):
        await manager.delete(s.id)


async def test_wait_change(manager: SessionManager) -> None:
    seen = manager.version
    waiter = asyncio.create_task(manager.wait_change(seen, DEADLINE))
    await asyncio.sleep(0)
    assert not waiter.done()
    s = await manager.create(sh("exit 0"))
    await asyncio.wait_for(waiter, DEADLINE)
    assert manager.version > seen
    await ended(s)
    start = time.monotonic()
    await manager.wait_change(manager.version, 0.05 * UNIT)  # nothing changes: times out
    assert time.monotonic() - start >= 0.05 * UNIT


# -- exited sessions' screens ---------------------------------------------------------------


async def test_exited_screens_are_bounded_and_read_back(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager_module, "EXITED_SCREENS", 200)
    sessions = []
    for n in range(5):
        s = await manager.create(sh(f"printf 's{n}-%090d\\n' 0", id=f"s{n}"))
        await ended(s)
        sessions.append(s)
    screens = [f"s{n}-{0:090d}\r\n".encode() for n in range(5)]  # 96 bytes each
    # Only the newest two fit in 200 bytes; the older ones were dropped, oldest first.
    assert [s.output.screen is not None for s in sessions] == [False, False, False, True, True]
    assert [s.snapshot() for s in sessions[3:]] == screens[3:]
    assert flush_all(DEADLINE)
    assert [await manager.replay(s) for s in sessions] == screens
    # A client attaching to a dropped session gets the screen read back.
    sent: list[bytes] = []

    async def send_bytes(data: bytes) -> None:
        sent.append(data)

    async def send_text(text: str) -> None:
        pass

    client = Client(send_bytes, send_text, sessions[0].snapshot)
    sessions[0].attach(client, await manager.replay(sessions[0]))
    assert await asyncio.wait_for(client.run(), DEADLINE) is Ending.EXITED
    assert b"".join(sent).endswith(screens[0])


async def test_a_lone_screen_bigger_than_the_bound_is_kept(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager_module, "EXITED_SCREENS", 10)
    s = await manager.create(sh("echo more-than-ten-bytes"))
    await ended(s)
    assert s.snapshot() == b"more-than-ten-bytes\r\n"


async def test_replay_without_recordings_is_empty_once_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(manager_module, "EXITED_SCREENS", 10)
    m = SessionManager()
    a = await m.create(sh("echo first-one"))
    await ended(a)
    b = await m.create(sh("echo second-one"))
    await ended(b)
    assert await m.replay(a) == b""
    assert await m.replay(b) == b"second-one\r\n"


# -- sessions the keeper hands over ---------------------------------------------------------


async def test_adopt_kept_running_session(
    manager: SessionManager, foreign: Callable[[str], Foreign], recordings: Recordings
) -> None:
    # The keeper read "é"'s first byte; its second byte is still in the terminal.
    f = foreign("printf '\\251 after\\n'; read line; echo got-$line; exit 3")
    cast = recordings.folder / "k1.cast"
    write_cast(cast, "before the server\r\n")
    lines_before = cast.read_bytes().count(b"\n")
    message = kept("k1", f.popen.pid, screen="previous screen ", held="c3", cols=90, rows=20)
    s = manager.adopt_kept(message, f.master)
    assert manager.get("k1") is s and s.running and s.pid == f.popen.pid
    assert (s.cols, s.rows, s.name, s.args) == (90, 20, "bash", ["-l"])
    await until(lambda: b"after\r\n" in s.snapshot(), "the program's line")
    assert s.snapshot() == "previous screen é after\r\n".encode()
    s.write("x\r")
    await until(lambda: b"got-x" in s.snapshot(), "the answer")
    assert f.popen.wait(timeout=DEADLINE) == 3
    await until(lambda: pty_of(s)._eof, "the end of output")
    assert s.running  # ended, but the exit code is the keeper's news
    manager.kept_exit("k1", 3, time.time())
    assert not s.running and s.exit_code == 3 and s.lost is None
    assert flush_all(DEADLINE)
    data = cast.read_bytes()
    assert data.count(b"\n") > lines_before
    _, events = parse(data.decode("utf-8"))
    assert events[0] == (0.5, "o", "before the server\r\n")
    assert "".join(d for _, k, d in events[1:] if k == "o") == "é after\r\nx\r\ngot-x\r\n"
    assert all(t >= 59 for t, _, _ in events[1:])  # times go on from the session's start


async def test_adopt_kept_exited_session(manager: SessionManager, recordings: Recordings) -> None:
    write_cast(recordings.folder / "k2.cast", "old\x1b[2J", "last screen\r\n")
    message = kept("k2", 4321, exitCode=7, exitedAt=1700000000.0, lost=None)
    s = manager.adopt_kept(message, None)
    assert s.process is None and not s.running
    assert (s.exit_code, s.exited_at, s.pid) == (7, 1700000000.0, 4321)
    assert s.output.screen is None
    assert await manager.replay(s) == b"\x1b[2Jlast screen\r\n"
    assert s.to_json()["status"] == "exited"


async def test_adopt_kept_lost_session(manager: SessionManager) -> None:
    why = "the keeper (pid 99) that held it was killed or crashed"
    s = manager.adopt_kept(kept("k3", 4321, exitedAt=1700000000.0, lost=why), None)
    assert not s.running and s.exit_code is None and s.to_json()["lost"] == why


async def test_adopt_all_skips_sessions_already_held(
    manager: SessionManager, foreign: Callable[[str], Foreign]
) -> None:
    f = foreign("read line")
    mine = await manager.create(sh("read line", id="dup"))
    r, w = os.pipe()  # stands for the master of the one skipped: its closing shows
    try:
        adopted = manager.adopt_all(
            [(kept("dup", 1), r), (kept("new", f.popen.pid, record=False), f.master)]
        )
        assert [s.id for s in adopted] == ["new"]
        assert manager.get("dup") is mine
        with pytest.raises(BrokenPipeError):
            os.write(w, b"x")  # no reader left: the descriptor of the skipped one was closed
    finally:
        os.close(w)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"createdAt": 1e20}, "createdAt"),
        ({"createdAt": float("nan")}, "createdAt"),
        ({"cols": 10**9}, "cols"),
        ({"rows": -5}, "rows"),
        ({"id": "../x"}, "id"),
        ({"pid": 0}, "pid"),
        ({"exitCode": 10**6}, "exitCode"),
        ({"name": None}, "name"),
        ({"screen": 5}, "screen"),
        ({"held": "not hex"}, "non-hexadecimal"),
        ({"held": "00" * 1024}, "held"),
    ],
)
async def test_adopt_all_skips_what_holds_no_session(
    manager: SessionManager,
    foreign: Callable[[str], Foreign],
    caplog: pytest.LogCaptureFixture,
    changes: dict[str, Any],
    why: str,
) -> None:
    f = foreign("read line")
    r, w = os.pipe()  # stands for the master of the bad one: its closing shows
    try:
        with caplog.at_level(logging.WARNING, "vibetunnel"):
            adopted = manager.adopt_all(
                [
                    ({**kept("bad", 1), **changes}, r),
                    (kept("good", f.popen.pid, record=False), f.master),
                ]
            )
        assert [s.id for s in adopted] == ["good"]
        assert [s.id for s in manager.list()] == ["good"]
        with pytest.raises(BrokenPipeError):
            os.write(w, b"x")
        (line,) = [r.getMessage() for r in caplog.records]
        assert "the keeper's session" in line and "skipped" in line and why in line
        assert [s["id"] for s in (s.to_json() for s in manager.list())] == ["good"]
    finally:
        os.close(w)


async def test_keeper_lost(manager: SessionManager, foreign: Callable[[str], Foreign]) -> None:
    f = foreign("read line; exit 5")
    running = manager.adopt_kept(kept("run", f.popen.pid, record=False), f.master)
    done = manager.adopt_kept(kept("done", 1, exitCode=0, exitedAt=1700000000.0), None)
    manager.keeper_lost("the session keeper (pid 1) is gone")
    assert running.lost == "the session keeper (pid 1) is gone: the exit code will not be known"
    assert done.lost is None
    assert running.running  # the program still runs; this server holds its terminal
    running.write("\r")
    await ended(running)
    assert running.exit_code is None  # nobody can tell it now


async def test_keeper_lost_after_the_end_of_output_ends_at_once(
    manager: SessionManager, foreign: Callable[[str], Foreign]
) -> None:
    f = foreign("echo bye")
    s = manager.adopt_kept(kept("s", f.popen.pid, record=False), f.master)
    assert f.popen.wait(timeout=DEADLINE) == 0
    await until(lambda: pty_of(s)._eof, "the end of output")
    assert s.running  # waiting for the keeper's news, which will never come
    manager.keeper_lost("the session keeper is gone")
    assert not s.running and s.exit_code is None
    assert s.snapshot() == b"bye\r\n"


async def test_kept_exit_of_an_unknown_session(manager: SessionManager) -> None:
    manager.kept_exit("nobody", 0, time.time())
    assert manager.list() == []


# -- shutdown ---------------------------------------------------------------------------------


async def test_shutdown_hands_over_kept_sessions_only(
    manager: SessionManager, foreign: Callable[[str], Foreign], recordings: Recordings
) -> None:
    f = foreign("read line; echo still-running-$line")
    write_cast(recordings.folder / "kept.cast")
    held = manager.adopt_kept(kept("kept", f.popen.pid, screen="kept screen ", held="e2"), f.master)
    local = await manager.create(sh("read line", id="local"))
    vt = Session(
        id="vt",
        name="vt",
        command="sh",
        args=[],
        cwd="/",
        cols=80,
        rows=24,
        process=PtyProcess.spawn(["sh", "-c", "read line"], cwd="/", env={}, cols=80, rows=24),
    )
    manager.adopt(vt)
    gone = await manager.create(sh("exit 0", id="gone"))
    await ended(gone)
    viewers = []
    for s in (held, local, vt):
        client = Client(_nothing, _nothing, s.snapshot)
        s.attach(client)
        viewers.append(asyncio.create_task(client.run()))
    handoff = manager.shutdown()
    assert manager.closing
    assert handoff == [("kept", b"kept screen ", b"\xe2")]
    results = await asyncio.wait_for(asyncio.gather(*viewers), DEADLINE)
    assert results == [Ending.SHUTDOWN] * 3
    assert pty_of(held).fd == -1  # let go of...
    assert f.popen.poll() is None  # ...but not ended: the keeper reads on
    os.write(f.spare, b"yes\r")
    assert f.popen.wait(timeout=DEADLINE) == 0
    assert local.running and vt.running  # end_local (the fixture) ends our own


async def _nothing(_: object) -> None:
    pass


async def test_end_local_ends_our_children(manager: SessionManager) -> None:
    sessions = [await manager.create(sh("exec sleep 30")) for _ in range(3)]
    await manager.end_local()
    assert [s.exit_code for s in sessions] == [128 + signal.SIGHUP] * 3


async def test_a_folder_that_cannot_be_written_records_nothing_and_says_why(
    tmp_path: Path,
) -> None:
    (tmp_path / "recordings").write_text("a file where the folder should be")
    recordings = Recordings(tmp_path / "recordings")  # never raises
    assert recordings.error is not None and "not a folder" in recordings.error
    m = SessionManager(recorders=recordings)
    try:
        s = await m.create(SessionOptions(command="/bin/sh", args=["-c", "exit 0"]))
        shown = s.to_json()
        assert (shown["recording"], shown["recordingError"]) == (False, recordings.error)
        assert s.recorder is None
        await asyncio.wait_for(s.process.exited.wait(), DEADLINE)  # type: ignore[union-attr]
    finally:
        await m.end_local()
        recordings.close()


async def test_recorded_sessions_say_so(manager: SessionManager) -> None:
    s = await manager.create(SessionOptions(command="/bin/sh", args=["-c", "exit 0"]))
    assert (s.to_json()["recording"], s.to_json()["recordingError"]) == (True, None)
    await ended(s)
