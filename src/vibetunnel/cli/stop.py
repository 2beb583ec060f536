"""`vibetunnel stop [--sessions]`: stop the server; with --sessions, every session too.

The server is the process that holds `<home>/server.lock` (files.lock_holder asks the
kernel), never merely the pid `server.json` names: a server killed with SIGKILL leaves that
file behind, and its pid may since belong to anything. The holder is signalled through a
pidfd opened while it still held the lock, so a pid reused in between is never signalled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import sys
from pathlib import Path

from vibetunnel.cli import home as homes
from vibetunnel.config import SERVER_FILE, SERVER_LOCK, home_dir
from vibetunnel.files import lock_holder
from vibetunnel.keeper.client import KeeperError, stop

HELP = "stop the server (sessions keep running unless --sessions)"
TIMEOUT = 20.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="also end every session (SIGHUP, then SIGTERM, then SIGKILL)",
    )


def run(args: argparse.Namespace) -> int:
    home = home_dir()
    if code := homes.refused(home, "vibetunnel"):
        return code
    try:
        code = stop_server(home)
    except OSError as exc:
        print(f"vibetunnel: cannot tell which process is the server: {exc}", file=sys.stderr)
        return 1
    if code:
        return code
    try:
        answer = stop(home, sessions=args.sessions)
    except (KeeperError, OSError, TimeoutError) as exc:
        print(f"vibetunnel: the session keeper did not answer: {exc}", file=sys.stderr)
        return 1
    if answer is None:
        return 0
    if args.sessions:
        print(f"vibetunnel: ended {answer.get('ended', 0)} session(s)")
    elif answer.get("running"):
        print(
            f"vibetunnel: {answer['running']} session(s) keep running; "
            "`vibetunnel stop --sessions` ends them"
        )
    return 0


def stop_server(home: Path) -> int:
    """End the server of `home` if one runs (SIGTERM, then wait); the exit status so far."""
    lock = home / SERVER_LOCK
    pid = lock_holder(lock)
    pidfd = None
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            pidfd = os.pidfd_open(pid)
        # The pidfd names one process for good; it is the server only if, once it is open,
        # that pid still holds the lock (else the server ended meanwhile: nothing to stop).
        if pidfd is not None and lock_holder(lock) != pid:
            os.close(pidfd)
            pidfd = None
    if pidfd is None:
        stale = _forget_stale(home, lock)
        print(f"vibetunnel: no server running{stale}")
        return 0
    try:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        waiter = select.poll()
        waiter.register(pidfd, select.POLLIN)  # readable once the process has ended
        ended = bool(waiter.poll(TIMEOUT * 1000))
    finally:
        os.close(pidfd)
    if not ended:
        print(f"vibetunnel: the server (pid {pid}) did not stop", file=sys.stderr)
        return 1
    print(f"vibetunnel: stopped the server (pid {pid})")
    return 0


def _forget_stale(home: Path, lock: Path) -> str:
    """Remove a server.json that no server stands behind (a killed server's); what to say.

    Not if a server has claimed the home since: it writes its own once it listens."""
    path = home / SERVER_FILE
    try:
        pid = json.loads(path.read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return ""
    if lock_holder(lock) is not None:
        return ""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return f" ({SERVER_FILE} named pid {pid}, which is not this home's server: removed)"
