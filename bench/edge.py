"""The edge under load, two code versions side by side: what a flood costs the server, and
whether a normal client is served meanwhile.

    python bench/edge.py --before PATH [--after PATH]     # after: this tree by default
    python bench/edge.py --compare REV                    # before: a git worktree of REV
    ... [--sockets 2000] [--half-open 1000] [--bodies 4] [--pingers 20] [--nofile 1024]

Each scenario runs on a fresh server of each version, started under a file limit (soft and
hard: `prlimit --nofile=N:N`) and a rate limit too high to matter, so what is measured is
the edge itself:
- idle WebSockets: --sockets upgrades to one session, held open, idle;
- half-open requests: --half-open connections that send part of their headers, never the
  end, held 15 s (past a 10 s header deadline);
- 100 MB bodies without a token: --bodies concurrent POST /api/sessions to a server with
  auth, each declaring and sending 100 MB;
- pings never read: --pingers WebSockets sending pings (control frames and JSON) as fast as
  the server takes them, reading nothing, for 10 s.
Meanwhile a normal client asks GET /api/health every 100 ms, on one kept-alive connection
and on a new connection each time (each must answer within 2 s), and the memory of the
server and its keeper (RSS) is read every 100 ms. Traffic goes to 127.0.0.1 only; every
scenario is bounded in count and time and ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from harness import clients, options, proctable, report, versions
from harness.fleet import Fleet
from harness.report import progress
from harness.run import Run, open_files
from harness.servers import Server
from harness.versions import Version
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

ARGS = ("--rate-limit", "1000000000")
PROBE_EVERY = 0.1
PROBE_TIMEOUT = 2.0
HALF_OPEN_HOLD = 15.0
PING_SECONDS = 10.0
BODY = 100 * 1024 * 1024


# -- what runs beside each scenario -------------------------------------------------------------


@dataclass
class Probe:
    """GET /api/health every PROBE_EVERY s, kept-alive and on new connections, in threads."""

    url: str
    results: dict[str, list[float | None]] = field(default_factory=dict)
    """"keep-alive" / "new connection" -> seconds per check, None for a failure."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Probe:
        for kind in ("keep-alive", "new connection"):
            self.results[kind] = []
            thread = threading.Thread(target=self._run, args=(kind,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=PROBE_TIMEOUT * 2)

    def _run(self, kind: str) -> None:
        kept = httpx.Client(base_url=self.url, timeout=PROBE_TIMEOUT)
        with kept:
            while not self._stop.wait(PROBE_EVERY):
                start = time.perf_counter()
                try:
                    if kind == "keep-alive":
                        r = kept.get("/api/health")
                    else:
                        r = httpx.get(f"{self.url}/api/health", timeout=PROBE_TIMEOUT)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.results[kind].append(time.perf_counter() - start if ok else None)

    def summary(self, kind: str) -> str:
        checks = self.results[kind]
        good = sorted(t for t in checks if t is not None)
        if not checks:
            return "no checks"
        worst = f", max {good[-1] * 1000:.0f} ms" if good else ""
        return f"{len(good)}/{len(checks)} ok{worst}"


@dataclass
class Sampler:
    """RSS of the server and its keeper, and the server's open files, every 100 ms."""

    srv: Server
    peak_rss_kb: int = 0
    peak_fds: int = 0
    start_rss_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self.start_rss_kb = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _rss(self) -> int:
        return proctable.memory(self.srv.holders()).rss

    def _sample(self) -> None:
        self.peak_rss_kb = max(self.peak_rss_kb, self._rss())
        with contextlib.suppress(OSError):
            self.peak_fds = max(self.peak_fds, len(os.listdir(f"/proc/{self.srv.pid}/fd")))

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()


# -- the floods -------------------------------------------------------------------------------


async def _bounded(
    n: int, concurrency: int, job: Callable[[int], Awaitable[object]]
) -> list[object]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> object:
        async with gate:
            try:
                return await job(i)
            except (TimeoutError, OSError) as exc:
                return exc

    return await asyncio.gather(*(one(i) for i in range(n)))


async def idle_websockets(srv: Server, n: int, hold: float) -> dict[str, str]:
    """Open `n` WebSockets to one session and hold them idle; how many opened and stayed."""
    sid = await clients.create(srv, {"command": "/bin/cat"})
    host, port = "127.0.0.1", srv.port
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def open_one(i: int) -> bool:
        protocol = ClientProtocol(parse_uri(f"{srv.ws_url}/api/sessions/{sid}/ws"))
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        protocol.send_request(protocol.connect())
        writer.write(b"".join(protocol.data_to_send()))
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, TimeoutError):
            writer.close()
            return False
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            writer.close()
            return False
        opened.append((reader, writer))
        return True

    results = await _bounded(n, 100, open_one)
    await asyncio.sleep(hold)
    still = 0
    for reader, _ in opened:
        # An idle socket the server still holds has nothing to read (the replay is empty).
        with contextlib.suppress(TimeoutError, OSError):
            if not reader.at_eof():
                await asyncio.wait_for(reader.read(65536), 0.001)
        still += not reader.at_eof()
    for _, writer in opened:
        writer.close()
    errors = sum(isinstance(r, BaseException) for r in results)
    return {
        "opened": f"{sum(r is True for r in results)}/{n}",
        "open after the hold": f"{still}",
        "refused at connect": f"{errors}",
    }


