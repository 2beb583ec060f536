"""`vibetunnel passwd`: set the login password (stored as an argon2id hash, never in clear).

On a terminal it asks twice without echo. Otherwise it reads one line from stdin, so scripts
can run `echo "$PW" | vibetunnel passwd`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from ..auth.passwords import ENV_PASSWORD, password_path, set_password
from ..config import home_dir
from . import home as homes

HELP = "set the login password"


def configure(parser: argparse.ArgumentParser) -> None:
    """`vibetunnel passwd` takes no options."""
    del parser


def run(args: argparse.Namespace) -> int:
    """Read the new password, store its hash; exit status 1 on mismatch, empty input or EOF."""
    del args
    home = home_dir()
    # Before the password is asked: a hash written where another user can write is hers.
    if code := homes.refused(home, "vibetunnel passwd", make=True):
        return code
    try:
        password = _read_password()
    except EOFError:
        return _fail("no password given")
    except ValueError as e:
        return _fail(str(e))
    try:
        set_password(home, password)
    except ValueError as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"cannot write {password_path(home)}: {e}")
    print(f"Password set ({password_path(home)}).")
    if os.environ.get(ENV_PASSWORD):
        print(f"Note: ${ENV_PASSWORD} is set and takes precedence over it.", file=sys.stderr)
    return 0


def _read_password() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        password = line.rstrip("\r\n")
        if not password:
            raise ValueError("the password must not be empty")
        return password
    password = getpass.getpass("New password: ")
    if not password:
        raise ValueError("the password must not be empty")
    if getpass.getpass("Repeat password: ") != password:
        raise ValueError("the passwords do not match")
    return password


def _fail(message: str) -> int:
    print(f"vibetunnel passwd: {message}", file=sys.stderr)
    return 1
