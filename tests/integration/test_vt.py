"""`vt` in a real PTY held by the test (the test is the user's terminal), against a real server.

Every wait is a condition with a deadline in multiples of UNIT.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import UNIT, RunningServer, start_server, wait_until
from tests.integration.wsclient import TermClient
from vibetunnel.auth.secret import load_or_create_secret
from vibetunnel.auth.tokens import TokenService
from vibetunnel.vt.link import NOT_SHARED

VT = [sys.executable, "-m", "vibetunnel.cli.vt"]


def _controlling_tty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def vt_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIBETUNNEL_SESSION_ID"}
    env.update(VIBETUNNEL_HOME=str(home), **extra)
    return env


class Terminal:
    """A PTY pair: vt runs on the slave as its controlling terminal; the test reads the master."""

    def __init__(self, cols: int = 100, rows: int = 30) -> None:
        self.master, self.slave = os.openpty()
        set_size(self.slave, cols, rows)
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.proc: subprocess.Popen[bytes] | None = None

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._buf += data

    def stty(self) -> str:
        """`stty -g` of the terminal: every setting, as the user's shell would restore it."""
        return subprocess.run(
            ["stty", "-g"], stdin=self.slave, capture_output=True, text=True, check=True
        ).stdout.strip()

    def run(self, args: list[str], env: dict[str, str]) -> Terminal:
        self.proc = subprocess.Popen(
            [*VT, *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
            preexec_fn=_controlling_tty,
            env=env,
        )
        return self

    @property
    def text(self) -> str:
        with self._lock:
            return self._buf.decode("utf-8", "replace")

    def expect(self, text: str, timeout: float = 10 * UNIT) -> None:
        try:
            wait_until(lambda: text in self.text, timeout, f"{text!r} on the terminal")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; terminal so far: {self.text[-800:]!r}") from None

    def type(self, data: str) -> None:
        os.write(self.master, data.encode())

    def raw(self) -> bool:
        """Whether vt has put the terminal in raw mode (no echo, no line editing)."""
        lflag = termios.tcgetattr(self.slave)[3]
        return not lflag & (termios.ECHO | termios.ICANON)

    def wait(self, timeout: float = 10 * UNIT) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"vt did not exit; terminal: {self.text[-800:]!r}") from None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stop.set()
        self._reader.join()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def term() -> Iterator[Terminal]:
    t = Terminal()
    try:
        yield t
    finally:
        t.close()


def sessions(server: RunningServer, token: str | None = None) -> list[dict[str, Any]]:
    with server.client(token) as api:
        r = api.get("/api/sessions")
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()
    return result


def session_named(
    server: RunningServer, name: str, token: str | None = None, timeout: float = 10 * UNIT
) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next((s for s in sessions(server, token) if s["name"] == name), None)

    found: dict[str, Any] = wait_until(find, timeout, f"session {name!r} listed")
    return found


def ws_url(server: RunningServer, sid: str, token: str | None = None) -> str:
    url = f"{server.ws_url}/api/sessions/{sid}/ws"
    return f"{url}?token={token}" if token else url


# A program that says something, then echoes back what it is given, line by line.
ECHO = 'echo "hello-$((6*7))"; while read -r line; do echo "got:$line"; done; exit 7'


