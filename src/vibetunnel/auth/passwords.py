"""The login password: `$VIBETUNNEL_PASSWORD`, else an argon2id hash in `<home>/password`.

The server has one user, so a login's username is accepted and ignored. An empty
`$VIBETUNNEL_PASSWORD` counts as unset (as `VAR=` in a compose file means "no value").
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..files import write_private

ENV_PASSWORD = "VIBETUNNEL_PASSWORD"
PASSWORD_FILE = "password"

logger = logging.getLogger(__name__)
_hasher = PasswordHasher()  # argon2id with the RFC 9106 low-memory profile


def password_path(home: Path) -> Path:
    """Where `vibetunnel passwd` stores the hash."""
    return home / PASSWORD_FILE


def set_password(home: Path, password: str) -> None:
    """Store an argon2id hash of `password` in `<home>/password` (mode 0600)."""
    if not password:
        raise ValueError("the password must not be empty")
    _store(home, _hasher.hash(password))


def check_password(home: Path, password: str, username: str | None = None) -> bool:
    """Whether `password` is the configured one. False when no password is configured.

    `username` is accepted for the login body's optional field and ignored: one user.
    """
    if not password:
        return False
    env = os.environ.get(ENV_PASSWORD)
    if env:
        return hmac.compare_digest(password.encode("utf-8"), env.encode("utf-8"))
    stored = _read_hash(home)
    if stored is None:
        return False
    try:
        _hasher.verify(stored, password)
    except VerifyMismatchError:
        return False
    except (InvalidHashError, VerificationError) as e:
        logger.warning("%s does not hold a valid hash (%s); run vibetunnel passwd", home, e)
        return False
    if _hasher.check_needs_rehash(stored):
        # Parameters grew stronger since the hash was made: upgrade it while we know the password.
        try:
            _store(home, _hasher.hash(password))
        except OSError as e:
            logger.warning("cannot rehash the password: %s", e)
    return True


def password_configured(home: Path) -> bool:
    """Whether a login password is set, in the environment or in `<home>/password`."""
    return bool(os.environ.get(ENV_PASSWORD)) or _read_hash(home) is not None


def _store(home: Path, hashed: str) -> None:
    write_private(password_path(home), (hashed + "\n").encode("ascii"))


def _read_hash(home: Path) -> str | None:
    try:
        text = password_path(home).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        logger.warning("cannot read the password file: %s", e)
        return None
    return text or None
