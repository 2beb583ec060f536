"""Benchmarks, side by side with a bare PTY in the same run; with --compare, two code versions.

    python bench/bench.py [--mb 64] [--echo 1000] [--rounds 7] [--sessions 300]
    python bench/bench.py --compare REV [...]   # before: a git worktree of REV; after: this tree
    python bench/bench.py --before PATH [...]   # before: the checkout at PATH
    ... [--after PATH]                          # after: that checkout instead of this tree

Figures, measured in interleaved rounds (bare, before, after, bare, ...): medians (min-max):
- throughput: MB/s of `cat FILE` output reaching a WebSocket client (recording on and off, and
  through `vt`), vs a bare PTY read loop; CPU seconds spent by what holds the sessions;
- echo latency: one keystroke sent, its echo received (each round's median and p99);
- trickle: messages per second at the client for output arriving every 2 ms (one run each);
- memory: PSS and RSS of what holds the sessions (the server, and the keeper where there is
  one), idle and with N idle sessions, so the cost of one idle session; the session programs
  (the user's) apart. The holders are the server and, once sessions outlive it, the keeper
  (any helper process of theirs too); PSS is the figure that adds up over a process tree.

The WebSocket client reads without acking (a client that never acks, as these figures always
were); `vt COMMAND` runs in a PTY of the bench's, its local terminal drained by a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from harness import bare, clients, options, proctable, report, versions
from harness.clients import OursConn
from harness.fleet import Fleet
from harness.loads import echo_times, output_file
from harness.proctable import Memory, Tree
from harness.report import Results, add_latency, cell, progress, ratio
from harness.run import Run
from harness.servers import Server
from harness.versions import Version

SERVER_ARGS = ("--no-auth", "--rate-limit", "100000", "--max-sessions", "1000")

Pair = tuple[Server, Server]
"""A version's servers: recording on, recording off."""


# -- through the server -------------------------------------------------------------------------


async def throughput(srv: Server, path: str) -> float:
    """MB/s of `cat path` reaching a WebSocket client."""
    body = {"command": "/bin/sh", "args": ["-c", f"stty -echo; read _; cat {path}"]}
    conn = await clients.open_session(srv, body)
    total, _, seconds = await conn.run_to_exit()
    await conn.close()
    return total / seconds / 1e6


def throughput_and_cpu(srv: Server, path: str) -> tuple[float, float]:
    """MB/s at the client, and CPU seconds the server (and keeper) spent meanwhile."""
    meter = proctable.Meter(srv.holders)
    meter.mark()
    mb_s = asyncio.run(throughput(srv, path))
    meter.mark()
    return mb_s, meter.cpu()


async def echo(srv: Server, samples: int) -> list[float]:
    sid = await clients.create(srv, {"command": "/bin/cat"})
    conn = await OursConn.connect(srv.ws_url, sid)
    out = await echo_times(conn, samples)
    await conn.close()
    await clients.delete(srv, sid)
    return out


async def trickle(srv: Server) -> float:
    """Messages per second at the client while the TRICKLE program writes a byte every 2 ms."""
    body = {
        "command": "/bin/sh",
        "args": ["-c", f'read _; exec {sys.executable} -c "{bare.TRICKLE}"'],
    }
    conn = await clients.open_session(srv, body)
    # Skip the echo of the newline, then count messages while the dots trickle.
    _, count, seconds = await conn.run_to_exit(skip=1)
    await conn.close()
    return count / seconds


