"""Session on real PTYs: fan-out to real Clients, replay for late joiners, input, resize,
recording to a real .cast, kill."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.aio import debug_loop, until  # noqa: F401 (an autouse fixture)
from tests.conftest import UNIT
from vibetunnel.protocol import frames
from vibetunnel.protocol.times import iso
from vibetunnel.pty.client import Client, Ending
from vibetunnel.pty.process import PtyProcess
from vibetunnel.pty.session import Session
from vibetunnel.recording.asciicast import parse
from vibetunnel.recording.recorder import Recordings
from vibetunnel.recording.writer import flush_all

DEADLINE = 5 * UNIT
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color", "LC_ALL": "C"}


class Viewer:
    """A real Client whose two send functions collect what it sends."""

    def __init__(self, session: Session) -> None:
        self.sent: list[bytes | str] = []
        self.client = Client(self._bytes, self._text, session.snapshot)
        self.task = asyncio.create_task(self.client.run())

    async def _bytes(self, data: bytes) -> None:
        payload, rest = frames.decode(data)
        assert rest == b""
        self.sent.append(payload)

    async def _text(self, text: str) -> None:
        self.sent.append(text)

    @property
    def output(self) -> bytes:
        return b"".join(x for x in self.sent if isinstance(x, bytes))

    @property
    def texts(self) -> list[object]:
        return [json.loads(x) for x in self.sent if isinstance(x, str)]

    async def see(self, text: bytes) -> None:
        await until(lambda: text in self.output, f"{text!r} in {self.output!r}")

    async def ending(self) -> Ending:
        return await asyncio.wait_for(self.task, DEADLINE)


@pytest.fixture
def recordings(tmp_path: Path) -> Iterator[Recordings]:
    rec = Recordings(tmp_path / "recordings")
    yield rec
    rec.close()


Make = Callable[..., Session]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """A started Session running `sh -c script`; its program is killed after the test."""
    made: list[Session] = []

    def session(script: str, sid: str = "s1", **kwargs: object) -> Session:
        process = PtyProcess.spawn(["sh", "-c", script], cwd="/", env=ENV, cols=80, rows=24)
        s = Session(
            id=sid,
            name="sh",
            command="sh",
            args=["-c", script],
            cwd="/",
            cols=80,
            rows=24,
            process=process,
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(s)
        return s

    yield session
    for s in made:
        await s.kill(grace=0.1 * UNIT)
        for client in s.clients:
            client.shutdown()


async def test_output_reaches_every_client_then_the_exit(make: Make) -> None:
    s = make("echo ready; read line; echo got-$line; exit 3")
    changes: list[int] = []
    s.on_change = lambda: changes.append(1)
    s.start()
    one, two = Viewer(s), Viewer(s)
    s.attach(one.client)
    s.attach(two.client)
    assert s.to_json()["clients"] == 2 and len(changes) == 2
    await one.see(b"ready")
    s.write("hi\r")
    for viewer in (one, two):
        await viewer.see(b"got-hi")
        assert await viewer.ending() is Ending.EXITED
        assert viewer.texts == [{"type": "exit", "code": 3}]
    assert b"ready" in two.output and two.output.endswith(b"got-hi\r\n")
    assert not s.running and s.exit_code == 3
    info = s.to_json()
    assert info["status"] == "exited" and info["exitCode"] == 3
    assert info["exitedAt"] == iso(s.exited_at) and info["exitedAt"].endswith("Z")


async def test_a_late_client_gets_the_screen_first(make: Make) -> None:
    s = make("printf 'old\\033[2Jcurrent screen\\n'; read line; echo live-$line")
    s.start()
    await until(lambda: b"current screen" in s.snapshot(), "the screen")
    late = Viewer(s)
    s.attach(late.client)
    s.write("x\r")
    await late.see(b"live-x")
    assert late.output.startswith(b"\x1b[2Jcurrent screen\r\n")
    assert b"old" not in late.output


async def test_attach_to_an_exited_session_says_goodbye(make: Make) -> None:
    s = make("echo the-end; exit 7")
    s.start()
    assert s.process is not None
    await asyncio.wait_for(s.process.exited.wait(), DEADLINE)
    viewer = Viewer(s)
    s.attach(viewer.client)
    assert await viewer.ending() is Ending.EXITED
    assert viewer.output == b"the-end\r\n"
    assert viewer.texts == [{"type": "exit", "code": 7}]
    # A screen read back from the recording is sent instead of the one in memory.
    again = Viewer(s)
    s.attach(again.client, screen=b"from the recording")
    assert await again.ending() is Ending.EXITED
    assert again.output == b"from the recording"


async def test_detach(make: Make) -> None:
    s = make("read line; echo after-$line")
    changes: list[int] = []
    s.on_change = lambda: changes.append(1)
    s.start()
    stays, goes = Viewer(s), Viewer(s)
    s.attach(stays.client)
    s.attach(goes.client)
    s.detach(goes.client)
    s.detach(goes.client)  # twice: no change
    assert len(changes) == 3 and s.to_json()["clients"] == 1
    s.write("x\r")
    await stays.see(b"after-x")
    assert await stays.ending() is Ending.EXITED
    assert b"after-x" not in goes.output
    goes.client.shutdown()


async def test_resize_input_and_output_are_recorded(
    make: Make, recordings: Recordings, tmp_path: Path
) -> None:
    s = make("read line; stty size; echo got-$line", record_input=True)
    s.recorder = recordings.for_session(s)
    s.output.recording = s.recorder
    changes: list[int] = []
    s.on_change = lambda: changes.append(1)
    s.start()
    s.resize(80, 24)  # the same size: nothing happens
    assert changes == []
    s.resize(100, 30)
    assert (s.cols, s.rows) == (100, 30) and changes == [1]
    s.write("hi\r")
    assert s.process is not None
    await asyncio.wait_for(s.process.exited.wait(), DEADLINE)
    assert b"30 100" in s.snapshot()
    s.write("too late\r")  # ignored after the exit
    s.resize(120, 40)
    assert (s.cols, s.rows) == (100, 30)
    assert flush_all(DEADLINE)
    _, events = parse((tmp_path / "recordings" / "s1.cast").read_text(encoding="utf-8"))
    kinds = [(kind, data) for _, kind, data in events if kind != "o"]
    assert kinds == [("r", "100x30"), ("i", "hi\r")]
    output = "".join(data for _, kind, data in events if kind == "o")
    assert "30 100" in output and "got-hi" in output
    times = [t for t, _, _ in events]
    assert times == sorted(times)


async def test_input_is_not_recorded_unless_asked(make: Make, recordings: Recordings) -> None:
    s = make("read line; echo got-$line")
    s.recorder = recordings.for_session(s)
    s.output.recording = s.recorder
    s.start()
    s.write("secret\r")
    assert s.process is not None
    await asyncio.wait_for(s.process.exited.wait(), DEADLINE)
    assert flush_all(DEADLINE)
    _, events = parse((recordings.folder / "s1.cast").read_text(encoding="utf-8"))
    assert [kind for _, kind, _ in events if kind != "o"] == []
    assert any("got-secret" in data for _, _, data in events)  # the echo is output


async def test_kill(make: Make) -> None:
    s = make("echo ready; exec sleep 30")
    ended: list[Session] = []
    s.on_ended = ended.append
    s.start()
    assert s.pid == s.process.pid > 0  # type: ignore[union-attr]
    info = s.to_json()
    assert info["status"] == "running" and info["exitCode"] is None and info["exitedAt"] is None
    assert info["createdAt"] == iso(s.created_at)
    await until(lambda: b"ready" in s.snapshot(), "the program to start")
    await s.kill(grace=0.5 * UNIT)
    assert not s.running and s.exit_code == 129  # SIGHUP was enough
    assert ended == [s]
    await s.kill()  # an exited session: nothing to do


def test_a_session_without_a_process() -> None:
    s = Session(id="gone", name="n", command="c", args=[], cwd="/", cols=80, rows=24, process=None)
    s.write("ignored")
    s.resize(100, 30)
    assert (s.cols, s.rows) == (80, 24)
    s.ended(5, 1700000000.0)
    assert s.to_json()["exitedAt"] == "2023-11-14T22:13:20.000Z"
    assert iso(None) is None


async def test_a_recording_at_its_size_limit_ends_and_the_session_runs_on(
    make: Make, tmp_path: Path
) -> None:
    recordings = Recordings(tmp_path / "limited", max_bytes=8192)
    try:
        s = make("i=0; while :; do echo line-$i; i=$((i+1)); done")
        changes: list[int] = []
        s.on_change = lambda: changes.append(1)
        s.record_with(recordings.for_session(s), None)
        viewer = Viewer(s)
        s.attach(viewer.client)
        changes.clear()
        s.start()
        await until(lambda: s.to_json()["recordingError"] is not None, "the recording to stop")
        shown = s.to_json()
        assert shown["recording"] is False and shown["status"] == "running"
        assert "size limit of 8 KiB (--max-recording-size)" in shown["recordingError"]
        await until(lambda: changes, "the session lists to be told")
        # Output goes on reaching the clients and the screen.
        seen = len(viewer.output)
        await until(lambda: len(viewer.output) > seen + 1000, "more output after the stop")
        assert b"line-" in s.snapshot()[-200:]
        await s.kill(grace=0.1 * UNIT)
        assert flush_all(DEADLINE)
        cast = (tmp_path / "limited" / "s1.cast").read_bytes()
        assert len(cast) <= 8192 and cast.endswith(b'(--max-recording-size)"]\n')
    finally:
        recordings.close()
