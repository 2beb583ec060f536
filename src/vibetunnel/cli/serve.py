"""`vibetunnel serve`: run the server."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from urllib.parse import urlsplit

import uvloop

from vibetunnel.api.peers import proxy_networks
from vibetunnel.api.security import is_loopback
from vibetunnel.auth.user import user_name
from vibetunnel.cli import home as homes
from vibetunnel.cli import reach
from vibetunnel.config import (
    MIN_SIZE,
    NODE_NAME,
    SERVER_FILE,
    Config,
    format_size,
    parse_size,
)
from vibetunnel.files import raise_open_files_limit, write_private
from vibetunnel.redact import log_to_stderr
from vibetunnel.server import serve

HELP = "run the web terminal server"


def configure(parser: argparse.ArgumentParser) -> None:
    # Every default is Config's: one place says what `serve` does unless told otherwise.
    parser.add_argument("--host", default=Config.host, help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=Config.port, help="port (default %(default)s); 0 picks one"
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="no token needed: anyone who can reach the port gets a shell",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=Config.rate_limit,
        metavar="N",
        help="requests per minute per client (default %(default)s)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not record sessions")
    parser.add_argument(
        "--record-input", action="store_true", help="also record typed input (passwords too!)"
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=Config.max_sessions,
        metavar="N",
        help="running sessions at most (default %(default)s)",
    )
    parser.add_argument(
        "--keep-recordings",
        type=float,
        default=Config.keep_recordings_days,
        metavar="DAYS",
        help="delete recordings older than DAYS",
    )
    parser.add_argument(
        "--max-recording-size",
        type=size,
        default=Config.max_recording_size,
        metavar="SIZE",
        help=f"a recording ends at this size (default {format_size(Config.max_recording_size)}"
        "; SIZE in bytes or with K, M, G, T: powers of 1024)",
    )
    parser.add_argument(
        "--recordings-budget",
        type=size,
        default=Config.recordings_budget,
        metavar="SIZE",
        help="past this size of all recordings, delete finished ones, oldest first (default "
        f"{format_size(Config.recordings_budget)})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=Config.ws_idle_timeout,
        metavar="SECONDS",
        help="close WebSockets silent this long (default %(default)g)",
    )
    reach.configure(parser)
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy (address or network) whose X-Forwarded-For names the client; "
        "repeat for several. From anyone else forwarded headers are ignored",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=Config.header_timeout,
        metavar="SECONDS",
        help="close connections whose request headers take longer (default %(default)g)",
    )
    parser.add_argument(
        "--max-connections-per-address",
        type=int,
        default=Config.max_connections_per_address,
        metavar="N",
        help="open connections per client address; all of loopback is one (default "
        "%(default)s). Behind a proxy it counts the proxy's: raise it",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("VIBETUNNEL_REDIS_URL"),
        metavar="URL",
        help="join the cluster of servers sharing this Redis (redis:// or rediss://; "
        "default $VIBETUNNEL_REDIS_URL, which keeps a password out of the process list)",
    )
    parser.add_argument(
        "--node",
        default=os.environ.get("VIBETUNNEL_NODE") or Config().node,
        metavar="NAME",
        help="this server's name in the cluster (default $VIBETUNNEL_NODE, else the host name)",
    )
    parser.add_argument(
        "--node-ttl",
        type=float,
        default=Config.cluster_ttl,
        metavar="SECONDS",
        help="with --redis: a node silent this long is offline (default %(default)g)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")


def size(text: str) -> int:
    """A SIZE option's bytes (config.parse_size), at least MIN_SIZE; argparse names the
    option in its error and exits 2."""
    try:
        value = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"{text!r} is too small: at least {format_size(MIN_SIZE)}")
    return value


def run(args: argparse.Namespace) -> int:
    # Every line of the process, uvicorn's included, through redact (no token in any log).
    log_to_stderr(
        logging.INFO if args.verbose else logging.WARNING,
        "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not 0 <= args.port <= 65535:
        print(f"vibetunnel: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    home = Config().home
    # Before anything is made in it (tls/ first) and before a port or a keeper: a home that
    # another user could write would hand her the password, the secret and the sessions.
    if code := homes.refused(home, "vibetunnel", make=True):
        return code
    try:
        tls = reach.tls_files(args, home)
    except (reach.ReachError, OSError, ValueError) as exc:
        print(f"vibetunnel: {exc}", file=sys.stderr)
        return 2
    try:
        proxies = proxy_networks(args.trusted_proxy)
    except ValueError as exc:
        print(f"vibetunnel: {exc}", file=sys.stderr)
        return 2
    if args.redis and not NODE_NAME.fullmatch(args.node):
        print(
            "vibetunnel: --node must be 1 to 64 letters, digits, '.', '_' or '-', "
            f"got {args.node!r}",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.node_ttl <= 30:
        print("vibetunnel: --node-ttl must be 1..30 seconds", file=sys.stderr)
        return 2
    if not args.header_timeout > 0 or args.max_connections_per_address < 1:
        print(
            "vibetunnel: --header-timeout must be above 0, --max-connections-per-address 1 or more",
            file=sys.stderr,
        )
        return 2
    config = Config(
        home=home,
        tls_cert=tls[0] if tls else None,
        tls_key=tls[1] if tls else None,
        host=args.host,
        port=args.port,
        auth=not args.no_auth,
        rate_limit=args.rate_limit,
        record=not args.no_record,
        record_input=args.record_input,
        max_sessions=args.max_sessions,
        keep_recordings_days=args.keep_recordings,
        max_recording_size=args.max_recording_size,
        recordings_budget=args.recordings_budget,
        ws_idle_timeout=args.idle_timeout,
        trusted_proxies=proxies,
        header_timeout=args.header_timeout,
        max_connections_per_address=args.max_connections_per_address,
        redis_url=args.redis or None,
        node=args.node,
        cluster_ttl=args.node_ttl,
    )
    from vibetunnel.api.app import create_app
    from vibetunnel.auth import LOGIN_TOKEN_TTL, SecretError
    from vibetunnel.keeper.client import KeeperError, claim, find

    raise_open_files_limit()
    try:
        # First: one server per home (the lock lives as long as this process); then the
        # keeper of earlier servers' sessions, if one runs. With none, none is started now:
        # the first session starts it (an idle server has no keeper beside it).
        claim(config.home)
        keeper = find(config.home, max_recording=config.max_recording_size)
    except (KeeperError, OSError) as exc:
        print(f"vibetunnel: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(config, keeper, keep_sessions=True)
    except (SecretError, OSError) as exc:
        if keeper is not None:
            keeper.close()
        print(f"vibetunnel: {exc}", file=sys.stderr)
        return 1
    if config.record and (error := app.state.recordings.error) is not None:
        # Not a reason to refuse to start: the sessions say it too (recordingError).
        print(f"vibetunnel: WARNING: {error}: sessions are not recorded", file=sys.stderr)
    tokens = app.state.tokens
    server_file = config.home / SERVER_FILE

    def listening(url: str) -> None:
        warn_no_auth(config, url)  # the address as bound: with --port 0, the port picked
        print(f"VibeTunnel listening on {url}", flush=True)
        login = None
        if tokens is not None:
            login = tokens.issue(user_name(), LOGIN_TOKEN_TTL, kind="login")
            signin = f"{reach.public_url(url)}/?login={login}"
            print(f"Sign in (link valid 5 minutes, once): {signin}", flush=True)
        if extra := reach.announce(url, login, config.tls_cert):
            print(extra, flush=True)
        # How `vt` and the commands find this server: on loopback, pinned to our certificate.
        local = url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
        info = {
            "url": local,
            "pid": os.getpid(),
            "cert": str(tls[0]) if tls else None,
            "maxRecordingSize": config.max_recording_size,  # vt's recordings end there too
        }
        write_private(server_file, json.dumps(info).encode())

    try:
        uvloop.run(serve(config, app, listening, app.state.shutdown))
    except OSError as exc:
        print(
            f"vibetunnel: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    finally:
        with contextlib.suppress(FileNotFoundError):
            if json.loads(server_file.read_text()).get("pid") == os.getpid():
                server_file.unlink()
    if app.state.kept:
        print(
            f"vibetunnel: {app.state.kept} session(s) keep running; they are back with the next "
            "`vibetunnel serve`, and `vibetunnel stop --sessions` ends them",
            file=sys.stderr,
        )
    return 0


def warn_no_auth(config: Config, url: str) -> None:
    """Say it loudly: without auth, reaching the port means getting a shell. `url` is the
    one the server listens on (the port it was given, or picked for --port 0)."""
    if config.auth:
        return
    bar = "!" * 72
    lines = [
        bar,
        "WARNING: authentication is OFF (--no-auth).",
        f"Anyone who can reach {urlsplit(url).netloc} gets a shell as {user_name()}.",
    ]
    if not is_loopback(config.host):
        lines += [
            "DANGER: this address is reachable from other machines. Anyone on your",
            "network can run any command here. Use auth, or bind to 127.0.0.1.",
        ]
    lines.append(bar)
    print("\n".join(lines), file=sys.stderr, flush=True)
