"""Recordings against a real server, real PTYs and real files: the .cast format as the real
`asciinema` reads it, the index, the API, path traversal, crashes and restarts."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import UNIT, RunningServer, create, start_server, wait_until
from tests.integration.wsclient import TermClient
from vibetunnel.protocol.times import iso, unix

SH = "/bin/sh"
CAST_TYPE = "application/x-asciicast"


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    """Servers a test starts itself (on its own home); every one is stopped afterwards."""
    started: list[RunningServer] = []
    yield started
    for srv in started:
        srv.stop()


def own_server(servers: list[RunningServer], home: Path, *args: str) -> RunningServer:
    srv = start_server(home, "--no-auth", *args)
    servers.append(srv)
    return srv


def cast_path(home: Path, rid: str) -> Path:
    return home / "recordings" / f"{rid}.cast"


def ws_url(server: RunningServer, sid: str) -> str:
    return f"{server.ws_url}/api/sessions/{sid}/ws"


def entry(api: httpx.Client, rid: str) -> dict[str, Any] | None:
    r = api.get("/api/recordings")
    assert r.status_code == 200, r.text
    found = [e for e in r.json() if e["id"] == rid]
    return found[0] if found else None


def ended(api: httpx.Client, rid: str, timeout: float = 5 * UNIT) -> dict[str, Any]:
    """The index entry of `rid` once its end (and so its whole file) is recorded."""
    found: dict[str, Any] = wait_until(
        lambda: (e := entry(api, rid)) is not None and e["exitCode"] is not None and e,
        timeout,
        f"recording {rid} finished in the index",
    )
    return found


def read_cast(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """Header and events of a whole .cast file: every line complete and valid JSON."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the file ends with a whole line"
    lines = data.decode("utf-8").split("\n")[:-1]
    header = json.loads(lines[0])
    events = [json.loads(line) for line in lines[1:]]
    for event in events:
        assert isinstance(event, list) and len(event) == 3
        assert isinstance(event[0], int | float) and event[0] >= 0
        assert event[1] in ("o", "i", "r", "m") and isinstance(event[2], str)
    times = [e[0] for e in events]
    assert times == sorted(times), "event times never go back"
    return header, events


def output_of(events: list[list[Any]]) -> str:
    return "".join(e[2] for e in events if e[1] == "o")


def asciinema_cat(path: Path) -> str:
    """The file as the real asciinema 2.x player prints it."""
    done = subprocess.run(
        [sys.executable, "-m", "asciinema", "cat", str(path)],
        capture_output=True,
        timeout=30 * UNIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8", errors="replace")


def assert_error_404(response: httpx.Response) -> None:
    assert response.status_code == 404, (response.request.url, response.text)
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "requestId"}
    assert all(isinstance(v, str) for v in body["error"].values())


def raw_request(server: RunningServer, method: str, target: str) -> tuple[int, bytes]:
    """One HTTP/1.1 request with `target` sent byte for byte: no client normalises it."""
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port), timeout=10 * UNIT) as sock:
        request = f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
    length = int(headers.get(b"content-length", b"-1").strip() or -1)
    if length >= 0:
        assert len(body) == length
    return status, body


# -- the file format -----------------------------------------------------------------------


