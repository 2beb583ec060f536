"""Sessions outlive the server: restarts, crashes, exits while no server runs, `stop`.

Real servers, a real keeper, real bash: the keeper is the programs' parent and holds their
terminals; each server is handed the terminals when it starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import UNIT, RunningServer, create, processes_of, start_server, wait_until
from tests.integration.test_recordings import asciinema_cat, cast_path, output_of, read_cast
from tests.integration.wsclient import TermClient
from vibetunnel.files import private_dir, write_private
from vibetunnel.keeper.channel import recv_messages, send_message
from vibetunnel.keeper.client import alive, connect, keeper_pid
from vibetunnel.keeper.wire import PROTOCOL

BASH = {"command": "/bin/bash", "args": ["--norc", "--noprofile"], "env": {"PS1": "$ "}}


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "home", "--no-auth")
    try:
        yield server
    finally:
        server.stop()  # and the keeper, and every session
        assert processes_of(server.home) == [], "nothing of this home is left running"


def session(srv: RunningServer, sid: str) -> dict[str, Any]:
    with srv.client() as api:
        r = api.get(f"/api/sessions/{sid}")
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


def ws(srv: RunningServer, sid: str) -> str:
    return f"{srv.ws_url}/api/sessions/{sid}/ws"


def vibetunnel(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibetunnel", *args],
        env={**os.environ, "VIBETUNNEL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60 * UNIT,
        check=False,
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_shell_variables_survive_the_server(srv: RunningServer, sig: int) -> None:
    with srv.client() as api:
        s = create(api, **BASH)
    t = await TermClient.connect(ws(srv, s["id"]))
    await t.see("$ ")
    await t.type("X=$((6*7)); echo set-$X\r")
    await t.see("set-42")
    if sig == signal.SIGKILL:
        # A kill loses what the recording had not written yet (a few ms): the keeper
        # rebuilds the screen from the recording.
        cast = cast_path(srv.home, s["id"])
        wait_until(lambda: b"set-42" in cast.read_bytes(), what="the output recorded")
    srv.restart(sig)
    code, _ = await t.closed()
    assert code in (1001, 1006)  # the page reconnects on both
    again = session(srv, s["id"])
    assert again["status"] == "running" and again["pid"] == s["pid"]
    t2 = await TermClient.connect(ws(srv, s["id"]))
    await t2.see("set-42")  # the screen is replayed
    await t2.type("echo still-$X\r")
    await t2.see("still-42")
    with srv.client() as api:
        r = api.post(f"/api/sessions/{s['id']}/resize", json={"cols": 100, "rows": 30})
        assert r.status_code == 200
    await t2.type("stty size\r")
    await t2.see("30 100")


async def test_output_while_no_server_reaches_replay_and_recording(srv: RunningServer) -> None:
    with srv.client() as api:
        s = create(api, **BASH)
    t = await TermClient.connect(ws(srv, s["id"]))
    await t.see("$ ")
    # Prints while no server runs: every line must be in the replay and the .cast.
    await t.type("sleep 1; for i in $(seq 1 2000); do echo line-$i; done; echo done-$((1+1))\r")
    await t.see("echo done-$((1+1))")  # the shell has it
    srv.stop(signal.SIGKILL, keep_sessions=True)
    cast = cast_path(srv.home, s["id"])
    wait_until(lambda: b"done-2" in cast.read_bytes(), 10 * UNIT, "the keeper recording")
    srv.start()
    t2 = await TermClient.connect(ws(srv, s["id"]))
    await t2.see("done-2")
    assert "line-1999\r\nline-2000\r\ndone-2" in t2.output
    _, events = read_cast(cast)
    out = output_of(events)
    assert "line-1\r\n" in out and "line-1999\r\nline-2000\r\ndone-2" in out
    times = [e[0] for e in events]
    assert times == sorted(times), "event times never go back"
    assert times[-1] >= 1.0, "times are real: the sleep is in them"
    assert "done-2" in asciinema_cat(cast)


async def test_exit_while_no_server_keeps_its_code(srv: RunningServer) -> None:
    with srv.client() as api:
        s = create(api, **BASH)
    t = await TermClient.connect(ws(srv, s["id"]))
    await t.see("$ ")
    await t.type("sleep 0.5; echo bye-now; exit 7\r")
    await t.see("exit 7")  # the shell has it
    srv.stop(signal.SIGTERM, keep_sessions=True)
    wait_until(lambda: not alive(s["pid"]), 10 * UNIT, "the program's exit")
    srv.start()
    gone = session(srv, s["id"])
    assert gone["status"] == "exited" and gone["exitCode"] == 7 and gone["exitedAt"]
    assert gone["lost"] is None
    t2 = await TermClient.connect(ws(srv, s["id"]))
    assert await t2.closed() == (1000, "session ended")
    assert "bye-now" in t2.output  # its last screen, from its recording
    assert {"type": "exit", "code": 7} in t2.messages
    with srv.client() as api:
        # The index learns the end on its worker thread, as it learns every end.
        def recorded_code() -> object:
            (rec,) = [e for e in api.get("/api/recordings").json() if e["id"] == s["id"]]
            return rec["exitCode"]

        wait_until(lambda: recorded_code() == 7, what="exit code 7 in the recordings index")
        assert api.delete(f"/api/sessions/{s['id']}").status_code == 204
    srv.restart()
    with srv.client() as api:
        assert api.get(f"/api/sessions/{s['id']}").status_code == 404  # forgotten


async def test_stop_sessions_leaves_no_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    srv = start_server(home, "--no-auth")
    try:
        with srv.client() as api:
            pids = [create(api, **BASH)["pid"] for _ in range(3)]
            ignores_hup = create(api, command="/bin/sh", args=["-c", "trap '' HUP; sleep 600"])
        keeper = keeper_pid(home)
        assert keeper is not None and all(alive(p) for p in pids)
        assert srv.process is not None
        server_pid = srv.process.pid
        done = vibetunnel(home, "stop")
        assert done.returncode == 0, done.stderr
        assert f"stopped the server (pid {server_pid})" in done.stdout
        assert srv.process.wait(timeout=10 * UNIT) == 0 and not (home / "server.json").exists()
        assert "4 session(s) keep running" in done.stdout
        assert all(alive(p) for p in pids) and alive(keeper)
        done = vibetunnel(home, "stop", "--sessions")
        assert done.returncode == 0, done.stderr
        assert "ended 4 session(s)" in done.stdout
        assert not alive(ignores_hup["pid"]) and not alive(keeper)
        assert processes_of(home) == []
        assert not (home / "keeper.sock").exists()
        table = json.loads((home / "sessions.json").read_text())
        assert all(e["exitedAt"] is not None for e in table["sessions"])
    finally:
        srv.stop()


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def stale_home(tmp_path: Path, pid: int) -> Path:
    """A home a killed server left: server.json and server.lock name `pid`, now anyone's."""
    home = tmp_path / "home"
    private_dir(home)
    write_private(
        home / "server.json", json.dumps({"url": "http://127.0.0.1:1", "pid": pid}).encode()
    )
    write_private(home / "server.lock", str(pid).encode())
    return home


