"""Many viewers of one session on one server: write-to-receipt latency.

    python bench/fanout.py [--clients 1000] [--lines 50] [--every 0.1] [--rounds 3]
                           [--procs 2] [--compare REV | --before PATH] [--quick]

One session runs bench/cluster.py's fan-out program (a line `T<round> <i> <time_ns>` every
`--every` s); `--clients` WebSockets watch it from `--procs` client processes of their own
(cluster.py's worker), and note when each line first reaches them. Latency: receipt - write,
both from the same clock; p50/p90/p99/max over every client and line of every round. On a
small machine the clients' own CPU is in the figures (they share the cores with the server).

With --compare REV (or --before PATH), the rounds alternate between that version and this
tree, each on a fresh server with its clients connected anew: before/after in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import bench
import cluster
import httpx
import proctable
import versions
from bench import progress, quantile_ms
from servers import Fleet, Server


async def one_round(args: argparse.Namespace, srv: Server, r: int) -> tuple[list[float], int, str]:
    """Latencies (ms) of one round, lines missed, and a note on CPU."""
    body = {"command": sys.executable, "args": ["-c", cluster.PROGRAM], "name": "fan-out"}
    sid = await cluster.new_session(srv, body)
    url = f"{srv.ws_url}/api/sessions/{sid}/ws"
    workers = cluster.Workers()
    ms: list[float] = []
    missing = 0
    try:
        t0 = time.monotonic()
        await workers.start([["solo", url]] * args.clients, args.procs)
        connected = time.monotonic() - t0
        pids = {
            "server": proctable.tree(srv.home, srv.pid).holders,
            "clients": [p.pid for p in workers.procs],
        }
        before, t0 = cluster.cpu(pids), time.monotonic()
        timeout = args.lines * args.every + 60
        for proc in workers.procs:
            await workers.send(proc, {"round": r, "lines": args.lines, "timeout": timeout})
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as api:
            line = f"{r} {args.lines} {args.every}\n"
            (await api.post(f"/api/sessions/{sid}/input", json={"data": line})).raise_for_status()
        answers = await workers.answers(timeout + 30)
        wall = time.monotonic() - t0
        used = {k: v - before[k] for k, v in cluster.cpu(pids).items()}
        for a in answers:
            for xs in a["ms"].values():
                ms += xs
            missing += sum(a["missing"].values())
        note = (
            f"connected in {connected:.1f} s; {wall:.1f} s wall; CPU s: server "
            f"{used['server']:.1f}, clients {used['clients']:.1f}, machine {used['machine']:.1f}"
        )
    finally:
        await workers.close()
    await cluster.delete(srv, sid)
    return ms, missing, note


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=1000, help="WebSocket clients")
    ap.add_argument("--lines", type=int, default=50, help="timestamped lines per round")
    ap.add_argument("--every", type=float, default=0.1, help="seconds between lines")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (per version)")
    ap.add_argument("--procs", type=int, default=2, help="processes the clients run in")
    ap.add_argument("--quick", action="store_true", help="100 clients, 20 lines, 1 round")
    versions.add_before_options(ap)
    args = ap.parse_args()
    if args.quick:
        args.clients, args.lines, args.rounds = 100, 20, 1
    if min(args.clients, args.lines, args.rounds, args.procs) < 1:
        ap.error("--clients, --lines, --rounds and --procs must be at least 1")
    progress(f"open files: up to {cluster.raise_nofile()}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, bench._interrupt)

    before = versions.before(args)
    after = versions.working_tree("after" if before else "ours")
    targets = [before, after] if before else [after]
    for v in targets:
        v.check()

    ms: dict[str, list[float]] = defaultdict(list)
    missed: dict[str, int] = defaultdict(int)
    notes: list[str] = []
    fleet: Fleet | None = None
    try:
        with (
            tempfile.TemporaryDirectory(prefix="vt-bench-fanout-") as tmp,
            Fleet(Path(tmp)) as fleet,
        ):
            for r in range(1, args.rounds + 1):
                for v in targets:
                    progress(f"round {r}/{args.rounds}: {v.label}, {args.clients} clients")
                    srv = fleet.start(v, f"fanout-{r}", *cluster.NODE_ARGS)
                    try:
                        xs, lost, note = asyncio.run(one_round(args, srv, r))
                    finally:
                        fleet.stop(srv)
                    ms[v.label] += xs
                    missed[v.label] += lost
                    notes.append(f"round {r}, {v.label}: {note}")
    except BaseException:
        if not bench.INTERRUPTED:
            raise
        progress(f"interrupted by {signal.Signals(bench.INTERRUPTED[0]).name}")
        return 128 + bench.INTERRUPTED[0]
    finally:
        if fleet is not None:
            for note in fleet.notes:
                progress(f"cleanup: {note}")
            progress(fleet.verify())

    rows = [["write -> client, ms", "receipts", "missed", "p50", "p90", "p99", "max"]]
    for v in targets:
        xs = ms[v.label]
        figures = [f"{quantile_ms([x / 1000 for x in xs], q):.1f}" for q in (0.5, 0.9, 0.99)]
        rows.append(
            [v.label, str(len(xs)), str(missed[v.label])]
            + (figures if xs else ["-"] * 3)
            + [f"{max(xs):.1f}" if xs else "-"]
        )
    print(
        f"{args.clients} clients on one session, {args.procs} client processes, "
        f"{args.lines} lines every {args.every} s, {args.rounds} rounds"
    )
    print("\n".join(cluster.aligned(rows)))
    for v in targets:
        print(f"  {v.label}: {v.about}")
    print("\n".join(f"  {n}" for n in notes))
    print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
