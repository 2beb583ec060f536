"""A real `redis-server` (Debian's package) on a free loopback port, for cluster tests.

No persistence: a restart starts empty, as a Redis that lost its data would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import UNIT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    port: int
    folder: Path
    password: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (scripts/test.sh installs it)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.folder)]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10 * UNIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.01)
        self.stop()
        pytest.fail("redis-server did not start listening")

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
        try:
            self.process.wait(timeout=10 * UNIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> RedisServer:
        """Killed (no clean shutdown) and started again on the same port, empty."""
        self.stop(kill=True)
        return self.start()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free port, gone after the test (checked)."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(port=free_port(), folder=folder).start()
    pid = server.pid
    try:
        yield server
    finally:
        server.stop()
        assert pid is None or not os.path.exists(f"/proc/{pid}") or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


class HoldingProxy:
    """A TCP proxy in front of a Redis that can hold back one command: the next one a client
    sends holding `pattern` waits until `release()`, so a test sees what a node does while
    that answer is on its way (as from a Redis far off, or busy)."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.holding = threading.Event()
        """Set once a command is held."""
        self._pattern: bytes | None = None
        self._released = threading.Event()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def hold_next(self, pattern: bytes) -> None:
        self.holding.clear()
        self._released.clear()
        self._pattern = pattern

    def release(self) -> None:
        self._pattern = None
        self._released.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._open += [client, server]
            for src, dst, ask in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, ask), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, asking: bool) -> None:
        try:
            while data := src.recv(65536):
                pattern = self._pattern
                if asking and pattern is not None and pattern in data:
                    self._pattern = None  # this one only
                    self.holding.set()
                    self._released.wait(30 * UNIT)
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.release()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self.listener.close()
        for sock in self._open:
            sock.close()
