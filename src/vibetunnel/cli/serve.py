"""`vibetunnel serve`: run the server."""

from __future__ import annotations

import argparse
import logging
import sys

import uvloop

from vibetunnel.config import DEFAULT_HOST, DEFAULT_PORT, Config
from vibetunnel.server import serve

HELP = "run the web terminal server"

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port; 0 picks a free one")
    parser.add_argument("--no-auth", action="store_true", help="no token needed: anyone who can reach the port gets a shell")
    parser.add_argument("--rate-limit", type=int, default=100, metavar="N", help="requests per minute per client")
    parser.add_argument("--record-input", action="store_true", help="also record typed input (passwords too!)")
    parser.add_argument("--max-sessions", type=int, default=100, metavar="N", help="running sessions at most")
    parser.add_argument("--keep-recordings", type=float, default=None, metavar="DAYS", help="delete recordings older than DAYS")
    parser.add_argument("--idle-timeout", type=float, default=60.0, metavar="SECONDS", help="close WebSockets silent this long (default 60)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not 0 <= args.port <= 65535:
        print(f"vibetunnel: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    config = Config(
        host=args.host,
        port=args.port,
        auth=not args.no_auth,
        rate_limit=args.rate_limit,
        record_input=args.record_input,
        max_sessions=args.max_sessions,
        keep_recordings_days=args.keep_recordings,
        ws_idle_timeout=args.idle_timeout,
    )
    from vibetunnel.api.app import create_app

    app = create_app(config)
    manager = app.state.manager

    def listening(url: str) -> None:
        print(f"VibeTunnel listening on {url}", flush=True)

    try:
        uvloop.run(serve(config, app, listening, manager.shutdown))
    except OSError as exc:
        print(f"vibetunnel: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
