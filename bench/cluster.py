"""Many machines, one dashboard: a cluster of three nodes on one Redis, measured from clients.

    python bench/cluster.py [--clients 1000] [--lines 50] [--every 0.1] [--rounds 2]
                            [--procs 2] [--mb 16] [--echo 200] [--quick] [--code PATH]

A real `redis-server` on a free loopback port, three nodes (alpha, beta, gamma) of this tree's
code (or of the checkout at --code PATH) joined to it, and a server outside the cluster (solo)
for context. Figures:

- fan-out: one session on alpha runs a program that writes `T<round> <i> <time_ns>` every
  `--every` s; `--clients` WebSockets, spread evenly over the three nodes (a third on the
  owning node, two thirds through remote gateways), note when each line reaches them. Latency:
  receipt - write, both from the same clock; p50/p90/p99/max over every client and line of
  every round, overall, on the owning node, through a gateway. The clients run in `--procs`
  processes of their own (`--worker`), so on a small machine their own load is in the figures;
- throughput: MB/s of `cat FILE` in a session on alpha reaching one client on alpha, and one
  on beta; the same on solo and on a bare PTY;
- echo: one keystroke into `cat` on alpha, its echo back, typed on alpha and typed on beta.

Throughput and echo are measured in interleaved rounds (bare, solo, owner, gateway, ...) after
the fan-out clients have gone; cells are medians (min-max) of the rounds. Figures from this
machine, and what limits them: docs/cluster-bench.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import bare
import bench
import clients
import httpx
import proctable
import versions
import websockets
from bench import cell, progress, quantile_ms
from servers import Fleet, Server

from vibetunnel.protocol import frames

NODES = ("alpha", "beta", "gamma")
NODE_ARGS = (
    "--no-auth",
    "--rate-limit",
    "1000000",
    "--max-connections-per-address",
    "4000",
    "--idle-timeout",
    "3600",  # the fan-out clients only listen
)
CONNECT_AT_ONCE = 50
PROGRAM = """
import sys, termios, time
a = termios.tcgetattr(0); a[3] &= ~termios.ECHO; termios.tcsetattr(0, termios.TCSANOW, a)
for order in sys.stdin:
    r, n, every = order.split()
    start = time.monotonic()
    for i in range(int(n)):
        time.sleep(max(0.0, start + i * float(every) - time.monotonic()))
        sys.stdout.write(f"T{r} {i} {time.time_ns()}\\n"); sys.stdout.flush()
    sys.stdout.write(f"E{r}\\n"); sys.stdout.flush()
"""
"""The fan-out session: for each line `ROUND N EVERY` typed into it, N timestamped lines."""
STAMP = re.compile(rb"T(\d+) (\d+) (\d+)")
END = re.compile(rb"E(\d+)")

Results = dict[str, dict[str, list[float]]]
"""measure -> target -> one figure per round (throughput, echo)."""


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- redis --------------------------------------------------------------------------------------


class Redis:
    """Debian's `redis-server` on a free loopback port, no persistence, a child of the bench."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        folder.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(folder)]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the fan-out clients (a worker process) -----------------------------------------------------


class Viewer:
    """One WebSocket on one gateway: when each timestamped line first reached it."""

    def __init__(self, gateway: str, ws: Any) -> None:
        self.gateway = gateway
        self.ws = ws
        self.latency: dict[tuple[int, int], int] = {}
        """(round, line) -> ns from the program's write to the first receipt here."""
        self.ended: set[int] = set()
        self.closed = False
        self.wake = asyncio.Event()
        self._held = b""
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                now = time.time_ns()
                if isinstance(msg, str):
                    if json.loads(msg).get("type") == "exit":
                        break
                    continue
                data, rest = frames.decode(msg)
                while rest:  # one frame a message, but do not count on it
                    more, rest = frames.decode(rest)
                    data += more
                # Lines only: a line cut between two messages is read once whole. A replay or
                # a resync repeats lines; the first receipt counts.
                text = self._held + data
                cut = text.rfind(b"\n") + 1
                self._held = text[cut:]
                for m in STAMP.finditer(text, 0, cut):
                    key = (int(m[1]), int(m[2]))
                    self.latency.setdefault(key, now - int(m[3]))
                for m in END.finditer(text, 0, cut):
                    self.ended.add(int(m[1]))
                    self.wake.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.wake.set()

    async def wait_end(self, r: int) -> None:
        while r not in self.ended and not self.closed:
            self.wake.clear()
            await self.wake.wait()


