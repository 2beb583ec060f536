"""`vibetunnel token`: print an access token signed with the local secret.

For scripts (`curl -H "Authorization: Bearer $(vibetunnel token)"`) and share links:
`--session ID` prints the whole link (`URL/sessions/ID?token=...`) of the running server,
whose token opens that one session only; a session the server does not have is refused.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from ..auth.secret import SecretError, load_or_create_secret
from ..auth.tokens import MAX_TOKEN_TTL, TokenService, parse_duration
from ..auth.user import user_name
from ..config import home_dir
from . import home as homes
from .local import LocalError, get, server_url

HELP = "print an access token signed with the local secret"
DEFAULT_TTL = "24h"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of `vibetunnel token`."""
    parser.add_argument(
        "--session",
        metavar="ID",
        help="limit the token to this session (a share link)",
    )
    parser.add_argument(
        "--ttl",
        metavar="DURATION",
        default=DEFAULT_TTL,
        help=f"lifetime: 90s, 15m, 12h, 7d or seconds, at most 30d (default {DEFAULT_TTL})",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="a watch-only token: it cannot type into or resize sessions",
    )
    parser.add_argument(
        "--sub",
        metavar="NAME",
        help="the token's subject (default: your user name)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the token on stdout; errors on stderr with exit status 2."""
    try:
        ttl = parse_duration(args.ttl)
    except ValueError as e:
        return _fail(f"--ttl: {e}")
    if ttl > MAX_TOKEN_TTL:
        # The server refuses longer-lived tokens: a leaked one must not work for years.
        return _fail(f"--ttl: at most {MAX_TOKEN_TTL / 86400:g} days ({MAX_TOKEN_TTL:g}s)")
    session_id: str | None = None
    if args.session is not None:
        try:
            # Session ids are UUIDs; the canonical form is what the server compares.
            session_id = str(uuid.UUID(args.session))
        except ValueError:
            return _fail(f"--session: {args.session!r} is not a session id (a UUID)")
    sub = args.sub if args.sub is not None else user_name()
    if not sub:
        return _fail("--sub must not be empty")
    if code := homes.refused(home_dir(), "vibetunnel token", make=True):
        return code
    try:
        secret = load_or_create_secret(home_dir())
    except (SecretError, OSError) as e:
        return _fail(f"cannot load the signing secret: {e}")
    tokens = TokenService(secret)
    token = tokens.issue(sub, ttl, session_id=session_id, read_only=args.read_only)
    if session_id is None:
        print(token)
        return 0
    try:
        url = server_url(home_dir())
        status, _ = get(f"{url}/api/sessions/{session_id}", tokens.issue(sub, 60.0), home_dir())
    except LocalError as exc:
        return _fail(str(exc))
    if status == 404:
        return _fail(f"--session: the server has no session {session_id}")
    if status != 200:
        return _fail(f"the server answered {status} for session {session_id}")
    print(f"{url}/sessions/{session_id}?token={token}")
    return 0


def _fail(message: str) -> int:
    print(f"vibetunnel token: {message}", file=sys.stderr)
    return 2
