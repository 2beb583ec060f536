"""The fuzz, long: N generated client messages and HTTP requests, with the figures.

    python bench/fuzz.py --messages 1000000 [--after TREE] [--minutes M]

Half of N goes to the parsers (protocol/messages.py, protocol/host.py, frames), half to two
live servers of TREE (--after, or --path; default: this tree), one without auth and one with,
in rounds: session WebSocket batches, vt host-link batches and HTTP requests (tests/fuzz/ has
the strategies and the checks). It stops at the first failure (a 5xx, a 1011, a wrong close,
an answer past its deadline), printing the failing example, or after --minutes. Printed:
counts, rates, the servers' memory after each round and at its peak, and every status and
close code seen.

Every default session of the fuzz servers runs a script that reads its input and drops it:
generated input never reaches a shell.
"""

from __future__ import annotations

import sys
import time
import uuid

import httpx
from harness import options, proctable, report, versions
from harness.report import progress
from harness.run import Run
from harness.servers import Server

sys.path.insert(0, str(versions.ROOT))  # the strategies and checks live with the tests

from tests.fuzz import live, run  # noqa: E402

from vibetunnel.auth import TokenService, load_or_create_secret  # noqa: E402

ROUND = 200
"""Examples of each kind per round against a server (then its memory is read)."""


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in kB."""
    status = proctable.status_kb(pid)
    return status["VmRSS"], status["VmHWM"]


def target_of(srv: Server, auth: bool) -> live.Target:
    """The session the WebSocket fuzz uses, and the tokens of an auth server."""
    tokens: dict[str, str] = {}
    service = TokenService(load_or_create_secret(srv.home)) if auth else None
    if service is not None:
        tokens["valid"] = service.issue("fuzz", 86400)
    headers = {"Authorization": f"Bearer {tokens['valid']}"} if auth else {}
    made = httpx.post(f"{srv.url}/api/sessions", json={}, headers=headers, timeout=10)
    made.raise_for_status()
    sid = made.json()["id"]
    if service is not None:
        tokens["share"] = service.issue("fuzz", 86400, session_id=sid)
        tokens["readonly"] = service.issue("fuzz", 86400, session_id=sid, read_only=True)
    return live.Target(srv.url, [sid], tokens)


def main() -> int:
    ap = options.parser(__doc__)
    ap.add_argument("--messages", type=int, default=100_000, help="generated items in all")
    options.add_versions(ap, before=False, after_aliases=["--path"])
    ap.add_argument("--minutes", type=float, default=120.0, help="stop after this long")
    options.add_json(ap)
    args = ap.parse_args()
    options.at_least_one(ap, args, "messages")
    _, version = versions.chosen(args, after="fuzz")
    stop_at = time.monotonic() + args.minutes * 60

    progress(f"parsers: {args.messages // 2} items")
    parsed, parse_s = 0, 0.0
    while parsed < args.messages // 2 and time.monotonic() < stop_at:
        count, took = run.timed(lambda: run.fuzz_parsers(100))
        parsed, parse_s = parsed + count, parse_s + took
    progress(f"parsers: {parsed} items in {parse_s:.0f} s")

    totals = live.Stats()
    rounds: dict[str, list[tuple[int, int]]] = {"no-auth": [], "auth": []}
    failure = ""
    live_s = 0.0
    with Run("vt-fuzz-") as bench_run:  # not `run`: tests.fuzz.run is the fuzz
        shell = live.safe_shell(bench_run.tmp)
        servers = {
            name: bench_run.fleet.start(
                version, name, *flags, "--rate-limit", "1000000000", env={"SHELL": str(shell)}
            )
            for name, flags in (("no-auth", ("--no-auth",)), ("auth", ()))
        }
        targets = {name: target_of(srv, name == "auth") for name, srv in servers.items()}
        victims = [str(uuid.uuid4()) for _ in range(2)]
        for srv in servers.values():
            rounds["no-auth" if "--no-auth" in srv.args else "auth"].append(rss_kb(srv.pid))
        try:
            while totals.sent < args.messages - args.messages // 2 and time.monotonic() < stop_at:
                for name, srv in servers.items():
                    stats, took = run.timed(
                        lambda n=name: run.fuzz_server(targets[n], victims, ROUND)
                    )
                    live_s += took
                    _add(totals, stats)
                    rounds[name].append(rss_kb(srv.pid))
                progress(
                    f"live: {totals.sent} items, {totals.sent / live_s:.0f}/s; RSS MB "
                    + ", ".join(f"{n} {r[-1][0] / 1024:.1f}" for n, r in rounds.items())
                )
        except AssertionError as exc:
            failure = str(exc)
        logs = {name: "".join(srv.output) for name, srv in servers.items()}
    print(f"parsers: {parsed} items in {parse_s:.0f} s ({parsed / max(parse_s, 1e-9):.0f}/s)")
    rate = totals.sent / max(live_s, 1e-9)
    print(
        f"live servers: {totals.sent} items in {live_s:.0f} s ({rate:.0f}/s):"
        f" {totals.ws_messages} session WebSocket messages, {totals.host_messages} host-link"
        f" messages, {totals.requests} HTTP requests"
    )
    print(f"total generated: {parsed + totals.sent}")
    print(f"HTTP statuses: {dict(sorted(totals.statuses.items()))}; 5xx: {totals.server_errors}")
    if totals.not_built:
        print(
            f"  (and {totals.not_built} pages answered 503: this checkout's web app is not built)"
        )
    print(
        f"WebSocket closes (0: still open, as it should be): {dict(sorted(totals.closes.items()))}"
    )
    for name, figures in rounds.items():
        first, last = figures[0][0], figures[-1][0]
        after_one = figures[1][0] if len(figures) > 1 else first
        print(
            f"server {name}: RSS {first / 1024:.1f} MB at start, {after_one / 1024:.1f} after the"
            f" first round, {last / 1024:.1f} at the end ({len(figures) - 1} rounds);"
            f" peak (VmHWM) {max(f[1] for f in figures) / 1024:.1f} MB"
        )
    tracebacks = {n: log.count("Traceback") for n, log in logs.items()}
    print(f"tracebacks in the server logs: {tracebacks}")
    print(bench_run.verdict)
    report.write_json(
        args.json,
        {"parsed": parsed, "parse_s": parse_s, "live": totals, "live_s": live_s, "rss": rounds},
    )
    if failure:
        print(f"FAILED:\n{failure}")
        return 1
    return 0 if not any(tracebacks.values()) and totals.server_errors == 0 else 1


def _add(total: live.Stats, more: live.Stats) -> None:
    total.ws_messages += more.ws_messages
    total.host_messages += more.host_messages
    total.requests += more.requests
    total.statuses.update(more.statuses)
    total.closes.update(more.closes)
    total.not_built += more.not_built


if __name__ == "__main__":
    sys.exit(main())