def test_cast_header_and_events_read_by_asciinema(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    script = "echo hello-$((6*7)); printf 'caf\\303\\251\\n'"
    s = create(api, name="greeting", cols=100, rows=30, command=SH, args=["-c", script])
    rid = s["id"]
    e = ended(api, rid)
    assert e["exitCode"] == 0
    line = shlex.join([SH, "-c", script])  # quoted as a shell reads it back, as vt writes it
    assert (e["name"], e["size"], e["command"]) == ("greeting", "100x30", line)
    assert e["argv"] == [SH, "-c", script]
    path = cast_path(shared_server.home, rid)
    header, events = read_cast(path)
    assert header["version"] == 2
    assert (header["width"], header["height"]) == (100, 30)
    assert isinstance(header["timestamp"], int)
    assert abs(header["timestamp"] - unix(s["createdAt"])) <= 1
    assert set(header["env"]) >= {"SHELL", "TERM"}
    assert header["env"]["TERM"] == "xterm-256color"
    assert header["command"] == line
    assert header["title"] == "greeting"
    assert {e[1] for e in events} == {"o"}
    assert "hello-42" in output_of(events) and "café" in output_of(events)
    played = asciinema_cat(path)
    assert "hello-42" in played and "café" in played


def test_api_serves_the_file_and_lists_it(shared_server: RunningServer, api: httpx.Client) -> None:
    s = create(api, command=SH, args=["-c", "echo served-$((2+3))"])
    e = ended(api, s["id"])
    r = api.get(f"/api/recordings/{s['id']}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == CAST_TYPE
    assert r.content == cast_path(shared_server.home, s["id"]).read_bytes()
    assert e["bytes"] == len(r.content)
    assert "served-5" in r.text
    listed = api.get("/api/recordings").json()
    assert [x["id"] for x in listed].count(s["id"]) == 1
    assert set(e) == {
        "id",
        "name",
        "command",
        "argv",
        "cwd",
        "size",
        "startedAt",
        "endedAt",
        "duration",
        "exitCode",
        "bytes",
    }


def test_exit_code_and_end_reach_the_index(api: httpx.Client) -> None:
    s = create(api, command=SH, args=["-c", "exit 7"])
    e = ended(api, s["id"])
    assert e["exitCode"] == 7
    assert e["endedAt"] is not None and e["endedAt"] >= e["startedAt"]
    assert e["duration"] is not None and e["duration"] >= 0


def test_running_session_is_listed_without_an_end(api: httpx.Client) -> None:
    s = create(api, command=SH, args=["-c", "exec sleep 100"])
    try:
        e = wait_until(lambda: entry(api, s["id"]), what="entry of a running session")
        assert (e["endedAt"], e["exitCode"]) == (None, None)
    finally:
        assert api.delete(f"/api/sessions/{s['id']}").status_code == 204
    # Deleting the session ends it; its recording stays.
    e = ended(api, s["id"])
    assert e["endedAt"] is not None


async def test_resize_message_becomes_an_r_event(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    # The trap interrupts `read`: read again until a line comes.
    script = "trap 'echo winch $(stty size)' WINCH; echo ready; until read x; do :; done; echo bye"
    s = create(api, command=SH, args=["-c", script])
    t = await TermClient.connect(ws_url(shared_server, s["id"]))
    await t.see("ready")
    await t.resize(120, 40)
    await t.see("winch 40 120")
    await t.type("\r")
    await t.closed()
    ended(api, s["id"])
    _, events = read_cast(cast_path(shared_server.home, s["id"]))
    resizes = [e for e in events if e[1] == "r"]
    assert [e[2] for e in resizes] == ["120x40"]
    # The resize comes before the output it caused.
    winch = next(i for i, e in enumerate(events) if e[1] == "o" and "winch" in e[2])
    assert events.index(resizes[0]) < winch
    assert "winch 40 120" in asciinema_cat(cast_path(shared_server.home, s["id"]))


async def typed_session(server: RunningServer, api: httpx.Client) -> str:
    s = create(api, command=SH, args=["-c", "echo ready; read x; echo got-$x"])
    t = await TermClient.connect(ws_url(server, s["id"]))
    await t.see("ready")
    await t.type("typed-secret\r")
    await t.see("got-typed-secret")
    await t.closed()
    ended(api, s["id"])
    sid: str = s["id"]
    return sid


async def test_input_is_not_recorded_by_default(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    rid = await typed_session(shared_server, api)
    _, events = read_cast(cast_path(shared_server.home, rid))
    assert [e for e in events if e[1] == "i"] == []
    assert "got-typed-secret" in output_of(events)


async def test_record_input_records_i_events(servers: list[RunningServer], tmp_path: Path) -> None:
    srv = own_server(servers, tmp_path / "home", "--record-input")
    with srv.client() as api:
        rid = await typed_session(srv, api)
    header, events = read_cast(cast_path(srv.home, rid))
    typed = [e for e in events if e[1] == "i"]
    assert "".join(e[2] for e in typed) == "typed-secret\r"
    # Typed before the program answered.
    answer = next(i for i, e in enumerate(events) if e[1] == "o" and "got-" in e[2])
    assert events.index(typed[-1]) < answer
    assert header["version"] == 2
    asciinema_cat(cast_path(srv.home, rid))


# -- the API -------------------------------------------------------------------------------


def test_delete_removes_file_and_entry(shared_server: RunningServer, api: httpx.Client) -> None:
    s = create(api, command=SH, args=["-c", "echo bye"])
    ended(api, s["id"])
    path = cast_path(shared_server.home, s["id"])
    assert path.is_file()
    assert api.delete(f"/api/recordings/{s['id']}").status_code == 204
    assert not path.exists()
    assert entry(api, s["id"]) is None
    assert_error_404(api.get(f"/api/recordings/{s['id']}"))
    assert_error_404(api.delete(f"/api/recordings/{s['id']}"))
    index = json.loads((shared_server.home / "recordings" / "metadata.json").read_text())
    assert s["id"] not in [e["id"] for e in index["recordings"]]


def test_delete_of_a_running_session_recording_is_409(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    s = create(api, command=SH, args=["-c", "exec sleep 100"])
    try:
        r = api.delete(f"/api/recordings/{s['id']}")
        assert r.status_code == 409
        assert set(r.json()["error"]) == {"code", "message", "requestId"}
        # The writer thread creates the file soon after the session starts.
        wait_until(lambda: cast_path(shared_server.home, s["id"]).is_file(), what="the file")
    finally:
        assert api.delete(f"/api/sessions/{s['id']}").status_code == 204
    ended(api, s["id"])
    assert api.delete(f"/api/recordings/{s['id']}").status_code == 204


def test_unknown_ids_are_404(api: httpx.Client) -> None:
    for rid in ("no-such-recording", "00000000-0000-0000-0000-000000000000", "x" * 200):
        assert_error_404(api.get(f"/api/recordings/{rid}"))
        assert_error_404(api.delete(f"/api/recordings/{rid}"))


SECRET = "TOP-SECRET-OUTSIDE-THE-FOLDER"

# Already encoded; httpx sends them as they are.
ENCODED_TARGETS = [
    "/api/recordings/..%2F..%2Fsecret",
    "/api/recordings/..%2Fsecret",
    "/api/recordings/%2E%2E%2Fsecret",
    "/api/recordings/%2e%2e",
    "/api/recordings/%2Fetc%2Fpasswd",
    "/api/recordings/%2F..%2Fsecret",
    "/api/recordings/..%5Csecret",
    "/api/recordings/..%252Fsecret",
    "/api/recordings/secret%00",
    "/api/recordings/metadata.json",
    "/api/recordings/metadata",
    "/api/recordings/.metadata",
    "/api/recordings/secret.cast",
    "/api/recordings/a.b",
    "/api/recordings/...",
    "/api/recordings/.cast",
    "/api/recordings/-rf",
    "/api/recordings/link",
]

# What httpx (or a browser) would normalise away: sent byte for byte on a socket.
RAW_TARGETS = [
    "/api/recordings/..",
    "/api/recordings/.",
    "/api/recordings/../secret",
    "/api/recordings/../../secret",
    "/api/recordings/../recordings/../secret",
    "/api/recordings//etc/passwd",
    "/api/recordings/%2Fetc%2Fpasswd",
    "/api/recordings/..%2F..%2Fsecret",
    "/api/recordings/..\\secret",
    "/api/recordings/./../secret",
]


@pytest.fixture(scope="module")
def outside(shared_server: RunningServer) -> Path:
    """Files outside the recordings folder that an id must never reach."""
    home = shared_server.home
    for name in ("secret", "secret.cast", "secret.json"):
        (home / name).write_text(SECRET)
    folder = home / "recordings"
    folder.mkdir(exist_ok=True)
    # A link inside the folder that points out of it.
    with contextlib.suppress(FileExistsError):
        (folder / "link.cast").symlink_to(home / "secret.cast")
    return home


@pytest.mark.parametrize("target", ENCODED_TARGETS)
def test_traversal_with_encoded_paths_is_404(api: httpx.Client, outside: Path, target: str) -> None:
    url = httpx.URL(f"{api.base_url}".rstrip("/") + target)
    assert url.raw_path.decode() == target, "sent as written"
    r = api.get(url)
    assert_error_404(r)
    assert SECRET not in r.text
    if target != "/api/recordings/link":  # deleting the link itself would be harmless
        r = api.delete(url)
        assert_error_404(r)
    for name in ("secret", "secret.cast", "secret.json"):
        assert (outside / name).read_text() == SECRET


@pytest.mark.parametrize("target", RAW_TARGETS)
def test_traversal_with_raw_paths_is_404(
    shared_server: RunningServer, outside: Path, target: str
) -> None:
    for method in ("GET", "DELETE"):
        status, body = raw_request(shared_server, method, target)
        assert status == 404, (method, target, status, body)
        assert SECRET.encode() not in body
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message", "requestId"}
    for name in ("secret", "secret.cast", "secret.json"):
        assert (outside / name).read_text() == SECRET


def test_a_hard_link_in_the_folder_is_not_served(api: httpx.Client, outside: Path) -> None:
    # A second name for a file outside the folder: nothing but its link count tells it
    # from a recording.
    with contextlib.suppress(FileExistsError):
        os.link(outside / "secret.cast", outside / "recordings" / "hard.cast")
    r = api.get("/api/recordings/hard")
    assert_error_404(r)
    assert SECRET not in r.text
    assert "hard" not in [e["id"] for e in api.get("/api/recordings").json()]


def test_links_and_fifos_in_the_folder_are_left_alone_at_start(
    servers: list[RunningServer], tmp_path: Path
) -> None:
    # The start-up repair cuts a torn last line: through a symbolic link it cut the file
    # the link points to, and a FIFO named like a recording hung the start.
    home = tmp_path / "home"
    folder = home / "recordings"
    folder.mkdir(parents=True)
    notes = tmp_path / "notes.cast"
    notes.write_text(json.dumps({"version": 2, "width": 80, "height": 24}) + '\n[1, "o", "torn')
    before = notes.read_bytes()
    (folder / "link.cast").symlink_to(notes)
    os.link(notes, folder / "hard.cast")
    os.mkfifo(folder / "pipe.cast")
    srv = own_server(servers, home)
    assert notes.read_bytes() == before
    with srv.client() as api:
        assert api.get("/api/recordings").json() == []
        for rid in ("link", "hard", "pipe"):
            assert_error_404(api.get(f"/api/recordings/{rid}"))


# -- a folder that cannot be written -------------------------------------------------------


def test_a_recordings_folder_that_cannot_be_written_is_said_not_fatal(
    servers: list[RunningServer], tmp_path: Path
) -> None:
    # Root bypasses permissions, so "cannot be written" is a file where the folder should
    # be. The server used to refuse to start; sessions now start, unrecorded, and say why.
    home = tmp_path / "home"
    home.mkdir()
    (home / "recordings").write_text("not a folder")
    srv = own_server(servers, home)
    for start in ("first", "next"):
        assert any("recordings folder" in line and "WARNING" in line for line in srv.output)
        with srv.client() as api:
            s = create(api, command=SH, args=["-c", "read x; echo got-$x"])
            assert s["recording"] is False, start
            assert "not a folder" in s["recordingError"], start
            got = api.get(f"/api/sessions/{s['id']}").json()
            assert (got["recording"], got["recordingError"]) == (False, s["recordingError"])
            assert (
                api.post(f"/api/sessions/{s['id']}/input", json={"data": "1\n"}).status_code == 204
            )
            wait_until(
                lambda: api.get(f"/api/sessions/{s['id']}").json()["status"] == "exited",  # noqa: B023
                what="the session to run and end",
            )
            assert api.get("/api/recordings").json() == []
        if start == "first":
            srv.restart()
    assert (home / "recordings").read_text() == "not a folder"


def test_a_session_says_when_its_recording_cannot_be_written(
    servers: list[RunningServer], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    srv = own_server(servers, home)
    with srv.client() as api:
        s = create(api, command=SH, args=["-c", "exec sleep 60"])
        assert (s["recording"], s["recordingError"]) == (True, None)
        # The folder goes away while the server runs: the next session's file cannot be made.
        (home / "recordings").rename(home / "recordings.old")
        (home / "recordings").write_text("not a folder")
        t = create(api, command=SH, args=["-c", "exec sleep 60"])
        late = wait_until(
            lambda: (j := api.get(f"/api/sessions/{t['id']}").json())["recordingError"] and j,
            what="the session to say its recording failed",
        )
        assert late["recording"] is False and "open failed" in late["recordingError"]
        for sid in (s["id"], t["id"]):
            api.delete(f"/api/sessions/{sid}")
    (home / "recordings").unlink()
    (home / "recordings.old").rename(home / "recordings")


def test_sessions_say_they_are_not_recorded_with_no_record(
    servers: list[RunningServer], tmp_path: Path
) -> None:
    srv = own_server(servers, tmp_path / "home", "--no-record")
    with srv.client() as api:
        s = create(api, command=SH, args=["-c", "true"])
        assert (s["recording"], s["recordingError"]) == (False, None)


# -- crashes, shutdown, restarts -----------------------------------------------------------


def kill_leftover(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def assert_whole_lines_but_last(path: Path) -> int:
    """Every line but possibly a torn last one is JSON; returns the number of whole lines."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    assert lines, "at least the header is whole"
    assert json.loads(lines[0])["version"] == 2
    for line in lines[1:]:
        event = json.loads(line)
        assert isinstance(event, list) and len(event) == 3
    if torn:
        with contextlib.suppress(ValueError):
            json.loads(torn)  # torn or not, tolerated
    return len(lines)


@pytest.mark.parametrize("program", ["python", "yes"])
async def test_sigkill_during_heavy_output_leaves_a_valid_prefix(
    servers: list[RunningServer], tmp_path: Path, program: str
) -> None:
    home = tmp_path / "home"
    srv = own_server(servers, home)
    if program == "python":
        cmd = {"command": "python3", "args": ["-c", "while True: print('x' * 200)"]}
    else:
        cmd = {"command": "yes", "args": ["y" * 100]}
    with srv.client() as api:
        s = create(api, **cmd)
    rid, path = s["id"], cast_path(home, s["id"])
    try:
        t = await TermClient.connect(ws_url(srv, rid))
        await t.until(lambda c: len(c.output) > 200_000, 10 * UNIT, "200 KB of output")
        # Lines already on disk are never rewritten: these survive the kill whatever it tears.
        wait_until(
            lambda: path.exists() and path.read_bytes().count(b"\n") >= 3,
            what="the header and two events on disk",
        )
        srv.stop(signal.SIGKILL)
        await t.close()
        assert_whole_lines_but_last(path)
    finally:
        kill_leftover(s["pid"])

    srv = own_server(servers, home)
    with srv.client() as api:
        e = entry(api, rid)
        assert e is not None, "the recording is listed after the crash"
        assert e["endedAt"] is not None and e["duration"] is not None
        assert e["bytes"] == path.stat().st_size
        r = api.get(f"/api/recordings/{rid}")
        assert r.status_code == 200
        assert r.content == path.read_bytes()
    header, events = read_cast(path)  # repaired: every line whole
    assert len(events) >= 2 and header["version"] == 2
    assert ("y" * 100 if program == "yes" else "x" * 200) in output_of(events)
    assert asciinema_cat(path) == output_of(events)


async def test_sigterm_flushes_everything(servers: list[RunningServer], tmp_path: Path) -> None:
    home = tmp_path / "home"
    srv = own_server(servers, home)
    with srv.client() as api:
        s = create(api, command="/bin/bash", args=["--norc", "--noprofile"], env={"PS1": "$ "})
    rid = s["id"]
    t = await TermClient.connect(ws_url(srv, rid))
    await t.see("$ ")
    await t.type("seq 1 30000; echo last-$((40+2))\r")
    await t.see("last-42")
    assert srv.stop(signal.SIGTERM, keep_sessions=True) == 0  # the session keeps running
    await t.close()
    header, events = read_cast(cast_path(home, rid))
    assert "29999\r\n30000\r\nlast-42" in output_of(events)
    srv.stop()  # now end it: its end reaches the index with the next server
    srv = own_server(servers, home)
    with srv.client() as api:
        e = entry(api, rid)
        assert e is not None and e["endedAt"] is not None
        assert isinstance(e["exitCode"], int)
        assert e["bytes"] == cast_path(home, rid).stat().st_size
    assert "last-42" in asciinema_cat(cast_path(home, rid))


@pytest.mark.parametrize("damage", ["missing", "garbage", "cut", "wrong-shape", "bad-entry"])
def test_damaged_index_is_rebuilt_at_start(
    servers: list[RunningServer], tmp_path: Path, damage: str
) -> None:
    home = tmp_path / "home"
    srv = own_server(servers, home)
    with srv.client() as api:
        s1 = create(api, name="one", command=SH, args=["-c", "echo one"])
        s2 = create(api, name="two", cols=90, rows=20, command=SH, args=["-c", "exit 3"])
        ended(api, s1["id"])
        ended(api, s2["id"])
        before = {e["id"]: e for e in api.get("/api/recordings").json()}
    srv.stop()
    index = home / "recordings" / "metadata.json"
    good = index.read_bytes()
    if damage == "missing":
        index.unlink()
    elif damage == "garbage":
        index.write_bytes(b"\x00\xff{not json at all")
    elif damage == "cut":
        index.write_bytes(good[: len(good) // 2])
    elif damage == "wrong-shape":
        index.write_text('{"version": 1, "recordings": "nope"}')
    else:
        doc = json.loads(good)
        for e in doc["recordings"]:
            e["startedAt"] = 12345
        index.write_text(json.dumps(doc))

    srv = own_server(servers, home)
    with srv.client() as api:
        after = {e["id"]: e for e in api.get("/api/recordings").json()}
    assert set(after) == {s1["id"], s2["id"]}
    for rid, e in after.items():
        assert e["size"] == before[rid]["size"]
        assert e["name"] == before[rid]["name"]
        assert e["command"] == before[rid]["command"]
        assert e["bytes"] == cast_path(home, rid).stat().st_size
        assert e["endedAt"] is not None
    # metadata.json is whole JSON again, and lists both.
    doc = json.loads(index.read_text())
    assert {e["id"] for e in doc["recordings"]} == set(after)


def make_old(home: Path, rid: str, days: float) -> None:
    """Move a finished recording's start and end back by `days` (server stopped)."""
    index = home / "recordings" / "metadata.json"
    doc = json.loads(index.read_text())
    for e in doc["recordings"]:
        if e["id"] == rid:
            e["startedAt"] = iso(unix(e["startedAt"]) - days * 86400)
            e["endedAt"] = iso(unix(e["endedAt"]) - days * 86400)
    index.write_text(json.dumps(doc))


def test_keep_recordings_prunes_old_ones_at_start(
    servers: list[RunningServer], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    srv = own_server(servers, home)
    with srv.client() as api:
        old = create(api, command=SH, args=["-c", "echo old"])["id"]
        new = create(api, command=SH, args=["-c", "echo new"])["id"]
        ended(api, old)
        ended(api, new)
    srv.stop()
    make_old(home, old, 30)

    # Without the option, nothing is pruned.
    srv = own_server(servers, home)
    with srv.client() as api:
        assert {e["id"] for e in api.get("/api/recordings").json()} == {old, new}
    srv.stop()
    assert cast_path(home, old).is_file()

    srv = own_server(servers, home, "--keep-recordings", "7")
    with srv.client() as api:
        wait_until(
            lambda: {e["id"] for e in api.get("/api/recordings").json()} == {new},
            what="the old recording pruned",
        )
        assert_error_404(api.get(f"/api/recordings/{old}"))
        assert api.get(f"/api/recordings/{new}").status_code == 200
    assert not cast_path(home, old).exists()
    assert cast_path(home, new).is_file()


def test_torn_last_line_is_repaired_at_start(servers: list[RunningServer], tmp_path: Path) -> None:
    # What a SIGKILL in the middle of a write leaves, made on purpose.
    home = tmp_path / "home"
    srv = own_server(servers, home)
    with srv.client() as api:
        rid = create(api, command=SH, args=["-c", "echo whole-line"])["id"]
        ended(api, rid)
    srv.stop()
    path = cast_path(home, rid)
    whole = path.read_bytes()
    with path.open("ab") as f:
        f.write(b'[9.5, "o", "torn in the midd')

    srv = own_server(servers, home)
    with srv.client() as api:
        e = entry(api, rid)
        assert e is not None and e["bytes"] == len(whole)
        r = api.get(f"/api/recordings/{rid}")
        assert r.status_code == 200 and r.content == whole
    assert path.read_bytes() == whole
    _, events = read_cast(path)
    played = asciinema_cat(path)
    assert played == output_of(events) and "whole-line" in played
