"""Private files in the home, written whole: the one place that knows how.

Every file the server keeps (the secret, the password hash, refresh tokens, server.json, the
recordings index) is written the same way: a temporary file beside it, mode 0600, synced, then
renamed over it (or linked to it, to create it only if it is missing). A reader, or a crash,
only ever sees the old content or the new one, whole.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import stat
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_TMP_SUFFIX = ".tmp"


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable; a folder that cannot be opened is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard one: every session holds a terminal
    (and a recording), and the default 1024 runs out at a few hundred. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def _synced_temp(path: Path, data: bytes) -> str:
    """A private temporary file beside `path` holding `data`, on disk; returns its name."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), PRIVATE_FILE)  # mkstemp's mode, whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically with mode 0600, replacing what was there."""
    tmp = _synced_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def create_private(path: Path, data: bytes) -> bool:
    """Create `path` holding `data` (mode 0600) unless it exists; True if this call made it.

    The whole content is linked to its name: the link fails if the name exists (like
    O_EXCL), so of two processes racing, one wins and the other keeps the winner's file.
    """
    tmp = _synced_temp(path, data)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # A file system without hard links: fall back to O_EXCL creation.
            if not _create_exclusive(path, data):
                return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return True


def _create_exclusive(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return True


class NotPlainFile(OSError):
    """A name that is not a regular file with one link (a link, a folder, a FIFO...)."""


def open_plain(path: Path, flags: int, mode: int = PRIVATE_FILE) -> int:
    """Open `path` only if it is a regular file with one link; the descriptor.

    Never follows a symbolic link (O_NOFOLLOW: ELOOP), never blocks on a FIFO (O_NONBLOCK
    while opening), and refuses a hard link (st_nlink > 1): through any of these, serving or
    repairing a file in a folder of ours would reach a file outside it. A file this call
    creates (O_CREAT in `flags`) is made with `mode`. Raises OSError (NotPlainFile for a
    name that exists but is no plain file).
    """
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            kind = "a hard link" if stat.S_ISREG(st.st_mode) else "not a regular file"
            raise NotPlainFile(errno.EPERM, f"{kind}, refused", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def is_plain(path: Path) -> bool:
    """`path` is a regular file with one link (not followed if it is a link)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def remove_stale_temps(path: Path) -> None:
    """Delete temporary files a crash left beside `path` (only one writer may call this)."""
    for stale in path.parent.glob(f".{path.name}.*{_TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            stale.unlink()
