"""Many viewers of one session, in client processes of their own (fanout.py, cluster.py).

The session runs PROGRAM: for each line `ROUND N EVERY` typed into it, N lines
`T<round> <i> <time_ns>`, one every EVERY seconds, then `E<round>`. Each viewer, a WebSocket
on some gateway (a node), notes when each line first reaches it. Latency: receipt - write,
both from the same clock. The client processes run this module (`python -m harness.viewers`):
their clients as JSON on the first line of stdin, then one command a line; answers on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import websockets

from vibetunnel.protocol import frames

from . import proctable
from .report import quantile
from .run import open_files

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
SERVER_ARGS = (
    "--no-auth",
    "--rate-limit",
    "1000000",
    "--max-connections-per-address",
    "4000",
    "--idle-timeout",
    "3600",  # the fan-out clients only listen
)
"""Our server's limits out of the way of a thousand viewers from one address."""
BODY = {"command": sys.executable, "args": ["-c", PROGRAM], "name": "fan-out"}
"""POST /api/sessions's body for the fan-out session."""
STAMP = re.compile(rb"T(\d+) (\d+) (\d+)")
END = re.compile(rb"E(\d+)")
CONNECT_AT_ONCE = 50
HEAD = ["write -> client, ms", "receipts", "missed", "p50", "p90", "p99", "max"]
"""The head of a latency table; `row` makes its rows."""


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
    """A client process: its clients ([gateway, url] pairs) as JSON on the first line of
    stdin, then one command a line ({"round": R, "lines": N, "timeout": S} or {"close":
    true}); answers on stdout."""
    open_files()
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


# -- from the bench -----------------------------------------------------------------------------


def add_options(ap: argparse.ArgumentParser) -> None:
    """A fan-out's options: how many viewers, in how many processes, how many lines."""
    ap.add_argument("--clients", type=int, default=1000, help="fan-out WebSocket clients")
    ap.add_argument("--lines", type=int, default=50, help="timestamped lines per fan-out round")
    ap.add_argument("--every", type=float, default=0.1, help="seconds between lines")
    ap.add_argument("--procs", type=int, default=2, help="processes the clients run in")


@dataclass
class Round:
    """What the viewers saw of one round: latencies (ms) and lines missed, by gateway."""

    ms: dict[str, list[float]]
    missing: dict[str, int]
    closed: int
    """Viewers found closed."""
    wall: float
    """Seconds from the order to the last answer."""
    cpu: dict[str, float]
    """CPU seconds of each group of processes over the round, and of the machine."""


class Workers:
    """The client processes of a fan-out."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, targets: list[list[str]], procs: int) -> None:
        """`procs` processes sharing the viewers `targets` ([gateway, url] pairs), connected."""
        path = [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
        for p in range(procs):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "harness.viewers",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
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

    async def round(
        self, url: str, sid: str, r: int, lines: int, every: float, pids: dict[str, list[int]]
    ) -> Round:
        """Round `r`: `lines` lines every `every` s typed for into session `sid` (on the
        server at `url`); CPU counted for each group of `pids`."""
        before, t0 = cpu(pids), time.monotonic()
        timeout = lines * every + 60
        for proc in self.procs:
            await self.send(proc, {"round": r, "lines": lines, "timeout": timeout})
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            order = {"data": f"{r} {lines} {every}\n"}
            (await api.post(f"/api/sessions/{sid}/input", json=order)).raise_for_status()
        answers = await self.answers(timeout + 30)
        wall = time.monotonic() - t0
        used = {k: v - before[k] for k, v in cpu(pids).items()}
        out = Round(defaultdict(list), defaultdict(int), 0, wall, used)
        for a in answers:
            for g, xs in a["ms"].items():
                out.ms[g] += xs
            for g, k in a["missing"].items():
                out.missing[g] += k
            out.closed += a["closed"]
        return out

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


def cpu(pids: Mapping[str, list[int]]) -> dict[str, float]:
    """CPU seconds of each group of processes so far, and of the whole machine ("machine")."""
    out = {name: sum(proctable.cpu_seconds(ps).values()) for name, ps in pids.items()}
    out["machine"] = proctable.machine_cpu()
    return out


def row(name: str, ms: list[float], missed: int) -> list[str]:
    """A row under HEAD: receipts, lines missed, p50/p90/p99/max of the latencies (ms)."""
    figures = [f"{quantile(ms, q):.1f}" for q in (0.5, 0.9, 0.99)] if ms else ["-"] * 3
    return [name, str(len(ms)), str(missed), *figures, f"{max(ms):.1f}" if ms else "-"]


if __name__ == "__main__":
    asyncio.run(worker())