async def half_open(srv: Server, n: int, hold: float) -> dict[str, str]:
    """`n` connections that never finish their headers; how many the server ended, when."""
    host, port = "127.0.0.1", srv.port
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def open_one(i: int) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Never-Ends: ")
        conns.append((reader, writer, time.monotonic()))

    results = await _bounded(n, 100, open_one)
    ended_at: list[float] = []

    async def watch(reader: asyncio.StreamReader, since: float) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.read()  # EOF or reset: the server let go
            ended_at.append(time.monotonic() - since)

    watchers = [asyncio.create_task(watch(r, t)) for r, _, t in conns]
    await asyncio.sleep(hold)
    for task in watchers:
        task.cancel()
    for _, writer, _ in conns:
        writer.close()
    ended = sorted(ended_at)
    return {
        "connected": f"{len(conns)}/{n}",
        "refused at connect": f"{sum(isinstance(r, BaseException) for r in results)}",
        f"ended by the server within {hold:.0f} s": f"{len(ended)}",
        "  median time to end, s": f"{ended[len(ended) // 2]:.1f}" if ended else "-",
    }


def big_body(srv: Server, i: int, out: list[tuple[str, float, int]]) -> None:
    """One POST /api/sessions declaring and sending BODY bytes, no token; its answer."""
    start = time.monotonic()
    sent = 0
    status = "no answer"
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
            sock.sendall(
                b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n" + f"Content-Length: {BODY}\r\n\r\n".encode()
            )
            sock.setblocking(False)
            chunk = b" " * (1024 * 1024)
            answer = b""
            while sent < BODY and b"\r\n" not in answer:
                with contextlib.suppress(BlockingIOError):
                    answer += sock.recv(4096)
                try:
                    sent += sock.send(chunk[: BODY - sent])
                except BlockingIOError:
                    time.sleep(0.001)
                if time.monotonic() - start > 60:
                    break
            sock.settimeout(30)
            while b"\r\n" not in answer:
                more = sock.recv(4096)
                if not more:
                    break
                answer += more
            if answer:
                status = answer.split(b"\r\n", 1)[0].decode(errors="replace").split(" ", 2)[1]
    except OSError as exc:
        status = type(exc).__name__
    out.append((status, time.monotonic() - start, sent))


async def big_bodies(srv: Server, k: int) -> dict[str, str]:
    out: list[tuple[str, float, int]] = []
    threads = [threading.Thread(target=big_body, args=(srv, i, out), daemon=True) for i in range(k)]
    for t in threads:
        t.start()
    await asyncio.to_thread(lambda: [t.join() for t in threads])
    statuses = sorted(s for s, _, _ in out)
    sent_mb = sorted(b / 2**20 for _, _, b in out)
    took = sorted(t for _, t, _ in out)
    return {
        "answers": ", ".join(statuses),
        "MB sent before the answer (median)": f"{sent_mb[len(sent_mb) // 2]:.0f}",
        "seconds to the answer (max)": f"{took[-1]:.1f}",
    }


