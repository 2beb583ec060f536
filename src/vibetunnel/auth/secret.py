"""The JWT signing secret.

The secret is `$VIBETUNNEL_JWT_SECRET` when set, else the first line of `<home>/secret`, made
on first use. It survives restarts, so tokens do too.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from vibetunnel.errors import SecretError as SecretError  # raised here; importable from here
from vibetunnel.files import create_private

ENV_SECRET = "VIBETUNNEL_JWT_SECRET"
SECRET_FILE = "secret"
MIN_SECRET_BYTES = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output."""

logger = logging.getLogger(__name__)


def load_or_create_secret(home: Path) -> bytes:
    """Return the signing key: `$VIBETUNNEL_JWT_SECRET`, else `<home>/secret`, made if missing.

    The key is the UTF-8 bytes of the secret line, without its newline. An empty environment
    variable counts as unset. Raises `SecretError` for an empty or too short secret.
    """
    env = os.environ.get(ENV_SECRET)
    if env:
        return _checked(env, ENV_SECRET)
    path = home / SECRET_FILE
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    _create_secret(path)
    return _read_secret(path)


def _checked(text: str, source: str) -> bytes:
    key = text.encode("utf-8")
    if not key:
        raise SecretError(f"{source} is empty; delete it to make a new secret")
    if len(key) < MIN_SECRET_BYTES:
        raise SecretError(
            f"{source} is {len(key)} bytes long; an HS256 secret needs at least "
            f"{MIN_SECRET_BYTES} bytes"
        )
    return key


def _read_secret(path: Path) -> bytes:
    text = path.read_text(encoding="utf-8")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        # Like ssh: work, but tell the user that others can read the key.
        logger.warning("%s is readable by others (mode %o); chmod 600 it", path, mode)
    lines = text.splitlines()
    return _checked(lines[0] if lines else "", str(path))


def _create_secret(path: Path) -> None:
    """Make `path` holding a fresh secret, unless another process makes it first (its wins)."""
    create_private(path, (secrets.token_urlsafe(48) + "\n").encode("ascii"))