def test_stop_leaves_a_stale_pid_alone(tmp_path: Path) -> None:
    unrelated = subprocess.Popen(["sleep", "600"])
    try:
        home = stale_home(tmp_path, unrelated.pid)
        done = vibetunnel(home, "stop")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("vibetunnel: no server running")
        assert f"server.json named pid {unrelated.pid}" in done.stdout
        assert unrelated.poll() is None, "the unrelated process was signalled"
        assert not (home / "server.json").exists()  # stale: removed
    finally:
        unrelated.kill()
        unrelated.wait()


def test_stop_signals_the_holder_of_the_lock_not_a_pid_on_file(tmp_path: Path) -> None:
    unrelated = subprocess.Popen(["sleep", "600"])
    home = stale_home(tmp_path, unrelated.pid)
    # A server that holds the lock but has not written server.json yet (it is starting).
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(home / "server.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        done = vibetunnel(home, "stop")
        assert done.returncode == 0, done.stderr
        assert f"stopped the server (pid {holder.pid})" in done.stdout
        assert holder.wait(timeout=10 * UNIT) == -signal.SIGTERM
        assert unrelated.poll() is None
    finally:
        for process in (holder, unrelated):
            process.kill()
            process.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def test_keeper_starts_with_the_first_session(srv: RunningServer) -> None:
    # Idle, the server is alone: no keeper, and none of cryptography's native code mapped.
    assert srv.process is not None
    assert keeper_pid(srv.home) is None and not (srv.home / "keeper.sock").exists()
    assert [p.split()[0] for p in processes_of(srv.home)] == [str(srv.process.pid)]
    assert "/cryptography/" not in Path(f"/proc/{srv.process.pid}/maps").read_text()
    # Three first sessions at once: one keeper is started, and holds all three.
    with srv.client() as api, ThreadPoolExecutor(3) as pool:
        made = list(pool.map(lambda _: create(api, command="cat"), range(3)))
    keeper = keeper_pid(srv.home)
    assert keeper is not None
    assert {parent_of(s["pid"]) for s in made} == {keeper}


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])


