"""PtyProcess on real PTYs: spawned children, and masters handed over by another parent."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.aio import debug_loop, until  # noqa: F401 (an autouse fixture)
from tests.conftest import UNIT
from vibetunnel.errors import InputOverflow
from vibetunnel.pty import process as process_module
from vibetunnel.pty.process import WRITE_QUEUE_LIMIT, PtyProcess, exit_code, get_winsize

DEADLINE = 5 * UNIT
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color", "LC_ALL": "C"}


class Watch:
    """Starts a PtyProcess and records its output and its exit."""

    def __init__(self, process: PtyProcess) -> None:
        self.process = process
        self.output = bytearray()
        self.exits: list[int | None] = []
        self.output_at_exit = b""

    def start(self, **kwargs: Any) -> Watch:
        self.process.start(self.output.extend, self._exit, **kwargs)
        return self

    def _exit(self, code: int | None) -> None:
        self.exits.append(code)
        self.output_at_exit = bytes(self.output)

    async def see(self, text: bytes) -> None:
        await until(lambda: text in self.output, f"{text!r} in {bytes(self.output)!r}")

    async def finished(self) -> int | None:
        async with asyncio.timeout(DEADLINE):
            await self.process.exited.wait()
        assert len(self.exits) == 1
        assert self.process.fd == -1
        return self.exits[0]


Spawn = Callable[..., Watch]


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Spawn `sh -c script` as our child; whatever still runs is killed afterwards."""
    started: list[PtyProcess] = []

    def make(script: str, cols: int = 80, rows: int = 24) -> Watch:
        p = PtyProcess.spawn(["sh", "-c", script], cwd="/", env=ENV, cols=cols, rows=rows)
        started.append(p)
        return Watch(p)

    yield make
    for p in started:
        if p.fd >= 0 and p.is_child:
            p.signal(signal.SIGKILL)
            async with asyncio.timeout(DEADLINE):
                await p.exited.wait()


class Foreign:
    """A program on a PTY whose parent is the test (as the keeper is the parent of what a
    server runs): the PtyProcess gets the master only. `spare` is a second master
    descriptor, the keeper's own copy."""

    def __init__(self, script: str) -> None:
        master, slave = os.openpty()
        try:
            self.popen = subprocess.Popen(
                ["sh", "-c", script],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=ENV,
                start_new_session=True,
            )
        finally:
            os.close(slave)
        self.spare = os.dup(master)
        os.set_blocking(master, False)
        self.process = PtyProcess(master, self.popen.pid)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=DEADLINE)
        os.close(self.spare)
        if self.process.fd >= 0:
            self.process.release()  # a test that failed before the end: let go of the master


@pytest.fixture
def foreign() -> Iterator[Callable[[str], Foreign]]:
    made: list[Foreign] = []

    def make(script: str) -> Foreign:
        made.append(Foreign(script))
        return made[-1]

    yield make
    for f in made:
        f.close()