async def test_local_command_is_shared_both_ways(
    shared_server: RunningServer, term: Terminal
) -> None:
    before = term.stty()
    term.run(["--name", "shared", "sh", "-c", ECHO], vt_env(shared_server.home))
    term.expect("hello-42")
    assert term.raw()
    s = session_named(shared_server, "shared")
    assert (s["command"], s["args"], s["status"]) == ("sh", ["-c", ECHO], "running")
    assert (s["cols"], s["rows"]) == (100, 30)  # the local terminal's size
    t = await TermClient.connect(ws_url(shared_server, s["id"]))
    await t.see("hello-42")
    await t.type("from-browser\r")
    term.expect("got:from-browser")  # reached the command as if typed locally
    await t.see("got:from-browser")
    term.type("local\r")
    await t.see("got:local")
    term.type("\x04")  # Ctrl-D: end of input
    assert term.wait() == 7
    assert await t.closed() == (1000, "session ended")
    assert t.messages[-1] == {"type": "exit", "code": 7}
    assert term.stty() == before
    with shared_server.client() as api:
        listed = api.get(f"/api/sessions/{s['id']}").json()
    assert (listed["status"], listed["exitCode"]) == ("exited", 7)  # set before the close
    # vt recorded the session itself, once, and the server indexed it.
    cast = (shared_server.home / "recordings" / f"{s['id']}.cast").read_text().splitlines()
    header = json.loads(cast[0])
    assert (header["width"], header["height"], header["title"]) == (100, 30, "shared")
    output = "".join(e[2] for e in map(json.loads, cast[1:]) if e[1] == "o")
    assert "hello-42" in output and "got:from-browser" in output and "got:local" in output

    def indexed() -> dict[str, Any] | None:
        with shared_server.client() as api:
            entries = api.get("/api/recordings").json()
        entry = next((e for e in entries if e["id"] == s["id"]), None)
        return entry if entry is not None and entry["exitCode"] == 7 else None

    wait_until(indexed, what="recording indexed with its exit code")


async def test_exit_code_and_terminal_restored(
    shared_server: RunningServer, term: Terminal
) -> None:
    before = term.stty()
    term.run(["sh", "-c", "echo started; read x; exit 42"], vt_env(shared_server.home))
    term.expect("started")
    wait_until(term.raw, what="raw mode")
    assert term.stty() != before
    term.type("\r")
    assert term.wait() == 42
    assert term.stty() == before


async def test_ctrl_c_of_the_program_restores(shared_server: RunningServer, term: Terminal) -> None:
    before = term.stty()
    term.run(["sh", "-c", "echo ready; exec sleep 100"], vt_env(shared_server.home))
    term.expect("ready")
    term.type("\x03")  # raw mode: the byte goes to the program's PTY, which interrupts it
    assert term.wait() == 128 + signal.SIGINT
    assert term.stty() == before


async def test_sigterm_to_vt_restores_and_ends_the_program(
    shared_server: RunningServer, term: Terminal
) -> None:
    before = term.stty()
    term.run(
        ["--name", "termed", "sh", "-c", "echo ready; exec sleep 100"], vt_env(shared_server.home)
    )
    term.expect("ready")
    session_named(shared_server, "termed")
    assert term.proc is not None
    term.proc.send_signal(signal.SIGTERM)
    assert term.wait() == 128 + signal.SIGTERM
    assert term.stty() == before


async def test_delete_from_the_server_ends_the_program(
    shared_server: RunningServer, term: Terminal
) -> None:
    before = term.stty()
    term.run(
        ["--name", "deleted", "sh", "-c", "echo ready; exec sleep 100"], vt_env(shared_server.home)
    )
    term.expect("ready")
    s = session_named(shared_server, "deleted")
    with shared_server.client() as api:
        assert api.delete(f"/api/sessions/{s['id']}").status_code == 204
        assert api.get(f"/api/sessions/{s['id']}").status_code == 404
    assert term.wait() == 128 + signal.SIGHUP
    assert term.stty() == before


async def test_a_vt_session_keeps_its_terminals_size(
    shared_server: RunningServer, term: Terminal
) -> None:
    script = "trap 'echo winch $(stty size)' WINCH; echo ready; while :; do sleep 0.05; done"
    term.run(["--name", "sized", "sh", "-c", script], vt_env(shared_server.home))
    term.expect("ready")
    s = session_named(shared_server, "sized")
    t = await TermClient.connect(ws_url(shared_server, s["id"]))
    await t.resize(120, 40)  # a browser resize: not the browser's to make
    await t.send({"type": "ping"})
    await t.until(lambda c: {"type": "pong"} in c.messages, what="the pong after the resize")
    with shared_server.client() as api:
        r = api.post(f"/api/sessions/{s['id']}/resize", json={"cols": 100, "rows": 30})
        assert r.status_code == 200 and (r.json()["cols"], r.json()["rows"]) == (
            s["cols"],
            s["rows"],
        )
    set_size(term.slave, 90, 20)  # the local terminal: SIGWINCH to vt
    term.expect("winch 20 90")
    assert "winch 40 120" not in term.text and "winch 30 100" not in term.text
    wait_until(
        lambda: next(x for x in sessions(shared_server) if x["id"] == s["id"])["cols"] == 90,
        what="server sees the local size",
    )
    assert term.proc is not None
    term.proc.send_signal(signal.SIGTERM)
    term.wait()


