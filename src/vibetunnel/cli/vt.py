"""`vt [--name NAME] COMMAND [ARGS...]`: run a command in this terminal and share it.

The command runs on a new PTY relayed with this terminal (raw mode, always restored), is
recorded to `<home>/recordings/<id>.cast`, and is registered with the local server, which
lists and streams it like its own sessions. vt exits with the command's exit code.
`vt --list` prints the server's sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import uuid
from dataclasses import dataclass

from vibetunnel.cli import home as homes
from vibetunnel.cli.local import LocalError, get
from vibetunnel.config import SESSION_ENV, home_dir
from vibetunnel.redact import log_to_stderr
from vibetunnel.vt.link import describe, find_server, token
from vibetunnel.vt.relay import Relay
from vibetunnel.vt.terminal import RawMode

LIST_TIMEOUT = 10.0


@dataclass(frozen=True)
class Options:
    name: str | None
    list_sessions: bool
    argv: list[str]
    """The command and its arguments; the user's login shell when none was given."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vt",
        description="Run COMMAND (default: your shell) in this terminal and share it with the "
        "browser through the local VibeTunnel server.",
    )
    p.add_argument("--name", help="session name shown in the browser (default: the command)")
    p.add_argument("--list", action="store_true", help="list the server's sessions and exit")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARGS...]")
    return p


def parse_args(argv: list[str], env: dict[str, str] | None = None) -> Options:
    """Options of a command line; exits (argparse) with 2 on a bad one."""
    env = dict(os.environ) if env is None else env
    ns = parser().parse_args(argv)
    command: list[str] = list(ns.command)
    if command and command[0] == "--":
        command = command[1:]
    if ns.list and command:
        parser().error("--list takes no command")
    if not command:
        command = [env.get("SHELL") or "/bin/sh", "-l"]
    return Options(name=ns.name, list_sessions=ns.list, argv=command)


def nested_refusal(env: dict[str, str]) -> str | None:
    """The message refusing a vt inside a vt (or server) session, or None."""
    session_id = env.get(SESSION_ENV)
    if not session_id:
        return None
    return f"vt: already inside VibeTunnel session {session_id}; nested vt is not supported"


def list_sessions() -> int:
    home = home_dir()
    if code := homes.refused(home, "vt"):
        return code
    url = find_server(home)
    if url is None:
        print("vt: no VibeTunnel server running", file=sys.stderr)
        return 1
    try:
        status, sessions = get(f"{url}/api/sessions", token(home), home)
    except LocalError as exc:
        print(f"vt: cannot list sessions: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"vt: the server answered {status}", file=sys.stderr)
        return 1
    if not sessions:
        print("no sessions")
        return 0
    for line in describe(sessions):
        print(line)
    return 0


def run(opts: Options) -> int:
    # What the link logs (a failure's traceback may name the URL, token and all) is redacted.
    log_to_stderr(logging.WARNING, "%(message)s")
    # It writes the recording there and sends the home's token to the server it names.
    if code := homes.refused(home_dir(), "vt", make=True):
        return code
    raw = RawMode(0)
    relay = Relay(
        opts.argv,
        name=opts.name or os.path.basename(opts.argv[0]),
        home=home_dir(),
        session_id=str(uuid.uuid4()),
        raw=raw,
    )
    try:
        with raw:
            return asyncio.run(relay.run())
    except FileNotFoundError:
        print(f"vt: command not found: {opts.argv[0]}", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"vt: permission denied: {opts.argv[0]}", file=sys.stderr)
        return 126
    except OSError as exc:
        print(f"vt: cannot run {opts.argv[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 126


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.list_sessions:
        return list_sessions()
    refusal = nested_refusal(dict(os.environ))
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 1
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
