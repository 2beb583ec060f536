"""Benchmarks, side by side with a bare PTY in the same run.

    python bench/bench.py [--mb 64] [--echo 1000] [--sessions 100]

Figures:
- throughput: MB/s of `cat FILE` output reaching a WebSocket client, vs a bare PTY read loop
  (recording on and off);
- echo latency: one keystroke sent, its echo received (median and p99), vs a bare PTY;
- trickle: messages per second at the client for output arriving every 2 ms;
- memory: server RSS idle and with N idle sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import RunningServer, start_server  # noqa: E402

from vibetunnel.config import SESSION_ENV  # noqa: E402
from vibetunnel.protocol import frames  # noqa: E402

TRICKLE = (
    "import sys,time\nfor i in range(1500):\n"
    " sys.stdout.write('.'); sys.stdout.flush(); time.sleep(0.002)"
)


# -- bare PTY -----------------------------------------------------------------------------------


def bare_spawn(argv: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    return proc, master


def bare_read_all(master: int) -> tuple[int, int]:
    total = reads = 0
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        total += len(data)
        reads += 1
    return total, reads


def bare_throughput(path: str) -> float:
    proc, master = bare_spawn(["cat", path])
    start = time.perf_counter()
    total, _ = bare_read_all(master)
    elapsed = time.perf_counter() - start
    proc.wait()
    os.close(master)
    return total / elapsed / 1e6


def bare_echo(samples: int) -> list[float]:
    proc, master = bare_spawn(["cat"])
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        os.write(master, b"a")
        os.read(master, 100)
        out.append(time.perf_counter() - t0)
    proc.kill()
    proc.wait()
    os.close(master)
    return out


def bare_trickle() -> float:
    proc, master = bare_spawn([sys.executable, "-c", TRICKLE])
    start = time.perf_counter()
    _, reads = bare_read_all(master)
    elapsed = time.perf_counter() - start
    proc.wait()
    os.close(master)
    return reads / elapsed


# -- through the server -------------------------------------------------------------------------


async def session(api: httpx.AsyncClient, srv: RunningServer, **body: Any) -> tuple[str, Any]:
    r = await api.post("/api/sessions", json=body)
    r.raise_for_status()
    sid = r.json()["id"]
    ws = await websockets.connect(f"{srv.ws_url}/api/sessions/{sid}/ws", max_size=None)
    return sid, ws


async def read_until_exit(ws: Any) -> tuple[int, int]:
    """(output bytes, binary messages) until the exit message."""
    total = count = 0
    async for msg in ws:
        if isinstance(msg, bytes):
            total += len(msg) - frames.HEADER_SIZE
            count += 1
        elif json.loads(msg).get("type") == "exit":
            break
    return total, count


async def server_throughput(srv: RunningServer, path: str) -> float:
    async with httpx.AsyncClient(base_url=srv.url) as api:
        _, ws = await session(
            api, srv, command="/bin/sh", args=["-c", f"stty -echo; read _; cat {path}"]
        )
        await ws.send(json.dumps({"type": "input", "data": "\n"}))
        start = time.perf_counter()
        total, _ = await read_until_exit(ws)
        elapsed = time.perf_counter() - start
        await ws.close()
    return total / elapsed / 1e6


async def echo_times(ws: Any, samples: int) -> list[float]:
    """Seconds from sending one keystroke to receiving its echo, `samples` times."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        await ws.send('{"type":"input","data":"a"}')
        while not isinstance(await ws.recv(), bytes):
            pass
        out.append(time.perf_counter() - t0)
    return out


async def server_echo(srv: RunningServer, samples: int) -> list[float]:
    async with httpx.AsyncClient(base_url=srv.url) as api:
        sid, ws = await session(api, srv, command="/bin/cat")
        out = await echo_times(ws, samples)
        await ws.close()
        await api.delete(f"/api/sessions/{sid}")
    return out