async def test_nested_vt_is_refused(shared_server: RunningServer, term: Terminal) -> None:
    inner = " ".join([*VT, "true"])
    script = f"echo outer; {inner}; echo nested-exit:$?"
    term.run(["sh", "-c", script], vt_env(shared_server.home))
    term.expect("nested-exit:1")
    assert "nested vt is not supported" in term.text
    assert "already inside VibeTunnel session" in term.text
    assert term.wait() == 0


async def test_list(shared_server: RunningServer, term: Terminal) -> None:
    term.run(
        ["--name", "listed", "sh", "-c", "echo ready; exec sleep 100"], vt_env(shared_server.home)
    )
    term.expect("ready")
    s = session_named(shared_server, "listed")
    out = subprocess.run(
        [*VT, "--list"],
        env=vt_env(shared_server.home),
        capture_output=True,
        text=True,
        timeout=10 * UNIT,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATUS", "CLIENTS", "COMMAND"]
    row = next(line for line in lines if s["id"] in line)
    assert "listed" in row and "running" in row
    assert term.proc is not None
    term.proc.send_signal(signal.SIGTERM)
    term.wait()


def test_list_without_server(tmp_path: Path) -> None:
    out = subprocess.run(
        [*VT, "--list"], env=vt_env(tmp_path), capture_output=True, text=True, timeout=10 * UNIT
    )
    assert out.returncode == 1
    assert "no VibeTunnel server running" in out.stderr


async def test_with_auth(tmp_path: Path, term: Terminal) -> None:
    home = tmp_path / "home"
    srv = start_server(home)
    try:
        token = TokenService(load_or_create_secret(home)).issue("test", ttl=600)
        with srv.client() as anonymous:
            assert anonymous.get("/api/sessions").status_code == 401
        term.run(["--name", "authed", "sh", "-c", ECHO], vt_env(home))
        term.expect("hello-42")
        s = session_named(srv, "authed", token)
        t = await TermClient.connect(ws_url(srv, s["id"], token))
        await t.see("hello-42")
        await t.type("secret-ok\r")
        term.expect("got:secret-ok")
        out = subprocess.run(
            [*VT, "--list"], env=vt_env(home), capture_output=True, text=True, timeout=10 * UNIT
        )
        assert out.returncode == 0 and s["id"] in out.stdout, out.stderr
        term.type("\x04")
        assert term.wait() == 7
    finally:
        srv.stop()


async def test_host_socket_needs_a_token(tmp_path: Path) -> None:
    home = tmp_path / "home"
    srv = start_server(home)
    try:
        t = await TermClient.connect(f"{srv.ws_url}/api/host")
        code, _ = await t.closed()
        assert code == 1008
    finally:
        srv.stop()


async def test_no_server_then_server_starts(tmp_path: Path, term: Terminal) -> None:
    home = tmp_path / "home"
    home.mkdir()
    before = term.stty()
    term.run(["--name", "late", "sh", "-c", ECHO], vt_env(home))
    term.expect("hello-42")
    term.expect(NOT_SHARED)
    term.type("while-alone\r")
    term.expect("got:while-alone")
    srv = start_server(home, "--no-auth")
    try:
        s = session_named(srv, "late")
        t = await TermClient.connect(ws_url(srv, s["id"]))
        # Nothing produced before the server existed is lost.
        await t.see("got:while-alone")
        assert "hello-42" in t.output
        await t.type("now-shared\r")
        term.expect("got:now-shared")
        await t.see("got:now-shared")
        term.type("\x04")
        assert term.wait() == 7
        assert await t.closed() == (1000, "session ended")
    finally:
        srv.stop()
    assert term.text.count("no VibeTunnel server running") == 1  # said once, despite retries
    assert term.stty() == before
    # Recorded from the start although no server was there.
    cast = (home / "recordings" / f"{s['id']}.cast").read_text()
    assert "hello-42" in cast and "got:now-shared" in cast


async def test_a_screen_bigger_than_a_message_registers_whole(
    tmp_path: Path, term: Terminal
) -> None:
    # 800 KB of escape sequences: JSON-escaped in one register message, 1.8 MB, past the
    # server's 1 MiB per message. vt sends its screen as frames instead.
    home = tmp_path / "home"
    home.mkdir()
    program = "import sys; sys.stdout.write('\\x1b[0m' * 200000 + 'END-OF-SCREEN\\n'); input()"
    term.run(["--name", "styled", sys.executable, "-c", program], vt_env(home))
    term.expect("END-OF-SCREEN")
    srv = start_server(home, "--no-auth")
    try:
        s = session_named(srv, "styled")
        t = await TermClient.connect(ws_url(srv, s["id"]))
        await t.see("END-OF-SCREEN")
        assert t.output.count("\x1b[0m") == 200000
        term.type("\r")
        assert term.wait() == 0
    finally:
        srv.stop()


async def test_server_restart_in_the_middle(server: RunningServer, term: Terminal) -> None:
    shared_server = server
    term.run(["--name", "survivor", "sh", "-c", ECHO], vt_env(shared_server.home))
    term.expect("hello-42")
    s = session_named(shared_server, "survivor")
    t = await TermClient.connect(ws_url(shared_server, s["id"]))
    await t.type("first\r")
    await t.see("got:first")
    shared_server.stop(keep_sessions=True)
    code, _ = await t.closed()
    assert code in (1001, 1012)  # the server went away: the browser reconnects
    term.type("while-down\r")  # the program keeps running in the local terminal
    term.expect("got:while-down")
    shared_server.start()  # same port, same home
    again = session_named(shared_server, "survivor")
    assert again["id"] == s["id"] and again["pid"] == s["pid"]
    t2 = await TermClient.connect(ws_url(shared_server, s["id"]))
    await t2.see("got:while-down")
    assert "hello-42" in t2.output and "got:first" in t2.output
    await t2.type("second\r")
    term.expect("got:second")
    await t2.see("got:second")
    term.type("\x04")
    assert term.wait() == 7
    assert await t2.closed() == (1000, "session ended")
    assert NOT_SHARED not in term.text  # a reconnection is silent


async def test_host_rejects_bad_messages(shared_server: RunningServer) -> None:
    t = await TermClient.connect(f"{shared_server.ws_url}/api/host")
    await t.send({"type": "input", "data": "x"})
    code, reason = await t.closed()
    assert code == 1003 and "register" in reason
    # Registered, then a broken frame: closed, and the session is forgotten.
    register = {
        "type": "register",
        "id": "bad-host-1",
        "name": "bad-host",
        "command": "sh",
        "args": [],
        "cwd": "/",
        "cols": 80,
        "rows": 24,
        "pid": os.getpid(),
        "createdAt": 1700000000.0,
        "screen": "before\r\n",
    }
    t = await TermClient.connect(f"{shared_server.ws_url}/api/host")
    await t.send(register)
    session_named(shared_server, "bad-host")
    await t.ws.send(b"\xbf\x00\x00\x00\x09short")
    code, reason = await t.closed()
    assert code == 1003 and "frame" in reason
    wait_until(
        lambda: all(s["id"] != "bad-host-1" for s in sessions(shared_server)), what="forgotten"
    )


def test_piped_stdin_without_a_terminal(shared_server: RunningServer) -> None:
    out = subprocess.run(
        [*VT, "sh", "-c", "read x; echo got:$x; exit 3"],
        input="piped\n",
        env=vt_env(shared_server.home),
        capture_output=True,
        text=True,
        timeout=10 * UNIT,
    )
    assert out.returncode == 3, out.stderr
    assert "got:piped" in out.stdout


async def test_refused_by_the_server_says_so_once(tmp_path: Path, term: Terminal) -> None:
    home = tmp_path / "home"
    srv = start_server(home)
    try:
        wrong = vt_env(home, VIBETUNNEL_JWT_SECRET="not-the-server-secret-" + "x" * 20)
        term.run(["sh", "-c", "echo ready; read x; exit 0"], wrong)
        term.expect("ready")
        term.expect("the server refused this session")
        term.type("\r")
        assert term.wait() == 0
        assert term.text.count("refused") == 1
    finally:
        srv.stop()


async def test_a_registration_without_a_recording_leaves_no_entry(
    shared_server: RunningServer,
) -> None:
    # A fake vt registers (it writes no .cast) and goes: every registration used to stay in
    # the recordings index, in memory and in metadata.json, however many came.
    ids = [f"no-file-{n}" for n in range(3)]
    for n, sid in enumerate(ids):
        register = {
            "type": "register",
            "id": sid,
            "name": "no-file",
            "command": "sh",
            "args": [],
            "cwd": "/",
            "cols": 80,
            "rows": 24,
            "pid": os.getpid(),
            "createdAt": 1700000000.0,
            "screen": "",
        }
        t = await TermClient.connect(f"{shared_server.ws_url}/api/host")
        await t.send(register)
        wait_until(
            lambda: any(s["id"] == sid for s in sessions(shared_server)),  # noqa: B023
            what=f"{sid} registered",
        )
        if n == 0:
            await t.send({"type": "exit", "code": 0})  # ended
            assert await t.closed() == (1000, "session ended")
        elif n == 1:
            await t.ws.send(b"not a frame")  # refused
            assert (await t.closed())[0] == 1003
        else:
            await t.ws.close()  # dropped

    def listed() -> set[str]:
        with shared_server.client() as api:
            return {e["id"] for e in api.get("/api/recordings").json()} & set(ids)

    wait_until(lambda: not listed(), what="no entry left by registrations without a file")


async def test_vt_ends_its_recording_at_the_servers_size_and_says_so(
    tmp_path: Path, term: Terminal
) -> None:
    home = tmp_path / "home"
    srv = start_server(home, "--no-auth", "--max-recording-size", "64K", "--rate-limit", "100000")
    stopped = "recording stopped at its size limit of 64 KiB (--max-recording-size)"
    program = (
        "import itertools, time\n"
        "for i in itertools.count():\n"
        "    print(f'line-{i:07}', flush=True)\n"
        "    if i % 50 == 0:\n"
        "        time.sleep(0.005)\n"
    )
    try:
        term.run(["--name", "printer", sys.executable, "-c", program], vt_env(home))
        sid = session_named(srv, "printer")["id"]

        def said() -> dict[str, Any] | None:
            shown = next(s for s in sessions(srv) if s["id"] == sid)
            return shown if shown["recordingError"] is not None else None

        shown = wait_until(said, 10 * UNIT, "the session to say its recording ended")
        assert (shown["status"], shown["recording"], shown["recordingError"]) == (
            "running",
            False,
            stopped,
        )
        path = home / "recordings" / f"{sid}.cast"
        data = path.read_bytes()
        assert len(data) <= 64 * 1024 and data.endswith(f'"{stopped}"]\n'.encode())
        last = json.loads(data.splitlines()[-2])[2]  # the last output recorded
        # The event that did not fit was cut to fit: its last line may end mid-number.
        whole = re.findall(r"line-(\d{7})", last)
        recorded = int(whole[-1]) if whole else 0
        term.expect(f"line-{recorded + 3000:07}", 20 * UNIT)  # the program runs on
        # A server started later hears it in vt's registration.
        srv.restart()
        again = session_named(srv, "printer")
        assert (again["id"], again["recording"], again["recordingError"]) == (sid, False, stopped)
        assert path.read_bytes() == data
    finally:
        srv.stop()  # vt is killed by the fixture
