"""`vibetunnel login-link`: print a fresh one-time sign-in link for the running server."""

from __future__ import annotations

import argparse
import sys

from vibetunnel.auth import LOGIN_TOKEN_TTL
from vibetunnel.auth.secret import SecretError, load_or_create_secret
from vibetunnel.auth.tokens import TokenService
from vibetunnel.auth.user import user_name
from vibetunnel.cli import home as homes
from vibetunnel.cli.local import LocalError, server_url
from vibetunnel.config import home_dir

HELP = "print a fresh one-time sign-in link (valid 5 minutes)"


def configure(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    home = home_dir()
    if code := homes.refused(home, "vibetunnel login-link"):
        return code
    try:
        url = server_url(home)
        tokens = TokenService(load_or_create_secret(home))
    except (LocalError, SecretError, OSError) as exc:
        print(f"vibetunnel login-link: {exc}", file=sys.stderr)
        return 1
    login = tokens.issue(user_name(), LOGIN_TOKEN_TTL, kind="login")
    print(f"{url}/?login={login}")
    return 0