async def test_server_stop_says_sessions_keep_running(srv: RunningServer) -> None:
    with srv.client() as api:
        create(api, **BASH)
    assert srv.stop(signal.SIGTERM, keep_sessions=True) == 0
    assert any("1 session(s) keep running" in line for line in srv.output)
    assert any("vibetunnel stop --sessions" in line for line in srv.output)


async def test_killed_keeper_is_reported(srv: RunningServer) -> None:
    with srv.client() as api:
        s = create(api, **BASH)
    t = await TermClient.connect(ws(srv, s["id"]))
    await t.see("$ ")
    keeper = keeper_pid(srv.home)
    assert keeper is not None
    os.kill(keeper, signal.SIGKILL)
    lost = wait_until(lambda: session(srv, s["id"])["lost"], 5 * UNIT, "the session marked lost")
    assert f"keeper (pid {keeper})" in lost and "exit code" in lost
    await t.type("echo usable-$((3+3))\r")  # this server still holds its terminal
    await t.see("usable-6")
    # A new session gets a new keeper, which reports the old one's session as lost too.
    with srv.client() as api:
        fresh = create(api, **BASH)
    assert keeper_pid(srv.home) not in (None, keeper)
    srv.restart()
    old = session(srv, s["id"])
    assert old["status"] == "exited" and old["exitCode"] is None
    assert f"keeper (pid {keeper})" in old["lost"]
    assert session(srv, fresh["id"])["status"] == "running"


async def test_two_servers_on_one_home_refuse_cleanly(srv: RunningServer) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "vibetunnel", "serve", "--no-auth", "--port", "0"],
        env={**os.environ, "VIBETUNNEL_HOME": str(srv.home)},
        capture_output=True,
        text=True,
        timeout=30 * UNIT,
        check=False,
    )
    assert second.returncode == 1
    assert f"another server (pid {srv.process.pid if srv.process else 0})" in second.stderr
    assert "is running with this home" in second.stderr
    with srv.client() as api:
        assert api.get("/api/health").status_code == 200  # the first one is unharmed


def test_keeper_of_another_protocol_is_refused_clearly(srv: RunningServer) -> None:
    with srv.client() as api:
        create(api, **BASH)  # the first session starts the keeper
    sock = connect(srv.home)
    assert sock is not None
    with sock:
        send_message(sock, {"type": "hello", "protocol": 999, "pid": os.getpid()})
        ((answer, _),) = recv_messages(sock, lambda m: True, 5 * UNIT)
    assert answer["type"] == "refused"
    assert f"protocol {PROTOCOL}, not 999" in answer["why"]
    with srv.client() as api:
        assert api.get("/api/health").status_code == 200  # the attached server is unharmed


def test_a_rename_outlives_the_server(srv: RunningServer) -> None:
    with srv.client() as api:
        s = create(api, **BASH)
        r = api.patch(f"/api/sessions/{s['id']}", json={"name": "deploy watch"})
        assert r.status_code == 200 and r.json()["name"] == "deploy watch"
        assert api.patch(f"/api/sessions/{s['id']}", json={"name": ""}).status_code == 400
        assert api.patch(f"/api/sessions/{s['id']}", json={"title": "x"}).status_code == 400
        missing = "00000000-0000-4000-8000-000000000000"
        assert api.patch(f"/api/sessions/{missing}", json={"name": "x"}).status_code == 404
    srv.restart(signal.SIGKILL)
    assert session(srv, s["id"])["name"] == "deploy watch"