@contextlib.asynccontextmanager
async def vt(srv: Server, name: str, argv: list[str]) -> AsyncIterator[OursConn]:
    """`vt --name NAME ARGV` of the server's code version in a PTY of ours (its local terminal
    drained by a thread), and the WebSocket of its session once the server lists it running."""
    master, slave = os.openpty()
    env = {**os.environ, **srv.env, "VIBETUNNEL_HOME": str(srv.home)}
    env.pop("VIBETUNNEL_SESSION_ID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vibetunnel.cli.vt", "--name", name, *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    drain = threading.Thread(target=bare.read_all, args=(master,), daemon=True)
    drain.start()
    try:
        async with httpx.AsyncClient(base_url=srv.url) as api, asyncio.timeout(20):
            while not (sid := await _running(api, name)):
                await asyncio.sleep(0.05)
        conn = await OursConn.connect(srv.ws_url, sid)
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
        drain.join(5)
        os.close(master)


async def _running(api: httpx.AsyncClient, name: str) -> str:
    """The id of the running session named `name`, "" if none yet."""
    sessions = (await api.get("/api/sessions")).json()
    return next(
        (str(s["id"]) for s in sessions if (s["name"], s["status"]) == (name, "running")), ""
    )


async def vt_throughput(srv: Server, path: str, n: int) -> float:
    """MB/s of `vt cat path` reaching a WebSocket client."""
    async with vt(srv, f"vt-tp-{n}", ["sh", "-c", f"stty -echo; read _; cat {path}"]) as conn:
        total, _, seconds = await conn.run_to_exit()
        return total / seconds / 1e6


async def vt_echo(srv: Server, samples: int, n: int) -> list[float]:
    async with vt(srv, f"vt-echo-{n}", ["cat"]) as conn:
        return await echo_times(conn, samples)


# -- memory -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdleCost:
    """Memory of what holds the sessions, idle and with `n` idle sessions."""

    n: int
    idle: Memory
    loaded: Memory
    """The holders with `n` idle sessions."""
    programs: Memory
    """The `n` session programs themselves."""
    idle_tree: Tree
    loaded_tree: Tree

    def describe(self) -> str:
        return f"idle: {self.idle_tree.describe()}; loaded: {self.loaded_tree.describe()}"


def settled(srv: Server, count: int, timeout: float, what: str) -> Tree:
    """The server's process tree once it holds `count` session programs."""
    deadline = time.monotonic() + timeout
    while len((found := proctable.tree(srv.home, srv.pid)).sessions) != count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return found


async def idle_sessions(srv: Server, n: int) -> list[str]:
    """Start `n` idle `cat` sessions; their ids."""
    return [await clients.create(srv, {"command": "/bin/cat"}) for _ in range(n)]


def idle_cost(fleet: Fleet, version: Version, n: int) -> IdleCost:
    """Memory of a fresh server of `version` (and its keeper) idle, then with `n` idle `cat`s."""
    limit = str(max(1000, n + 10))
    srv = fleet.start(
        version, "memory", "--no-auth", "--rate-limit", "100000", "--max-sessions", limit
    )
    try:
        # Warm up with one session, ended: code and buffers every session shares are loaded on
        # the first one, and are no cost of each.
        asyncio.run(clients.delete(srv, *asyncio.run(idle_sessions(srv, 1))))
        idle_tree = settled(srv, 0, 10, "the warm-up session to end")
        idle = proctable.memory(idle_tree.holders)
        asyncio.run(idle_sessions(srv, n))
        loaded_tree = settled(srv, n, 30, f"{n} session programs")
        return IdleCost(
            n=n,
            idle=idle,
            loaded=proctable.memory(loaded_tree.holders),
            programs=proctable.memory(list(loaded_tree.sessions)),
            idle_tree=idle_tree,
            loaded_tree=loaded_tree,
        )
    finally:
        fleet.stop(srv)


# -- the rounds ---------------------------------------------------------------------------------


def one_round(i: int, args: argparse.Namespace, path: str, servers: dict[str, Pair]) -> Results:
    out = report.results()
    out["tp"]["bare"].append(bare.throughput(path))
    for label, (rec, norec) in servers.items():
        for key, srv in (("tp_on", rec), ("tp_off", norec)):
            mb_s, cpu = throughput_and_cpu(srv, path)
            out[key][label].append(mb_s)
            out[f"cpu_{key}"][label].append(cpu)
        out["vt_tp"][label].append(asyncio.run(vt_throughput(rec, path, i)))
    # A round's median and p99.
    add_latency(out, "bare", bare.echo(args.echo), "echo", "echo99")
    for label, (rec, _) in servers.items():
        add_latency(out, label, asyncio.run(echo(rec, args.echo)), "echo", "echo99")
        add_latency(out, label, asyncio.run(vt_echo(rec, args.echo, i)), "vt_echo", "vt_echo99")
    return out


def measure(
    args: argparse.Namespace, targets: list[Version], fleet: Fleet, tmp: Path
) -> tuple[Results, dict[str, IdleCost]]:
    path = output_file(tmp / "out.txt", args.mb)
    results = report.results()
    servers = {
        v.label: (
            fleet.start(v, "rec", *SERVER_ARGS),
            fleet.start(v, "norec", *SERVER_ARGS, "--no-record"),
        )
        for v in targets
    }
    # Interleaved rounds, medians: this machine's PTY speed drifts between runs.
    for i in range(args.rounds):
        progress(f"round {i + 1}/{args.rounds}: throughput and echo")
        report.merge(results, one_round(i, args, path, servers))
    progress("trickle")
    results["trickle"]["bare"].append(bare.trickle())
    for label, (rec, _) in servers.items():
        results["trickle"][label].append(asyncio.run(trickle(rec)))
    for pair in servers.values():
        for srv in pair:
            fleet.stop(srv)

    # Fresh servers: the ones above still hold what heavy output made them allocate.
    costs = {}
    for v in targets:
        progress(f"memory: {v.label}, {args.sessions} idle sessions")
        costs[v.label] = idle_cost(fleet, v, args.sessions)
    return results, costs


# -- the report ---------------------------------------------------------------------------------


def table(
    args: argparse.Namespace, labels: list[str], results: Results, costs: dict[str, IdleCost]
) -> list[str]:
    n = args.sessions
    compare = labels == ["before", "after"]
    timed = [
        # title, measure, the bare PTY's measure to show beside it, digits
        ("throughput, MB/s (recording on)", "tp_on", "tp", 1),
        ("throughput, MB/s (recording off)", "tp_off", "tp", 1),
        (f"server+keeper CPU s per {args.mb} MB, rec. on", "cpu_tp_on", "", 2),
        (f"server+keeper CPU s per {args.mb} MB, rec. off", "cpu_tp_off", "", 2),
        ("throughput via vt, MB/s", "vt_tp", "tp", 1),
        ("echo latency median, ms", "echo", "echo", 3),
        ("echo latency p99, ms", "echo99", "echo99", 3),
        ("echo via vt median, ms", "vt_echo", "echo", 3),
        ("echo via vt p99, ms", "vt_echo99", "echo99", 3),
        ("trickle (a byte / 2 ms), messages/s (bare: reads/s)", "trickle", "trickle", 1),
    ]
    rows = [
        [title, cell(results[bare_key]["bare"], digits) if bare_key else "-"]
        + [cell(results[key][label], digits) for label in labels]
        + ([ratio(results[key]["before"], results[key]["after"])] if compare else [])
        for title, key, bare_key, digits in timed
    ]

    def memory_row(title: str, figure: Callable[[IdleCost], float]) -> list[str]:
        values = [[figure(costs[label])] for label in labels]
        return [title, "-", *(cell(v, 1) for v in values)] + ([ratio(*values)] if compare else [])

    rows += [
        memory_row("server+keeper PSS idle, MB", lambda c: c.idle.pss / 1024),
        memory_row(f"server+keeper PSS, {n} idle sessions, MB", lambda c: c.loaded.pss / 1024),
        memory_row("  per idle session, kB PSS", lambda c: (c.loaded.pss - c.idle.pss) / n),
        memory_row("  per idle session, kB anon PSS", lambda c: (c.loaded.anon - c.idle.anon) / n),
        memory_row("server+keeper RSS idle, MB", lambda c: c.idle.rss / 1024),
        memory_row(f"server+keeper RSS, {n} idle sessions, MB", lambda c: c.loaded.rss / 1024),
        memory_row("  per idle session, kB RSS", lambda c: (c.loaded.rss - c.idle.rss) / n),
        memory_row("session programs, per session, kB PSS", lambda c: c.programs.pss / n),
        memory_row("session programs, per session, kB RSS", lambda c: c.programs.rss / n),
    ]
    head = ["", "bare PTY", *labels] + (["after/before"] if compare else [])
    return report.aligned([head, *rows])


def footer(
    args: argparse.Namespace,
    targets: list[Version],
    results: Results,
    costs: dict[str, IdleCost],
) -> list[str]:
    order = ", ".join(["bare", *(v.label for v in targets)])
    lines = [
        f"cells: median (min-max) of {args.rounds} interleaved rounds ({order}, ...); "
        "trickle and memory: one run each",
    ]
    lines += [f"{v.label}: {v.about}" for v in targets]
    for v in targets:
        cost = costs[v.label]
        exact = cost.idle.exact and cost.loaded.exact and cost.programs.exact
        lines.append(
            f"memory of {v.label} counted: {cost.describe()}"
            + ("" if exact else " (no smaps_rollup somewhere: RSS stood in for PSS)")
        )
    lines += [
        "per idle session: (with N - idle) / N. The holders' PSS also drops as the programs map",
        "the same libraries (it can come out below 0); anon PSS (Pss_Anon + Pss_Shmem) leaves",
        "those file pages out. Kernel memory (PTY buffers) is in no process's PSS or RSS.",
    ]
    bare_tp = statistics.median(results["tp"]["bare"])
    for v in targets:
        on = statistics.median(results["tp_on"][v.label])
        off = statistics.median(results["tp_off"][v.label])
        cpu_on = statistics.median(results["cpu_tp_on"][v.label])
        cpu_off = statistics.median(results["cpu_tp_off"][v.label])
        cpu = f"{cpu_on / cpu_off - 1:.0%}" if cpu_off else "-"
        lines.append(
            f"{v.label}, recording on: {on / bare_tp:.0%} of bare; recording costs "
            f"{1 - on / off:.0%} against off in MB/s, {cpu} in CPU"
        )
    return lines


# -- main ---------------------------------------------------------------------------------------


def main() -> int:
    ap = options.parser(__doc__)
    ap.add_argument("--mb", type=int, default=64, help="MB of output for throughput")
    ap.add_argument("--echo", type=int, default=1000, help="keystrokes per echo latency round")
    ap.add_argument("--sessions", type=int, default=300, help="idle sessions for memory")
    options.add_rounds(ap, 7)
    options.add_versions(ap)
    options.add_json(ap)
    args = ap.parse_args()
    options.at_least_one(ap, args, "rounds", "sessions", "echo", "mb")
    before, after = versions.chosen(args, alone="server")
    targets = [before, after] if before else [after]

    with Run("vt-bench-run-") as run:
        results, costs = measure(args, targets, run.fleet, run.tmp)

    labels = [v.label for v in targets]
    print("\n".join(table(args, labels, results, costs)))
    print()
    print("\n".join(footer(args, targets, results, costs)))
    report.write_json(args.json, {"results": results, "memory": costs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