async def pings_never_read(srv: Server, k: int, seconds: float) -> dict[str, str]:
    """`k` WebSockets that ping without reading, for `seconds`."""
    sid = await clients.create(srv, {"command": "/bin/cat"})
    sent = 0

    def flood(i: int) -> None:
        nonlocal sent
        protocol = ClientProtocol(parse_uri(f"{srv.ws_url}/api/sessions/{sid}/ws"))
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(1)
            sock.connect(("127.0.0.1", srv.port))
            protocol.send_request(protocol.connect())
            sock.sendall(b"".join(protocol.data_to_send()))
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            protocol.receive_data(head)
            protocol.events_received()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for j in range(50):
                    if j % 2:
                        protocol.send_ping(b"p" * 125)
                    else:
                        protocol.send_text(b'{"type":"ping"}')
                try:
                    sock.sendall(b"".join(protocol.data_to_send()))
                    sent += 50
                except (TimeoutError, OSError):
                    if sock.fileno() < 0:
                        return

    await asyncio.gather(*(asyncio.to_thread(flood, i) for i in range(k)))
    return {"pings sent": f"{sent}"}


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    title: str
    auth: bool
    run: Callable[[Server, argparse.Namespace], Awaitable[dict[str, str]]]


SCENARIOS = [
    Scenario("idle WebSockets", False, lambda srv, a: idle_websockets(srv, a.sockets, hold=5.0)),
    Scenario(
        "half-open requests", False, lambda srv, a: half_open(srv, a.half_open, HALF_OPEN_HOLD)
    ),
    Scenario("100 MB bodies, no token", True, lambda srv, a: big_bodies(srv, a.bodies)),
    Scenario(
        "pings never read", False, lambda srv, a: pings_never_read(srv, a.pingers, PING_SECONDS)
    ),
]


def measure(
    fleet: Fleet, version: Version, scenario: Scenario, args: argparse.Namespace
) -> dict[str, str]:
    flags = ARGS if scenario.auth else ("--no-auth", *ARGS)
    name = scenario.title.split()[0].lower() + ("-auth" if scenario.auth else "")
    srv = fleet.start(version, name, *flags, nofile=args.nofile)
    try:
        with Probe(srv.url) as probe, Sampler(srv) as sampler:
            time.sleep(0.5)  # the probe's first checks, before the flood
            figures = asyncio.run(scenario.run(srv, args))
            time.sleep(1.0)  # and after it
        alive = srv.process.poll() is None
        # The peak RSS of the server over its life (a fresh server per scenario).
        hwm = proctable.status_kb(srv.pid)["VmHWM"] if alive else 0
    finally:
        fleet.stop(srv)
    return {
        **figures,
        "server+keeper RSS at start, MB": f"{sampler.start_rss_kb / 1024:.0f}",
        "server+keeper RSS peak (sampled), MB": f"{sampler.peak_rss_kb / 1024:.0f}",
        "server RSS peak (VmHWM), MB": f"{hwm / 1024:.0f}",
        "server open files, peak": f"{sampler.peak_fds}",
        "health, kept-alive connection": probe.summary("keep-alive"),
        "health, new connection each": probe.summary("new connection"),
        "server still running": "yes" if alive else "NO",
    }


def main() -> int:
    ap = options.parser(__doc__)
    options.add_versions(ap, required=True)
    ap.add_argument("--sockets", type=int, default=2000)
    ap.add_argument("--half-open", type=int, default=1000)
    ap.add_argument("--bodies", type=int, default=4)
    ap.add_argument("--pingers", type=int, default=20)
    ap.add_argument("--nofile", type=int, default=1024, help="the servers' open-files limit")
    ap.add_argument("--only", help="run only the scenarios whose title contains this")
    options.add_json(ap)
    args = ap.parse_args()
    options.at_least_one(ap, args, "sockets", "half_open", "bodies", "pingers", "nofile")
    before, after = versions.chosen(args)
    assert before is not None  # required
    targets = [before, after]
    open_files()
    rows: list[list[str]] = []
    figures: dict[str, list[dict[str, str]]] = {}
    with Run("vt-edge-") as run:
        for scenario in SCENARIOS:
            if args.only and args.only not in scenario.title:
                continue
            results = []
            for v in targets:
                progress(f"{scenario.title}: {v.label}")
                results.append(measure(run.fleet, v, scenario, args))
            figures[scenario.title] = results
            rows.append([f"{scenario.title}:"])
            rows += [[f"  {key}", *(r.get(key, "-") for r in results)] for key in results[0]]
    print("\n".join(report.aligned([["", *(v.label for v in targets)], *rows])))
    print()
    print(f"servers under a file limit of {args.nofile} (soft and hard); rate limit off")
    for v in targets:
        print(f"{v.label}: {v.about}")
    report.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
