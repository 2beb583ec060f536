"""Many machines, one dashboard: a cluster of three nodes on one Redis, measured from clients.

    python bench/cluster.py [--clients 1000] [--lines 50] [--every 0.1] [--rounds 2]
                            [--procs 2] [--mb 16] [--echo 200] [--quick] [--after PATH]

A real `redis-server` on a free loopback port, three nodes (alpha, beta, gamma) of this tree's
code (or of the checkout at --after PATH, or --code PATH) joined to it, and a server outside
the cluster (solo) for context. Figures:

- fan-out: one session on alpha runs a program that writes `T<round> <i> <time_ns>` every
  `--every` s; `--clients` WebSockets, spread evenly over the three nodes (a third on the
  owning node, two thirds through remote gateways), note when each line reaches them. Latency:
  receipt - write, both from the same clock; p50/p90/p99/max over every client and line of
  every round, overall, on the owning node, through a gateway. The clients run in `--procs`
  processes of their own (harness/viewers.py), so on a small machine their load is in the
  figures;
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
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from harness import bare, clients, options, report, versions, viewers
from harness.clients import OursConn
from harness.fleet import Fleet
from harness.loads import echo_times, output_file, read_until
from harness.report import Results, add_latency, cell, progress, quantile_ms
from harness.run import Run, open_files
from harness.servers import Redis, Server
from harness.versions import Version

NODES = ("alpha", "beta", "gamma")


# -- sessions seen through the cluster ----------------------------------------------------------


async def listed(srv: Server, sid: str) -> None:
    """Wait until `srv` knows the session (another node's list reaches it through Redis)."""
    async with httpx.AsyncClient(base_url=srv.url, timeout=10) as api, asyncio.timeout(20):
        while (await api.get(f"/api/sessions/{sid}")).status_code != 200:
            await asyncio.sleep(0.02)


LISTED: list[float] = []
"""Seconds from a session's creation (its POST answered) to its listing on every node asked."""


async def new_session(owner: Server, body: dict[str, Any], *elsewhere: Server) -> str:
    """A session on `owner`, once every node of `elsewhere` lists it."""
    sid = await clients.create(owner, body)
    t0 = time.perf_counter()
    await asyncio.gather(*(listed(srv, sid) for srv in elsewhere if srv is not owner))
    if any(srv is not owner for srv in elsewhere):
        LISTED.append(time.perf_counter() - t0)
    return sid


# -- the fan-out ----------------------------------------------------------------------------------


async def fan_out(
    args: argparse.Namespace, nodes: dict[str, Server], redis: Redis
) -> tuple[dict[str, list[float]], dict[str, int], list[str]]:
    """Latencies (ms) by gateway over every round, lines missed by gateway, notes."""
    alpha = nodes["alpha"]
    sid = await new_session(alpha, viewers.BODY, *nodes.values())
    names = list(nodes)
    targets = [
        [names[k % len(names)], f"{nodes[names[k % len(names)]].ws_url}/api/sessions/{sid}/ws"]
        for k in range(args.clients)
    ]
    workers = viewers.Workers()
    ms: dict[str, list[float]] = defaultdict(list)
    missing: dict[str, int] = defaultdict(int)
    notes = []
    try:
        t0 = time.monotonic()
        await workers.start(targets, args.procs)
        notes.append(f"{args.clients} clients connected in {time.monotonic() - t0:.1f} s")
        pids = {n: s.holders() for n, s in nodes.items()}
        pids["redis"] = [redis.pid]
        pids["clients"] = [p.pid for p in workers.procs]
        for r in range(1, args.rounds + 1):
            progress(f"fan-out round {r}/{args.rounds}: {args.lines} lines, {args.clients} clients")
            seen = await workers.round(alpha.url, sid, r, args.lines, args.every, pids)
            used, wall = seen.cpu, seen.wall
            load = ", ".join(f"{n} {used[n]:.1f}" for n in pids)
            ours = sum(used[n] for n in pids)
            notes.append(
                f"round {r}: {wall:.1f} s wall; CPU s: {load}; the machine's {os.cpu_count()} "
                f"cores were {used['machine'] / wall / (os.cpu_count() or 1):.0%} busy, "
                f"{max(0.0, used['machine'] - ours) / wall:.2f} cores on other work"
            )
            for g, xs in seen.ms.items():
                ms[g] += xs
            for g, k in seen.missing.items():
                missing[g] += k
            if seen.closed:
                notes.append(f"round {r}: {seen.closed} clients were closed")
    finally:
        await workers.close()
    await clients.delete(alpha, sid)
    return ms, missing, notes


# -- throughput and echo through a gateway ------------------------------------------------------


async def throughput(owner: Server, via: Server, path: str) -> tuple[float, float]:
    """(MB/s of `cat path`, written on `owner`, reaching a client on `via`; bytes received
    / bytes written)."""
    size = Path(path).stat().st_size
    body = {"command": "/bin/sh", "args": ["-c", f"stty -echo; read _; cat {path}"]}
    sid = await new_session(owner, body, via)
    conn = await OursConn.connect(via.ws_url, sid)
    try:
        total, _, seconds = await conn.run_to_exit()
    finally:
        await conn.close()
    await clients.delete(owner, sid)
    return size / seconds / 1e6, total / size


async def echo(owner: Server, via: Server, samples: int) -> list[float]:
    sid = await new_session(owner, {"command": "/bin/cat"}, via)
    conn = await OursConn.connect(via.ws_url, sid)
    try:
        # Past whatever the replay sends: a keystroke seen back.
        await conn.send("w")
        await read_until(conn, b"w")
        out = await echo_times(conn, samples)
    finally:
        await conn.close()
    await clients.delete(owner, sid)
    return out


def side_by_side(args: argparse.Namespace, servers: dict[str, Server], path: str) -> Results:
    alpha, beta, solo = servers["alpha"], servers["beta"], servers["solo"]
    pairs = {"solo": (solo, solo), "owner": (alpha, alpha), "gateway": (alpha, beta)}
    out = report.results()
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
            add_latency(out, label, seconds, "echo", "echo99")
    return out


# -- the report ---------------------------------------------------------------------------------


def fan_out_table(ms: dict[str, list[float]], missing: dict[str, int]) -> list[str]:
    groups = {
        "all": ([x for xs in ms.values() for x in xs], sum(missing.values())),
        "owner (alpha)": (ms.get("alpha", []), missing.get("alpha", 0)),
        "gateways (beta, gamma)": (
            ms.get("beta", []) + ms.get("gamma", []),
            missing.get("beta", 0) + missing.get("gamma", 0),
        ),
        "  beta": (ms.get("beta", []), missing.get("beta", 0)),
        "  gamma": (ms.get("gamma", []), missing.get("gamma", 0)),
    }
    rows = [viewers.row(name, xs, lost) for name, (xs, lost) in groups.items()]
    return report.aligned([viewers.HEAD, *rows])


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
    return report.aligned(rows)


# -- main ---------------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace, version: Version, fleet: Fleet, tmp: Path
) -> tuple[list[str], dict[str, Any]]:
    # Started first, so it stops last: leaving, each node says so in Redis.
    redis = fleet.own(Redis(tmp / "redis"))
    servers = {
        name: fleet.start(version, name, *viewers.SERVER_ARGS, "--redis", redis.url, "--node", name)
        for name in NODES
    }
    servers["solo"] = fleet.start(version, "solo", *viewers.SERVER_ARGS)
    nodes = {name: servers[name] for name in NODES}

    ms, missing, notes = asyncio.run(fan_out(args, nodes, redis))
    path = output_file(tmp / "out.txt", args.mb)
    results = side_by_side(args, servers, path)

    lines = [
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
    figures = {"fan_out_ms": ms, "missing": missing, "results": results, "listed_s": LISTED}
    return lines, figures


def main() -> int:
    ap = options.parser(__doc__)
    viewers.add_options(ap)
    options.add_rounds(ap, 2, "rounds of each measure")
    ap.add_argument("--mb", type=int, default=16, help="MB of output for throughput")
    ap.add_argument("--echo", type=int, default=200, help="keystrokes per echo round")
    options.add_versions(ap, before=False, after_aliases=["--code"])
    options.add_quick(
        ap,
        "defaults of 90 clients, 20 lines, 2 MB, 100 keys, 1 process",
        clients=90,
        lines=20,
        mb=2,
        echo=100,
        procs=1,
    )
    options.add_json(ap)
    args = ap.parse_args()
    options.at_least_one(ap, args, "clients", "lines", "rounds", "procs", "mb", "echo")
    progress(f"open files: up to {open_files()}")
    _, version = versions.chosen(args, after="cluster")

    with Run("vt-bench-cluster-") as run:
        lines, figures = measure(args, version, run.fleet, run.tmp)
    print("\n".join(lines))
    report.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
