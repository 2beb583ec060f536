"""Every server a bench starts: ours (`vibetunnel serve` of one code version), ttyd, terminado,
redis-server; each a `Listening` program, started once its output says it listens.

A `Server` of ours runs on a free port with a home of its own. The bench starts it itself
rather than through tests/conftest.py: the test helper imports (and stops keepers with)
whichever vibetunnel is installed, while the bench runs two versions. Its keeper and sessions
outlive it: harness.fleet ends them. Start these through a `Fleet`, which stops them all.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import quote, urlsplit

from . import install, proctable
from .versions import Version

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then deliver the first: a
    cleanup cut halfway by a second Ctrl-C is what leaves processes behind."""
    got: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        got.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if got:
            handler = previous[signal.Signals(got[0])]
            if callable(handler):
                handler(got[0], None)
            else:
                signal.raise_signal(got[0])


def free_port() -> int:
    """A loopback port free now (a server that cannot take port 0 is given one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether a TCP connection to the loopback port is accepted (then closed)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


class Listening:
    """A program in a session of its own (a Ctrl-C at the terminal reaches the bench only),
    its output drained for its whole life so that a chatty one never blocks; started once a
    line of its output matches `pattern` (`ready`, that match), or once `started()` holds."""

    name = "program"
    keep: int | None = None
    """Lines of output kept, the first ones; None keeps them all."""
    stop_timeout = STOP_TIMEOUT
    ends_children = True
    """Whether `stop` ends what it started that outlives it (ours: the Fleet does, by home)."""

    def __init__(
        self, argv: list[str], env: dict[str, str], pattern: re.Pattern[str] | None = None
    ) -> None:
        self.output: list[str] = []
        self.ready: re.Match[str] | None = None
        self._pattern = pattern
        self._listening = threading.Event()
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,
        )
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.started():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n{''.join(self.output)}")

    def started(self) -> bool:
        """Ready to serve: by default, once its output said so (this waits a moment)."""
        return self._listening.wait(0.05)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if self.keep is None or len(self.output) < self.keep:
                self.output.append(line)
            if self.ready is None and self._pattern and (m := self._pattern.search(line)):
                self.ready = m
                self._listening.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def holders(self) -> list[int]:
        """The processes whose memory and CPU count as the server's (not the programs it runs
        for its clients)."""
        return [self.pid]

    def stop(self) -> int:
        """SIGTERM, SIGKILL after `stop_timeout` seconds, then whatever it started that
        outlives it (its descendants at the time); the exit code."""
        running = self.process.poll() is None
        below = proctable.descendants([self.pid]) if running and self.ends_children else set()
        if running:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._drain.join(timeout=5)
        proctable.end([pid for pid in below if proctable.alive(pid)])
        return code


class Server(Listening):
    """`vibetunnel serve --port 0 ARGS` of `version` with `VIBETUNNEL_HOME=home`."""

    name = "server"
    ends_children = False

    def __init__(
        self,
        version: Version,
        home: Path,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        nofile: int | None = None,
    ) -> None:
        self.version = version
        self.home = home
        self.args = tuple(args)
        self.env = {**version.env, **(env or {})}
        """Besides os.environ: what selects the code version (`vt` and `stop` get it too)."""
        home.mkdir(parents=True, exist_ok=True)
        # prlimit execs the server: the pid is the server's. Soft and hard, so the server's
        # own raise to the hard limit (files.raise_open_files_limit) cannot lift it.
        limit = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] if nofile else []
        super().__init__(
            [*limit, sys.executable, "-m", "vibetunnel", "serve", "--port", "0", *args],
            {**os.environ, **self.env, "VIBETUNNEL_HOME": str(home)},
            re.compile(r"VibeTunnel listening on (http://\S+)"),
        )

    @property
    def url(self) -> str:
        return self.ready.group(1) if self.ready else ""

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    @property
    def acks(self) -> bool:
        """Its code speaks flow control (protocol/flow.py): a client may ack (an older one
        closes on an ack)."""
        return (self.version.src / "vibetunnel" / "protocol" / "flow.py").is_file()

    def holders(self) -> list[int]:
        """The server and its keeper (and any helper of theirs), not the session programs."""
        return proctable.tree(self.home, self.pid).holders


class Ttyd(Listening):
    """ttyd 1.7.7 on a free loopback port, clients allowed to write (-W); the program of each
    connection comes from its URL (-a: `?arg=...`, appended to `sh -c 'exec "$@"'`), so one
    server runs every load's program. `options` add to its own (-t for its web page)."""

    name = "ttyd"
    keep = 200  # ttyd logs every connection: keep the start only
    stop_timeout = 10.0

    def __init__(self, *options: str) -> None:
        argv = [str(install.TTYD), "-p", "0", "-i", "lo", "-W", "-a", *options]
        super().__init__(
            [*argv, "sh", "-c", 'exec "$@"', "peer"],
            dict(os.environ),
            re.compile(r"Listening on port: (\d+)"),
        )
        assert self.ready is not None
        self.port = int(self.ready.group(1))

    def query(self, argv: Sequence[str]) -> str:
        """The query string that runs `argv` in a connection's terminal."""
        return "&".join(f"arg={quote(a)}" for a in argv)


class Terminado(Listening):
    """terminado (tornado) on a free loopback port: one path a program of `programs`, a fresh
    terminal per WebSocket connection (harness/terminado_app.py, in the peers' venv)."""

    name = "terminado"
    keep = 200
    stop_timeout = 10.0

    def __init__(self, programs: dict[str, list[str]]) -> None:
        script = Path(__file__).resolve().parent / "terminado_app.py"
        argv = [str(install.VENV_PYTHON), str(script), json.dumps(programs)]
        super().__init__(argv, dict(os.environ), re.compile(r"terminado listening on (\d+)"))
        assert self.ready is not None
        self.port = int(self.ready.group(1))


class Redis(Listening):
    """Debian's `redis-server` on a free loopback port, no persistence, files in `folder`."""

    name = "redis-server"
    keep = 200

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(folder)]
        super().__init__(
            [install.redis_server(), *args],
            dict(os.environ),
            re.compile(r"Ready to accept connections"),
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
