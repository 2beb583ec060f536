"""Shared test helpers: a real `vibetunnel serve` on a free port, deadlines scaled by one unit.

Every wait in the tests is a multiple of UNIT seconds (VIBETUNNEL_TEST_UNIT, the one scale
variable, scales it for slow CI machines), and waits for a condition, never for quiet. Every
test has a deadline too: TEST_TIMEOUT, in the same unit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import settings

from vibetunnel.keeper.client import stop as keeper_stop

UNIT = float(os.environ.get("VIBETUNNEL_TEST_UNIT", "1.0"))
TEST_TIMEOUT = 120 * UNIT
"""Seconds one test may run (pytest-timeout): a server that never prints its line fails its
test instead of hanging the run. `--timeout N` on the command line overrides it."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Without the plugin (an environment without the test extras) there is no per-test limit.
    if not config.pluginmanager.hasplugin("timeout") or config.getoption("timeout") is not None:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


# Property tests: no per-example deadline (a loaded machine is not a bug), and in CI the
# same examples every run, so a red build always means a change, never a lucky draw.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
T = TypeVar("T")

LISTENING = re.compile(r"VibeTunnel listening on (https?://\S+)")
LOGIN_URL = re.compile(r"(https?://\S+[?&]login=\S+)")


def wait_until(check: Callable[[], T], timeout: float = 5 * UNIT, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(0.01)


@dataclass
class RunningServer:
    """A `vibetunnel serve` subprocess."""

    home: Path
    args: tuple[str, ...]
    env: dict[str, str]
    port: int = 0
    url: str = ""
    login_url: str | None = None
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    preexec: Callable[[], None] | None = None
    """Run in the server's process before it starts (e.g. to lower a resource limit)."""
    _drain: threading.Thread = field(init=False, repr=False)

    def start(self) -> RunningServer:
        self.url, self.login_url = "", None  # a restart must wait for its own lines
        env = {**os.environ, "VIBETUNNEL_HOME": str(self.home), **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vibetunnel", "serve", "--port", str(self.port), *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            preexec_fn=self.preexec,
        )
        assert self.process.stdout is not None
        # First the listening line; with auth on, the login URL line comes right after it.
        auth = "--no-auth" not in self.args
        deadline = time.monotonic() + 15 * UNIT
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if m := LISTENING.search(line):
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
            elif m := LOGIN_URL.search(line):
                self.login_url = m.group(1)
            if self.url and (not auth or self.login_url):
                # Keep draining, so a chatty server never blocks on a full pipe.
                self._drain = threading.Thread(target=self._read_rest, daemon=True)
                self._drain.start()
                return self
        # Leave nothing behind: the server, and the keeper it may have started.
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        self.process = None
        keeper_stop(self.home, sessions=True, timeout=15 * UNIT)
        raise AssertionError("server did not start:\n" + "".join(self.output))

    def _read_rest(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def stop(self, sig: int = signal.SIGTERM, keep_sessions: bool = False) -> int:
        """Stop the server; returns its exit code. Unless `keep_sessions`, then end the
        keeper and every session (they outlive the server), so no test leaves a process."""
        code = self._stop_server(sig)
        if not keep_sessions:
            keeper_stop(self.home, sessions=True, timeout=15 * UNIT)
        return code

    def _stop_server(self, sig: int) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=15 * UNIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if drain := getattr(self, "_drain", None):
            drain.join(timeout=5 * UNIT)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process = None
        return code

    def restart(self, sig: int = signal.SIGTERM) -> RunningServer:
        """Stop (with `sig`) and start again on the same port with the same home; the
        sessions keep running in between."""
        self.stop(sig, keep_sessions=True)
        return self.start()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10 * UNIT)


def start_server(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port: int = 0,
    preexec: Callable[[], None] | None = None,
) -> RunningServer:
    """Start `vibetunnel serve --port 0 *args` with VIBETUNNEL_HOME=home."""
    home.mkdir(parents=True, exist_ok=True)
    return RunningServer(home=home, args=args, env=env or {}, port=port, preexec=preexec).start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A real server without auth, on a free port, stopped after the test."""
    srv = start_server(tmp_path / "home", "--no-auth")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server without auth for a whole test module: for tests that only add sessions."""
    srv = start_server(tmp_path_factory.mktemp("home"), "--no-auth")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def api(shared_server: RunningServer) -> Iterator[httpx.Client]:
    with shared_server.client() as client:
        yield client


def create(api: httpx.Client, **body: Any) -> dict[str, Any]:
    """POST /api/sessions, asserting 201."""
    r = api.post("/api/sessions", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def processes_of(home: Path) -> list[str]:
    """Live processes started for `home`: servers, keepers and the programs they hold."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        home_env = b"VIBETUNNEL_HOME=" + str(home).encode()
        if state != b"Z" and (home_env in env or str(home).encode() in cmdline):
            found.append(f"{pid} {cmdline.decode(errors='replace')}")
    return found