async def _connect(gateway: str, url: str, gate: asyncio.Semaphore) -> Viewer:
    async with gate:
        ws = await websockets.connect(
            url, compression=None, max_size=None, ping_interval=None, open_timeout=120
        )
    return Viewer(gateway, ws)


async def worker() -> None:
    """`--worker`: its clients as JSON on the first line of stdin, then one command a line
    ({"round": R, "lines": N, "timeout": S} or {"close": true}); answers on stdout."""
    raise_nofile()
    read = sys.stdin.readline
    targets = json.loads(await asyncio.to_thread(read))
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    viewers = await asyncio.gather(*(_connect(g, url, gate) for g, url in targets))
    print(json.dumps({"ready": len(viewers)}), flush=True)
    while command := json.loads(await asyncio.to_thread(read) or "{}"):
        if command.get("close"):
            break
        r, n = command["round"], command["lines"]
        try:
            async with asyncio.timeout(command["timeout"]):
                await asyncio.gather(*(v.wait_end(r) for v in viewers))
        except TimeoutError:
            pass
        ms: dict[str, list[float]] = defaultdict(list)
        missing: dict[str, int] = defaultdict(int)
        for v in viewers:
            got = [v.latency[(r, i)] / 1e6 for i in range(n) if (r, i) in v.latency]
            ms[v.gateway] += got
            missing[v.gateway] += n - len(got)
        closed = sum(v.closed for v in viewers)
        print(json.dumps({"ms": ms, "missing": missing, "closed": closed}), flush=True)
    await asyncio.gather(*(v.ws.close() for v in viewers), return_exceptions=True)
    await asyncio.gather(*(v.task for v in viewers), return_exceptions=True)


# -- the fan-out, from the bench ----------------------------------------------------------------


async def listed(srv: Server, sid: str) -> None:
    """Wait until `srv` knows the session (another node's list reaches it through Redis)."""
    async with httpx.AsyncClient(base_url=srv.url, timeout=10) as api, asyncio.timeout(20):
        while (await api.get(f"/api/sessions/{sid}")).status_code != 200:
            await asyncio.sleep(0.02)


LISTED: list[float] = []
"""Seconds from a session's creation (its POST answered) to its listing on every node asked."""


async def new_session(owner: Server, body: dict[str, Any], *elsewhere: Server) -> str:
    async with httpx.AsyncClient(base_url=owner.url, timeout=30) as api:
        r = await api.post("/api/sessions", json=body)
        r.raise_for_status()
        sid: str = r.json()["id"]
    t0 = time.perf_counter()
    await asyncio.gather(*(listed(srv, sid) for srv in elsewhere if srv is not owner))
    if any(srv is not owner for srv in elsewhere):
        LISTED.append(time.perf_counter() - t0)
    return sid


async def delete(owner: Server, sid: str) -> None:
    async with httpx.AsyncClient(base_url=owner.url, timeout=30) as api:
        await api.delete(f"/api/sessions/{sid}")


