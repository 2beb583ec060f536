"""Finding the server and naming the host socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt

from vibetunnel.keeper.client import claim
from vibetunnel.vt.link import find_server, host_url, token


def write(home: Path, obj: object) -> None:
    (home / "server.json").write_text(json.dumps(obj))


def test_no_file(tmp_path: Path) -> None:
    assert find_server(tmp_path) is None


def test_live_server(tmp_path: Path) -> None:
    write(tmp_path, {"url": "http://127.0.0.1:4020/", "pid": os.getpid()})
    lock = claim(tmp_path)  # as the server does: this process holds the home's lock
    try:
        assert find_server(tmp_path) == "http://127.0.0.1:4020"
    finally:
        os.close(lock)
    assert find_server(tmp_path) is None  # released: no server, whatever the file says


def test_a_live_pid_without_the_lock_is_no_server(tmp_path: Path) -> None:
    # A killed server's file, its pid since reused (here: a sleep), its port maybe anyone's:
    # vt must not send that pid's port our token.
    other = subprocess.Popen(["sleep", "600"])
    try:
        write(tmp_path, {"url": "http://127.0.0.1:4020", "pid": other.pid})
        (tmp_path / "server.lock").write_text(str(other.pid))
        assert find_server(tmp_path) is None
    finally:
        other.kill()
        other.wait()


def test_dead_pid_is_no_server(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write(tmp_path, {"url": "http://127.0.0.1:4020", "pid": dead.pid})
    assert find_server(tmp_path) is None


def test_garbage_is_no_server(tmp_path: Path) -> None:
    for bad in (
        "not json",
        [],
        {"url": "http://127.0.0.1:1"},
        {"url": "ftp://x", "pid": os.getpid()},
        {"url": 5, "pid": os.getpid()},
        {"url": "http://x", "pid": True},
        {"url": "http://x", "pid": -1},
    ):
        (tmp_path / "server.json").write_text(bad if isinstance(bad, str) else json.dumps(bad))
        assert find_server(tmp_path) is None, bad


def test_host_url() -> None:
    assert host_url("http://127.0.0.1:9", None) == "ws://127.0.0.1:9/api/host"
    assert host_url("https://h:9", "a.b+c") == "wss://h:9/api/host?token=a.b%2Bc"


def test_token_is_signed_with_the_local_secret(tmp_path: Path) -> None:
    tok = token(tmp_path)
    assert tok is not None
    key = (tmp_path / "secret").read_text().splitlines()[0].encode()
    claims = jwt.decode(tok, key, algorithms=["HS256"])
    assert claims["sub"] == "vt" and "sessionId" not in claims
    assert claims["exp"] - claims["iat"] == 3600
