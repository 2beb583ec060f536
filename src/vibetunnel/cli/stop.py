"""`vibetunnel stop [--sessions]`: stop the server; with --sessions, every session too."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from vibetunnel.cli import home as homes
from vibetunnel.config import home_dir
from vibetunnel.keeper.client import KeeperError, gone, stop
from vibetunnel.vt.link import server_info

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
    info = server_info(home)
    if info is None:
        print("vibetunnel: no server running")
    else:
        pid = info.pid
        os.kill(pid, signal.SIGTERM)
        if not gone(pid, TIMEOUT):
            print(f"vibetunnel: the server (pid {pid}) did not stop", file=sys.stderr)
            return 1
        print(f"vibetunnel: stopped the server (pid {pid})")
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