class Workers:
    """The client processes of the fan-out."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, targets: list[list[str]], procs: int) -> None:
        for p in range(procs):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--worker",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                limit=2**26,
            )
            self.procs.append(proc)
            await self.send(proc, targets[p::procs])
        await self.answers(300)

    async def send(self, proc: asyncio.subprocess.Process, message: Any) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        await proc.stdin.drain()

    async def answers(self, timeout: float) -> list[dict[str, Any]]:
        async def one(proc: asyncio.subprocess.Process) -> dict[str, Any]:
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError(f"a client process exited ({await proc.wait()})")
            answer: dict[str, Any] = json.loads(line)
            return answer

        async with asyncio.timeout(timeout):
            return await asyncio.gather(*(one(p) for p in self.procs))

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                try:
                    await self.send(proc, {"close": True})
                    async with asyncio.timeout(30):
                        await proc.wait()
                except (TimeoutError, OSError):
                    proc.kill()
                    await proc.wait()


def cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds of each group of processes so far, and of the whole machine ("machine",
    busy time of every core: other people's tests on the same box show here)."""
    out = {name: sum(proctable.cpu_seconds(ps).values()) for name, ps in pids.items()}
    jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    out["machine"] = (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")
    return out


async def fan_out(
    args: argparse.Namespace, nodes: dict[str, Server], redis: Redis
) -> tuple[dict[str, list[float]], dict[str, int], list[str]]:
    """Latencies (ms) by gateway over every round, lines missed by gateway, notes."""
    alpha = nodes["alpha"]
    body = {"command": sys.executable, "args": ["-c", PROGRAM], "name": "fan-out"}
    sid = await new_session(alpha, body, *nodes.values())
    names = list(nodes)
    targets = [
        [names[k % len(names)], f"{nodes[names[k % len(names)]].ws_url}/api/sessions/{sid}/ws"]
        for k in range(args.clients)
    ]
    workers = Workers()
    ms: dict[str, list[float]] = defaultdict(list)
    missing: dict[str, int] = defaultdict(int)
    notes = []
    try:
        t0 = time.monotonic()
        await workers.start(targets, args.procs)
        notes.append(f"{args.clients} clients connected in {time.monotonic() - t0:.1f} s")
        pids = {n: proctable.tree(s.home, s.pid).holders for n, s in nodes.items()}
        pids["redis"] = [redis.process.pid]
        pids["clients"] = [p.pid for p in workers.procs]
        async with httpx.AsyncClient(base_url=alpha.url, timeout=30) as api:
            for r in range(1, args.rounds + 1):
                progress(
                    f"fan-out round {r}/{args.rounds}: {args.lines} lines, {args.clients} clients"
                )
                before, t0 = cpu(pids), time.monotonic()
                timeout = args.lines * args.every + 60
                for proc in workers.procs:
                    await workers.send(proc, {"round": r, "lines": args.lines, "timeout": timeout})
                line = f"{r} {args.lines} {args.every}\n"
                (
                    await api.post(f"/api/sessions/{sid}/input", json={"data": line})
                ).raise_for_status()
                answers = await workers.answers(timeout + 30)
                wall = time.monotonic() - t0
                spent = cpu(pids)
                used = {n: spent[n] - before[n] for n in spent}
                load = ", ".join(f"{n} {used[n]:.1f}" for n in pids)
                ours = sum(used[n] for n in pids)
                notes.append(
                    f"round {r}: {wall:.1f} s wall; CPU s: {load}; the machine's {os.cpu_count()} "
                    f"cores were {used['machine'] / wall / (os.cpu_count() or 1):.0%} busy, "
                    f"{max(0.0, used['machine'] - ours) / wall:.2f} cores on other work"
                )
                for a in answers:
                    for g, xs in a["ms"].items():
                        ms[g] += xs
                    for g, k in a["missing"].items():
                        missing[g] += k
                    if a["closed"]:
                        notes.append(f"round {r}: {a['closed']} clients were closed")
    finally:
        await workers.close()
    await delete(alpha, sid)
    return ms, missing, notes


# -- throughput and echo through a gateway ------------------------------------------------------


async def throughput(owner: Server, via: Server, path: str) -> tuple[float, float]:
    """(MB/s of `cat path`, written on `owner`, reaching a client on `via`; bytes received
    / bytes written)."""
    size = Path(path).stat().st_size
    body = {"command": "/bin/sh", "args": ["-c", f"stty -echo; read _; cat {path}"]}
    sid = await new_session(owner, body, via)
    url = f"{via.ws_url}/api/sessions/{sid}/ws"
    async with websockets.connect(url, compression=None, max_size=None) as ws:
        await ws.send(json.dumps({"type": "input", "data": "\n"}))
        start = time.perf_counter()
        total, _ = await clients.read_until_exit(ws)
        elapsed = time.perf_counter() - start
    await delete(owner, sid)
    return size / elapsed / 1e6, total / size


async def echo(owner: Server, via: Server, samples: int) -> list[float]:
    sid = await new_session(owner, {"command": "/bin/cat"}, via)
    url = f"{via.ws_url}/api/sessions/{sid}/ws"
    async with websockets.connect(url, compression=None, max_size=None) as ws:
        # Past whatever the replay sends: a keystroke seen back.
        await ws.send(json.dumps({"type": "input", "data": "w"}))
        while not (isinstance(m := await ws.recv(), bytes) and b"w" in m):
            pass
        out = await clients.echo_times(ws, samples)
    await delete(owner, sid)
    return out


def side_by_side(args: argparse.Namespace, servers: dict[str, Server], path: str) -> Results:
    alpha, beta, solo = servers["alpha"], servers["beta"], servers["solo"]
    pairs = {"solo": (solo, solo), "owner": (alpha, alpha), "gateway": (alpha, beta)}
    out: Results = defaultdict(lambda: defaultdict(list))
    for i in range(args.rounds):
        progress(f"round {i + 1}/{args.rounds}: throughput and echo")
        out["tp"]["bare"].append(bare.throughput(path))
        for label, (owner, via) in pairs.items():
            mb_s, got = asyncio.run(throughput(owner, via, path))
            out["tp"][label].append(mb_s)
            out["got"][label].append(got * 100)
        for label, seconds in [("bare", bare.echo(args.echo))] + [
            (label, asyncio.run(echo(owner, via, args.echo)))
            for label, (owner, via) in pairs.items()
        ]:
            out["echo"][label].append(quantile_ms(seconds, 0.5))
            out["echo99"][label].append(quantile_ms(seconds, 0.99))
    return out


# -- the report ---------------------------------------------------------------------------------


def aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(f"{c:{widths[i]}}" if i == 0 else f"{c:>{widths[i]}}" for i, c in enumerate(r))
        for r in rows
    ]


