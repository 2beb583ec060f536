"""Many viewers of one session on one server: write-to-receipt latency.

    python bench/fanout.py [--clients 1000] [--lines 50] [--every 0.1] [--rounds 3]
                           [--procs 2] [--compare REV | --before PATH] [--quick]

One session runs the fan-out program of harness/viewers.py (a line `T<round> <i> <time_ns>`
every `--every` s); `--clients` WebSockets watch it from `--procs` client processes of their
own, and note when each line first reaches them. Latency: receipt - write, both from the same
clock; p50/p90/p99/max over every client and line of every round. On a small machine the
clients' own CPU is in the figures (they share the cores with the server).

With --compare REV (or --before PATH), the rounds alternate between that version and this
tree, each on a fresh server with its clients connected anew: before/after in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import defaultdict

from harness import clients, options, report, versions, viewers
from harness.report import progress
from harness.run import Run, open_files
from harness.servers import Server


async def one_round(args: argparse.Namespace, srv: Server, r: int) -> tuple[viewers.Round, str]:
    """What the viewers saw of one round, and a note on its time and CPU."""
    sid = await clients.create(srv, viewers.BODY)
    url = f"{srv.ws_url}/api/sessions/{sid}/ws"
    workers = viewers.Workers()
    try:
        t0 = time.monotonic()
        await workers.start([["solo", url]] * args.clients, args.procs)
        connected = time.monotonic() - t0
        pids = {"server": srv.holders(), "clients": [p.pid for p in workers.procs]}
        seen = await workers.round(srv.url, sid, r, args.lines, args.every, pids)
    finally:
        await workers.close()
    await clients.delete(srv, sid)
    used = seen.cpu
    note = (
        f"connected in {connected:.1f} s; {seen.wall:.1f} s wall; CPU s: server "
        f"{used['server']:.1f}, clients {used['clients']:.1f}, machine {used['machine']:.1f}"
    )
    return seen, note


def main() -> int:
    ap = options.parser(__doc__)
    viewers.add_options(ap)
    options.add_rounds(ap, 3, "rounds (per version)")
    options.add_quick(ap, "100 clients, 20 lines, 1 round", clients=100, lines=20, rounds=1)
    options.add_versions(ap)
    options.add_json(ap)
    args = ap.parse_args()
    options.at_least_one(ap, args, "clients", "lines", "rounds", "procs")
    progress(f"open files: up to {open_files()}")
    before, after = versions.chosen(args, alone="ours")
    targets = [before, after] if before else [after]

    ms: dict[str, list[float]] = defaultdict(list)
    missed: dict[str, int] = defaultdict(int)
    notes: list[str] = []
    with Run("vt-bench-fanout-") as run:
        for r in range(1, args.rounds + 1):
            for v in targets:
                progress(f"round {r}/{args.rounds}: {v.label}, {args.clients} clients")
                srv = run.fleet.start(v, f"fanout-{r}", *viewers.SERVER_ARGS)
                try:
                    seen, note = asyncio.run(one_round(args, srv, r))
                finally:
                    run.fleet.stop(srv)
                ms[v.label] += seen.ms["solo"]
                missed[v.label] += seen.missing["solo"]
                notes.append(f"round {r}, {v.label}: {note}")

    rows = [viewers.row(v.label, ms[v.label], missed[v.label]) for v in targets]
    print(
        f"{args.clients} clients on one session, {args.procs} client processes, "
        f"{args.lines} lines every {args.every} s, {args.rounds} rounds"
    )
    print("\n".join(report.aligned([viewers.HEAD, *rows])))
    for v in targets:
        print(f"  {v.label}: {v.about}")
    print("\n".join(f"  {n}" for n in notes))
    print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report.write_json(args.json, {"ms": ms, "missed": missed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
