"""The server's one user: the login name its tokens are issued to."""

from __future__ import annotations

import getpass


def user_name() -> str:
    """This process's login name; "user" when there is none (some containers have no entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"