def fan_out_table(ms: dict[str, list[float]], missing: dict[str, int]) -> list[str]:
    groups = {
        "all": [x for xs in ms.values() for x in xs],
        "owner (alpha)": ms.get("alpha", []),
        "gateways (beta, gamma)": ms.get("beta", []) + ms.get("gamma", []),
        "  beta": ms.get("beta", []),
        "  gamma": ms.get("gamma", []),
    }
    lost = {"all": sum(missing.values()), "owner (alpha)": missing.get("alpha", 0)}
    lost["gateways (beta, gamma)"] = missing.get("beta", 0) + missing.get("gamma", 0)
    lost["  beta"], lost["  gamma"] = missing.get("beta", 0), missing.get("gamma", 0)
    rows = [["write -> client, ms", "receipts", "missed", "p50", "p90", "p99", "max"]]
    for name, xs in groups.items():
        figures = [quantile_ms([x / 1000 for x in xs], q) for q in (0.5, 0.9, 0.99)] if xs else []
        rows.append(
            [name, str(len(xs)), str(lost.get(name, 0))]
            + [f"{f:.1f}" for f in figures]
            + [f"{max(xs):.1f}" if xs else "-"]
        )
    return aligned(rows)


def side_table(results: Results) -> list[str]:
    labels = ["bare", "solo", "owner", "gateway"]
    rows = [["", "bare PTY", "solo (no cluster)", "owner (alpha)", "gateway (alpha via beta)"]]
    for title, key, digits in [
        ("throughput, MB/s", "tp", 1),
        ("  bytes received / written, %", "got", 0),
        ("echo median, ms", "echo", 3),
        ("echo p99, ms", "echo99", 3),
    ]:
        rows.append([title, *(cell(results[key].get(label, []), digits) for label in labels)])
    return aligned(rows)


