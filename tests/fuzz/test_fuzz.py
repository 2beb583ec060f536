"""The fuzz, short: a few seconds of generated messages and requests against the parsers and
two live servers (without auth, and with). `VIBETUNNEL_FUZZ=N` runs N examples of each kind
instead (long; `python bench/fuzz.py --messages N` prints figures).

A live run checks that the server never answers 5xx or 1011, closes exactly as the protocol
says, always answers within a deadline, and that its memory stays flat across batches.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, start_server
from tests.fuzz import live, run
from vibetunnel.auth import TokenService, load_or_create_secret

EXAMPLES = int(os.environ.get("VIBETUNNEL_FUZZ", "0")) or None
PARSER_EXAMPLES = EXAMPLES or 100
PARSER_SPREAD = run.SPREAD if EXAMPLES else 20
LIVE_EXAMPLES = EXAMPLES or 20
LIVE_SPREAD = run.LIVE_SPREAD if EXAMPLES else 8
RSS_SLACK_KB = 16 * 1024
"""Growth allowed between the first measured batch and the end: allocator warm-up, caches."""


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


@contextlib.contextmanager
def fuzz_server(tmp_path: Path, *args: str) -> Iterator[tuple[RunningServer, live.Target]]:
    """A server whose every default session runs live.SAFE_SCRIPT, and its target."""
    home = tmp_path / "home"
    shell = live.safe_shell(tmp_path)
    srv = start_server(home, "--rate-limit", "1000000000", *args, env={"SHELL": str(shell)})
    try:
        tokens = {}
        if "--no-auth" not in args:
            service = TokenService(load_or_create_secret(home))
            tokens["valid"] = service.issue("fuzz", 3600)
        with srv.client(tokens.get("valid")) as api:
            sid = api.post("/api/sessions", json={}).json()["id"]
        if tokens:
            tokens["share"] = service.issue("fuzz", 3600, session_id=sid)
            tokens["readonly"] = service.issue("fuzz", 3600, session_id=sid, read_only=True)
        yield srv, live.Target(srv.url, [sid], tokens)
    finally:
        srv.stop()


def test_parsers_take_anything() -> None:
    assert run.fuzz_parsers(PARSER_EXAMPLES, PARSER_SPREAD) >= PARSER_EXAMPLES


@pytest.mark.parametrize("auth", [False, True], ids=["no-auth", "auth"])
def test_a_live_server_takes_anything(tmp_path: Path, auth: bool) -> None:
    args = () if auth else ("--no-auth",)
    with fuzz_server(tmp_path, *args) as (srv, target):
        assert srv.process is not None
        rss: list[int] = []

        def measure(stats: live.Stats, pid: int = srv.process.pid) -> None:
            rss.append(rss_kb(pid))

        victims = [str(uuid.uuid4()) for _ in range(2)]
        stats = run.fuzz_server(target, victims, LIVE_EXAMPLES, measure, LIVE_SPREAD)
        measure(stats)
        assert stats.server_errors == 0 and stats.closes[1011] == 0, stats
        assert stats.sent > LIVE_EXAMPLES
        assert rss[-1] - rss[0] < RSS_SLACK_KB, f"RSS (kB) by batch: {rss}"
        log = "".join(srv.output)
        assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