async def server_trickle(srv: RunningServer) -> float:
    async with httpx.AsyncClient(base_url=srv.url) as api:
        _, ws = await session(
            api,
            srv,
            command="/bin/sh",
            args=["-c", f'read _; exec {sys.executable} -c "{TRICKLE}"'],
        )
        await ws.send(json.dumps({"type": "input", "data": "\n"}))
        # Skip the echo of the newline, then count messages while the dots trickle.
        first = await ws.recv()
        del first
        start = time.perf_counter()
        _, count = await read_until_exit(ws)
        elapsed = time.perf_counter() - start
        await ws.close()
    return count / elapsed


class VtSession:
    """`vt COMMAND` in a PTY of ours (its local terminal, drained by a thread)."""

    def __init__(self, srv: RunningServer, name: str, argv: list[str]) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, "VIBETUNNEL_HOME": str(srv.home)}
        env.pop(SESSION_ENV, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vibetunnel.cli.vt", "--name", name, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.drain = threading.Thread(target=bare_read_all, args=(self.master,), daemon=True)
        self.drain.start()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()
        self.drain.join(5)
        os.close(self.master)


async def vt_session_id(api: httpx.AsyncClient, name: str) -> str:
    async with asyncio.timeout(20):
        while True:
            for s in (await api.get("/api/sessions")).json():
                if s["name"] == name and s["status"] == "running":
                    return str(s["id"])
            await asyncio.sleep(0.05)


async def vt_throughput(srv: RunningServer, path: str, n: int) -> float:
    vt = VtSession(srv, f"vt-tp-{n}", ["sh", "-c", f"stty -echo; read _; cat {path}"])
    try:
        async with httpx.AsyncClient(base_url=srv.url) as api:
            sid = await vt_session_id(api, f"vt-tp-{n}")
            async with websockets.connect(
                f"{srv.ws_url}/api/sessions/{sid}/ws", max_size=None
            ) as ws:
                await ws.send(json.dumps({"type": "input", "data": "\n"}))
                start = time.perf_counter()
                total, _ = await read_until_exit(ws)
                return total / (time.perf_counter() - start) / 1e6
    finally:
        vt.close()


async def vt_echo(srv: RunningServer, samples: int) -> list[float]:
    vt = VtSession(srv, "vt-echo", ["cat"])
    try:
        async with httpx.AsyncClient(base_url=srv.url) as api:
            sid = await vt_session_id(api, "vt-echo")
            async with websockets.connect(
                f"{srv.ws_url}/api/sessions/{sid}/ws", max_size=None
            ) as ws:
                return await echo_times(ws, samples)
    finally:
        vt.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def server_memory(srv: RunningServer, n: int) -> tuple[int, int]:
    assert srv.process is not None
    before = rss_kb(srv.process.pid)
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as api:
        for _ in range(n):
            r = await api.post("/api/sessions", json={"command": "/bin/cat"})
            r.raise_for_status()
        after = rss_kb(srv.process.pid)
    return before, after


def ms(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=64, help="MB of output for throughput")
    ap.add_argument("--echo", type=int, default=1000, help="keystrokes for echo latency")
    ap.add_argument("--sessions", type=int, default=100, help="idle sessions for memory")
    ap.add_argument("--rounds", type=int, default=7, help="throughput rounds (median)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "out.txt"
        line = ("0123456789abcdefghijklmnopqrstuvwxyz" * 3)[:99] + "\n"
        data.write_text(line * (args.mb * 1_000_000 // 100))
        rows: list[tuple[str, str, str]] = []

        srv = start_server(
            Path(tmp) / "home", "--no-auth", "--rate-limit", "100000", "--max-sessions", "1000"
        )
        plain = start_server(
            Path(tmp) / "home2", "--no-auth", "--rate-limit", "100000", "--no-record"
        )
        try:
            # Interleaved rounds, medians: this machine's PTY speed drifts between runs.
            # Server CPU seconds per run: steadier than MB/s for the cost of recording.
            bare_runs, rec_runs, norec_runs = [], [], []
            rec_cpu, norec_cpu = [], []
            for _ in range(args.rounds):
                bare_runs.append(bare_throughput(str(data)))
                for target, runs, cpu in ((srv, rec_runs, rec_cpu), (plain, norec_runs, norec_cpu)):
                    assert target.process is not None
                    before = cpu_seconds(target.process.pid)
                    runs.append(asyncio.run(server_throughput(target, str(data))))
                    cpu.append(cpu_seconds(target.process.pid) - before)
            bare_tp = statistics.median(bare_runs)
            rec_tp = statistics.median(rec_runs)
            norec_tp = statistics.median(norec_runs)
            rows.append(("throughput, MB/s (recording on)", f"{rec_tp:.1f}", f"{bare_tp:.1f}"))
            rows.append(("throughput, MB/s (recording off)", f"{norec_tp:.1f}", f"{bare_tp:.1f}"))
            on_cpu, off_cpu = statistics.median(rec_cpu), statistics.median(norec_cpu)
            rows.append(
                (
                    f"server CPU s per {args.mb} MB, recording on / off",
                    f"{on_cpu:.2f} / {off_cpu:.2f}",
                    "-",
                )
            )

            vt_tp = statistics.median(
                asyncio.run(vt_throughput(srv, str(data), i)) for i in range(args.rounds)
            )
            rows.append(("throughput via vt, MB/s", f"{vt_tp:.1f}", f"{bare_tp:.1f}"))

            bare_lat = bare_echo(args.echo)
            srv_lat = asyncio.run(server_echo(srv, args.echo))
            rows.append(
                ("echo latency median, ms", f"{ms(srv_lat, 0.5):.3f}", f"{ms(bare_lat, 0.5):.3f}")
            )
            rows.append(
                ("echo latency p99, ms", f"{ms(srv_lat, 0.99):.3f}", f"{ms(bare_lat, 0.99):.3f}")
            )
            vt_lat = asyncio.run(vt_echo(srv, args.echo))
            rows.append(
                ("echo via vt median, ms", f"{ms(vt_lat, 0.5):.3f}", f"{ms(bare_lat, 0.5):.3f}")
            )
            rows.append(
                ("echo via vt p99, ms", f"{ms(vt_lat, 0.99):.3f}", f"{ms(bare_lat, 0.99):.3f}")
            )

            rows.append(
                (
                    "trickle (a byte / 2 ms), messages/s",
                    f"{asyncio.run(server_trickle(srv)):.1f}",
                    f"{bare_trickle():.1f} reads/s",
                )
            )

            # A fresh server: the one above still holds what heavy output made it allocate.
            fresh = start_server(
                Path(tmp) / "home3", "--no-auth", "--rate-limit", "100000", "--max-sessions", "1000"
            )
            try:
                before, after = asyncio.run(server_memory(fresh, args.sessions))
            finally:
                fresh.stop()
            rows.append(
                (
                    f"server RSS idle -> {args.sessions} idle `cat` sessions, MB",
                    f"{before / 1024:.1f} -> {after / 1024:.1f}",
                    "-",
                )
            )
        finally:
            srv.stop()
            plain.stop()

    width = max(len(r[0]) for r in rows)
    print(f"{'':{width}}  {'server':>16}  {'bare PTY':>16}")
    for name, ours, bare in rows:
        print(f"{name:{width}}  {ours:>16}  {bare:>16}")
    spread = ", ".join(
        f"{name} {min(runs):.0f}-{max(runs):.0f}"
        for name, runs in (("bare", bare_runs), ("on", rec_runs), ("off", norec_runs))
    )
    print(f"\nthroughput medians of {args.rounds} interleaved rounds; spread MB/s: {spread}")
    print(
        f"throughput ratio (recording on): {rec_tp / bare_tp:.0%} of bare; "
        f"recording costs {1 - rec_tp / norec_tp:.0%} against off in MB/s, "
        f"{on_cpu / off_cpu - 1:.0%} in server CPU"
    )


if __name__ == "__main__":
    main()