def unread(fd: int) -> int:
    """Bytes waiting to be read from a PTY master (FIONREAD)."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)


def read_until(fd: int, text: bytes) -> bytes:
    """Read a (non-blocking) descriptor until `text` came."""
    seen = bytearray()
    deadline = time.monotonic() + DEADLINE
    while text not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {text!r} in {bytes(seen)!r}")
        if select.select([fd], [], [], left)[0]:
            seen += os.read(fd, 4096)
    return bytes(seen)


def closed(fd: int, was: os.stat_result) -> bool:
    """`fd` no longer refers to the file it did (its number may have been reused since)."""
    try:
        now = os.fstat(fd)
    except OSError:
        return True
    return (now.st_dev, now.st_ino, now.st_rdev) != (was.st_dev, was.st_ino, was.st_rdev)


async def reaped(popen: subprocess.Popen[bytes]) -> int:
    return await asyncio.wait_for(asyncio.to_thread(popen.wait), DEADLINE)


def test_exit_code() -> None:
    assert exit_code(0) == 0 and exit_code(3) == 3
    assert exit_code(-signal.SIGKILL) == 137 and exit_code(-signal.SIGHUP) == 129


async def test_spawned_program_output_then_exit(spawn: Spawn) -> None:
    w = spawn("printf 'hello €\\n'; exit 3").start()
    assert w.process.is_child and w.process.pid > 0
    assert await w.finished() == 3
    assert w.process.returncode == 3
    assert w.output_at_exit == "hello €\r\n".encode()  # all output came before the exit


@pytest.mark.parametrize(("sig", "code"), [("TERM", 143), ("KILL", 137)])
async def test_death_by_signal_is_128_plus_n(spawn: Spawn, sig: str, code: int) -> None:
    w = spawn(f"kill -{sig} $$").start()
    assert await w.finished() == code


async def test_size_input_and_resize(spawn: Spawn) -> None:
    w = spawn("stty size; read line; echo got-$line; stty size", cols=100, rows=30).start()
    await w.see(b"30 100")
    assert get_winsize(w.process.fd) == (100, 30)
    w.process.resize(120, 40)
    w.process.write(b"abc\n")
    await w.see(b"got-abc")
    assert await w.finished() == 0
    assert w.output.endswith(b"40 120\r\n")


async def test_the_program_is_the_terminal_s_session_leader(spawn: Spawn) -> None:
    # Ctrl-C reaches the program as SIGINT: the PTY is its controlling terminal.
    w = spawn("trap 'echo got-INT; exit 5' INT; echo ready; while :; do sleep 0.01; done").start()
    await w.see(b"ready")
    w.process.write(b"\x03")
    assert await w.finished() == 5
    assert b"got-INT" in w.output


async def test_spawn_runs_in_cwd_with_default_signals_and_leaves_ours_alone(
    tmp_path: Any,
) -> None:
    # posix_spawn: the working directory is ours for a moment only; SIGPIPE, which Python
    # ignores, is the program's default again (as subprocess did); the terminal is fd 0-2.
    here = os.getcwd()
    script = "pwd; grep SigIgn /proc/$$/status; tty; echo end"
    p = PtyProcess.spawn(["sh", "-c", script], cwd=str(tmp_path), env=ENV, cols=80, rows=24)
    assert os.getcwd() == here
    w = Watch(p).start()
    assert await w.finished() == 0
    lines = bytes(w.output).decode().splitlines()
    assert lines[0] == str(tmp_path)
    ignored = int(lines[1].split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert lines[2].startswith("/dev/pts/")


@pytest.mark.parametrize(
    ("argv", "cwd", "error"),
    [
        (["no-such-program-vt"], "/", FileNotFoundError),
        (["sh", "-c", "true"], "/no/such/folder", FileNotFoundError),
        (["./plain-file"], "TMP", PermissionError),
    ],
    ids=["not-found", "no-cwd", "not-executable"],
)
def test_spawn_failures_raise_as_exec_would(
    argv: list[str], cwd: str, error: type[OSError], tmp_path: Any
) -> None:
    (tmp_path / "plain-file").write_text("no x bit, even for root\n")
    cwd = str(tmp_path) if cwd == "TMP" else cwd
    here, fds = os.getcwd(), set(os.listdir("/proc/self/fd"))
    with pytest.raises(error):
        PtyProcess.spawn(argv, cwd=cwd, env=ENV, cols=80, rows=24)
    assert os.getcwd() == here
    assert set(os.listdir("/proc/self/fd")) <= fds  # master, slave and cwd closed


async def test_staged_kill_ends_a_program_that_ignores_hup_and_term(spawn: Spawn) -> None:
    w = spawn("trap '' HUP TERM; echo ready; while :; do sleep 0.01; done").start()
    await w.see(b"ready")
    await w.process.terminate(grace=0.1 * UNIT)
    assert await w.finished() == 137
    w.process.signal(signal.SIGKILL)  # after the end: nothing to do, no error


async def test_exit_with_a_background_job_holding_the_terminal(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job keeps the terminal open (no end of output): the exit still ends the session.
    monkeypatch.setattr(process_module, "EXIT_GRACE", 0.1 * UNIT)
    w = spawn("trap '' HUP; sleep 30 & echo job=$!; exit 4").start()
    try:
        assert await w.finished() == 4
    finally:
        job = re.search(rb"job=(\d+)", w.output)
        assert job, w.output
        os.kill(int(job.group(1)), signal.SIGKILL)


async def test_write_queue_overflow(spawn: Spawn) -> None:
    w = spawn("echo ready; exec sleep 30").start()  # never reads its input
    await w.see(b"ready")
    chunk = b"x" * (1024 * 1024)
    written = 0
    with pytest.raises(InputOverflow) as raised:
        while written <= 2 * WRITE_QUEUE_LIMIT:
            w.process.write(chunk)
            written += len(chunk)
    assert WRITE_QUEUE_LIMIT - len(chunk) <= written <= WRITE_QUEUE_LIMIT + len(chunk)
    assert raised.value.status == 429
    await w.process.terminate(grace=0.1 * UNIT)
    assert await w.finished() == 129  # SIGHUP: the first stage


async def test_one_write_over_the_limit_is_refused_whole(spawn: Spawn) -> None:
    # The limit holds whatever the size of one write: a single 16 MiB + 1 write to a program
    # that does not read is refused, and none of it is typed (the echo would show it).
    w = spawn("echo ready; exec sleep 30").start()
    await w.see(b"ready")
    with pytest.raises(InputOverflow) as raised:
        w.process.write(b"x" * (WRITE_QUEUE_LIMIT + 1))
    assert raised.value.status == 429 and "16 MiB" in raised.value.message
    assert not w.process._out
    w.process.write(b"mark")
    await w.see(b"mark")
    assert b"x" not in w.output
    w.process.write(b"y" * (WRITE_QUEUE_LIMIT - 4096))  # fits: queued, never refused
    assert 0 < len(w.process._out) <= WRITE_QUEUE_LIMIT
    await w.process.terminate(grace=0.1 * UNIT)
    await w.finished()


async def test_pause_and_resume_reading(spawn: Spawn) -> None:
    w = spawn("read line; echo got-$line; read again").start()
    w.process.pause_reading()
    w.process.write(b"one\n")
    expected = b"one\r\ngot-one\r\n"  # the echo, then the program's line
    await until(lambda: unread(w.process.fd) >= len(expected), "the output in the PTY")
    assert w.output == b""  # waiting in the terminal, not read
    w.process.resume_reading()
    await w.see(expected)
    w.process.write(b"\n")
    assert await w.finished() == 0


async def test_handed_over_master_finishes_only_when_told_the_exit(
    foreign: Callable[[str], Foreign],
) -> None:
    f = foreign("echo last-words; exit 9")
    w = Watch(f.process).start()
    assert not f.process.is_child
    await w.see(b"last-words")
    assert await reaped(f.popen) == 9
    await until(lambda: f.process._eof, "the end of output")  # read to the end...
    assert w.exits == [] and not f.process.exited.is_set()  # ...but no exit code yet
    f.process.exited_with(9)  # the keeper's news
    assert w.exits == [9] and f.process.exited.is_set()
    assert w.output_at_exit == b"last-words\r\n"


async def test_exit_news_first_reads_the_output_waiting(foreign: Callable[[str], Foreign]) -> None:
    f = foreign("echo first; echo second; exit 2")
    w = Watch(f.process).start()
    f.popen.wait(timeout=DEADLINE)  # blocks the loop: nothing was read yet
    assert w.output == b""
    f.process.exited_with(2)
    assert w.exits == [2]
    assert w.output_at_exit == b"first\r\nsecond\r\n"
    f.process.exited_with(3)  # only the first news counts
    assert w.exits == [2] and f.process.returncode == 2


async def test_orphan_ends_at_the_end_of_output_with_no_code(
    foreign: Callable[[str], Foreign],
) -> None:
    f = foreign("read line; echo bye-$line")
    w = Watch(f.process).start()
    f.process.orphan()  # the keeper is gone: nobody will tell the exit
    assert w.exits == []
    f.process.write(b"now\n")
    assert await w.finished() is None
    assert b"bye-now" in w.output_at_exit
    assert f.process.returncode is None


async def test_release_lets_go_without_ending(foreign: Callable[[str], Foreign]) -> None:
    f = foreign("read line; echo still-here-$line")
    w = Watch(f.process).start()
    master = f.process.fd
    terminal = os.fstat(master)
    f.process.release()
    assert f.process.fd == -1 and w.exits == [] and not f.process.exited.is_set()
    assert closed(master, terminal)
    assert not asyncio.get_running_loop().remove_reader(master)  # no reader left behind
    f.process.write(b"ignored\n")  # released: writes are dropped
    f.process.resize(100, 30)  # and resizes too
    # The program runs on, on its terminal: the other holder talks to it.
    os.write(f.spare, b"x\n")
    assert b"still-here-x" in read_until(f.spare, b"still-here-x")
    assert await reaped(f.popen) == 0
    assert w.exits == []


async def test_paused_process_finishes_at_once_leaving_output_to_the_reader(
    foreign: Callable[[str], Foreign],
) -> None:
    # The keeper while a server reads: it must not take the server's output.
    f = foreign("echo for-the-server; exit 6")
    w = Watch(f.process).start(paused=True)
    assert await reaped(f.popen) == 6
    f.process.exited_with(6)
    assert w.exits == [6] and w.output == b"" and f.process.fd == -1
    assert read_until(f.spare, b"\n") == b"for-the-server\r\n"


async def test_a_wakeup_stops_at_a_short_read_and_the_rest_comes_next(
    spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read under SHORT_READ ends the wakeup's reads (no EAGAIN read for nothing); what
    # comes later is read at the next wakeup, so nothing is lost or reordered.
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        reads.append(fd)  # counted before it can fail
        return real_read(fd, n)

    monkeypatch.setattr(process_module.os, "read", counting_read)
    w = spawn("printf a; read x; printf b; exit 3").start()
    await w.see(b"a")
    assert reads == [w.process.fd]  # one read, not a second one failing with EAGAIN
    w.process.write(b"\n")
    await w.see(b"b")
    assert await w.finished() == 3
    assert bytes(w.output) == b"a\r\nb"
