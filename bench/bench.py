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
  (the user's) apart.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import bare
import clients
import idle
import proctable
import versions
from servers import Fleet, Server
from versions import Version

SERVER_ARGS = ("--no-auth", "--rate-limit", "100000", "--max-sessions", "1000")

Pair = tuple[Server, Server]
"""A version's servers: recording on, recording off."""

Results = dict[str, dict[str, list[float]]]
"""measure -> target ("bare" or a version's label) -> one figure per round."""


def progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def quantile_ms(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def holders_cpu(srv: Server) -> dict[int, float]:
    return proctable.cpu_seconds(proctable.tree(srv.home, srv.pid).holders)


def throughput_and_cpu(srv: Server, path: str) -> tuple[float, float]:
    """MB/s at the client, and CPU seconds the server (and keeper) spent meanwhile."""
    before = holders_cpu(srv)
    mb_s = asyncio.run(clients.throughput(srv, path))
    after = holders_cpu(srv)
    return mb_s, sum(t - before.get(pid, 0.0) for pid, t in after.items())


def one_round(i: int, args: argparse.Namespace, path: str, servers: dict[str, Pair]) -> Results:
    out: Results = defaultdict(lambda: defaultdict(list))
    out["tp"]["bare"].append(bare.throughput(path))
    for label, (rec, norec) in servers.items():
        for key, srv in (("tp_on", rec), ("tp_off", norec)):
            mb_s, cpu = throughput_and_cpu(srv, path)
            out[key][label].append(mb_s)
            out[f"cpu_{key}"][label].append(cpu)
        out["vt_tp"][label].append(asyncio.run(clients.vt_throughput(rec, path, i)))
    add_latency(out, "echo", "bare", bare.echo(args.echo))
    for label, (rec, _) in servers.items():
        add_latency(out, "echo", label, asyncio.run(clients.echo(rec, args.echo)))
        add_latency(out, "vt_echo", label, asyncio.run(clients.vt_echo(rec, args.echo, i)))
    return out


def add_latency(out: Results, key: str, target: str, seconds: list[float]) -> None:
    """A round's median under `key`, its p99 under `key` + "99", in ms."""
    out[key][target].append(quantile_ms(seconds, 0.5))
    out[f"{key}99"][target].append(quantile_ms(seconds, 0.99))


def measure(
    args: argparse.Namespace, targets: list[Version], fleet: Fleet, tmp: Path
) -> tuple[Results, dict[str, idle.IdleCost]]:
    data = tmp / "out.txt"
    line = ("0123456789abcdefghijklmnopqrstuvwxyz" * 3)[:99] + "\n"
    data.write_text(line * (args.mb * 1_000_000 // 100))
    results: Results = defaultdict(lambda: defaultdict(list))

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
        for key, by_target in one_round(i, args, str(data), servers).items():
            for target, figures in by_target.items():
                results[key][target] += figures
    progress("trickle")
    results["trickle"]["bare"].append(bare.trickle())
    for label, (rec, _) in servers.items():
        results["trickle"][label].append(asyncio.run(clients.trickle(rec)))
    for pair in servers.values():
        for srv in pair:
            fleet.stop(srv)

    # Fresh servers: the ones above still hold what heavy output made them allocate.
    costs = {}
    for v in targets:
        progress(f"memory: {v.label}, {args.sessions} idle sessions")
        costs[v.label] = idle.measure(fleet, v, args.sessions)
    return results, costs


# -- the report ---------------------------------------------------------------------------------


def cell(xs: list[float], digits: int) -> str:
    if not xs:
        return "-"
    text = f"{statistics.median(xs):.{digits}f}"
    if len(xs) > 1:
        text += f" ({min(xs):.{digits}f}-{max(xs):.{digits}f})"
    return text


def ratio(before: list[float], after: list[float]) -> str:
    if not before or not after or statistics.median(before) <= 0 or statistics.median(after) < 0:
        return "-"
    return f"{statistics.median(after) / statistics.median(before):.2f}"


def table(
    args: argparse.Namespace, labels: list[str], results: Results, costs: dict[str, idle.IdleCost]
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

    def memory_row(title: str, figure: Callable[[idle.IdleCost], float]) -> list[str]:
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
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return [
        "  ".join(
            f"{c:{widths[i]}}" if i == 0 else f"{c:>{widths[i]}}" for i, c in enumerate(r)
        ).rstrip()
        for r in [head, *rows]
    ]


def footer(
    args: argparse.Namespace,
    targets: list[Version],
    results: Results,
    costs: dict[str, idle.IdleCost],
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


INTERRUPTED: list[int] = []
"""The signals received: whatever fails after one (a cancelled task, a closed socket) is the
interruption, not an error to show."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the fleet ends everything it started.
    INTERRUPTED.append(signum)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise KeyboardInterrupt from None
    # Inside asyncio.run, an exception raised here lands in whatever callback runs (a protocol's
    # data_received, which swallows it, and the run hangs): cancel the tasks instead, as
    # asyncio.run's own SIGINT handler does.
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.call_soon_threadsafe(lambda: None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=64, help="MB of output for throughput")
    ap.add_argument("--echo", type=int, default=1000, help="keystrokes per echo latency round")
    ap.add_argument("--sessions", type=int, default=300, help="idle sessions for memory")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median)")
    versions.add_before_options(ap)
    ap.add_argument(
        "--after", metavar="PATH", type=Path, help="after: checkout at PATH (default: this tree)"
    )
    args = ap.parse_args()
    if args.rounds < 1 or args.sessions < 1 or args.echo < 1 or args.mb < 1:
        ap.error("--rounds, --sessions, --echo and --mb must be at least 1")

    if args.after and not (args.compare or args.before):
        ap.error("--after needs --compare or --before")
    after = (
        versions.from_path("after", args.after) if args.after else versions.working_tree("after")
    )
    before = versions.before(args)
    targets = [before, after] if before else [versions.working_tree("server")]
    for v in targets:
        v.check()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)

    fleet: Fleet | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="vt-bench-run-") as tmp, Fleet(Path(tmp)) as fleet:
            results, costs = measure(args, targets, fleet, Path(tmp))
    except BaseException:
        if not INTERRUPTED:
            raise
        progress(f"interrupted by {signal.Signals(INTERRUPTED[0]).name}")
        return 128 + INTERRUPTED[0]
    finally:
        if fleet is not None:
            if not INTERRUPTED:
                for exited in fleet.exited:
                    progress(exited)
            for note in fleet.notes:
                progress(f"cleanup: {note}")
            progress(fleet.verify())

    labels = [v.label for v in targets]
    print("\n".join(table(args, labels, results, costs)))
    print()
    print("\n".join(footer(args, targets, results, costs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