# -- main ---------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, fleet: Fleet, redis: Redis, tmp: Path) -> list[str]:
    if args.code:
        version = versions.from_path("cluster", args.code)
    else:
        version = versions.working_tree("cluster")
    version.check()
    servers = {
        name: fleet.start(version, name, *NODE_ARGS, "--redis", redis.url, "--node", name)
        for name in NODES
    }
    servers["solo"] = fleet.start(version, "solo", *NODE_ARGS)
    nodes = {name: servers[name] for name in NODES}

    ms, missing, notes = asyncio.run(fan_out(args, nodes, redis))
    data = tmp / "out.txt"
    line = ("0123456789abcdefghijklmnopqrstuvwxyz" * 3)[:99] + "\n"
    data.write_text(line * (args.mb * 1_000_000 // 100))
    results = side_by_side(args, servers, str(data))

    return [
        f"fan-out: one session on alpha, {args.clients} clients over {', '.join(NODES)} "
        f"({args.procs} client processes), {args.lines} lines every {args.every} s, "
        f"{args.rounds} rounds",
        *fan_out_table(ms, missing),
        *(f"  {note}" for note in notes),
        "",
        f"throughput ({args.mb} MB of `cat`) and echo ({args.echo} keys into `cat`): median "
        f"(min-max) of {args.rounds} interleaved rounds",
        *side_table(results),
        "",
        f"a new session listed by the other nodes after {quantile_ms(LISTED, 0.5):.0f} ms "
        f"(median of {len(LISTED)}; polled every 20 ms)",
        f"code: {version.about}; load average at the end: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=1000, help="fan-out WebSocket clients")
    ap.add_argument("--lines", type=int, default=50, help="timestamped lines per fan-out round")
    ap.add_argument("--every", type=float, default=0.1, help="seconds between lines")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of each measure")
    ap.add_argument("--procs", type=int, default=2, help="processes the clients run in")
    ap.add_argument("--mb", type=int, default=16, help="MB of output for throughput")
    ap.add_argument("--echo", type=int, default=200, help="keystrokes per echo round")
    ap.add_argument("--code", type=Path, metavar="PATH", help="servers: checkout at PATH")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="defaults of 90 clients, 20 lines, 2 MB, 100 keys, 1 process",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    if "--quick" in sys.argv[1:]:  # smaller defaults; what is given still wins
        ap.set_defaults(clients=90, lines=20, mb=2, echo=100, procs=1)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(worker())
        return 0
    if min(args.clients, args.lines, args.rounds, args.procs, args.mb, args.echo) < 1:
        ap.error("--clients, --lines, --rounds, --procs, --mb and --echo must be at least 1")
    progress(f"open files: up to {raise_nofile()}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench._interrupt)

    fleet: Fleet | None = None
    redis: Redis | None = None
    report: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="vt-bench-cluster-") as tmp:
            redis = Redis(Path(tmp) / "redis")
            try:
                # The nodes stop first: leaving, each says so in Redis.
                with Fleet(Path(tmp)) as fleet:
                    report = measure(args, fleet, redis, Path(tmp))
            finally:
                redis.stop()
    except BaseException:
        if not bench.INTERRUPTED:
            raise
        progress(f"interrupted by {signal.Signals(bench.INTERRUPTED[0]).name}")
        return 128 + bench.INTERRUPTED[0]
    finally:
        if fleet is not None:
            if not bench.INTERRUPTED:
                for exited in fleet.exited:
                    progress(exited)
            for note in fleet.notes:
                progress(f"cleanup: {note}")
            verdict = fleet.verify()
            if redis is not None and proctable.alive(redis.process.pid):
                verdict += f"; redis-server {redis.process.pid} STILL RUNNING"
            progress(verdict + " (redis-server too)")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
