"""Private files in the home, written whole, and the home itself: the one place that knows how.

Every file the server keeps (the secret, the password hash, refresh tokens, server.json, the
recordings index) is written the same way: a temporary file beside it, mode 0600, synced, then
renamed over it (or linked to it, to create it only if it is missing). A reader, or a crash,
only ever sees the old content or the new one, whole.

Every folder the program makes (the home, any missing folder above it, recordings/, tls/) is
made by `private_dir`, mode 0700 whatever the umask; `check_home` refuses a home that another
user could have written to (docs/security.md, "Other users of this machine").
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


def private_dir(path: Path) -> None:
    """Make folder `path` and every missing folder above it, each mode 0700 whatever the
    umask (mkdir's mode is cut by it, so each is set again at once, before its child is
    made). A folder that exists is left as it is; a name that is no folder raises OSError."""
    if os.path.isdir(path):
        return
    missing = [path]
    while not os.path.isdir(missing[-1].parent) and missing[-1].parent != missing[-1]:
        missing.append(missing[-1].parent)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR)
        except FileExistsError:
            if os.path.isdir(folder):
                continue  # made meanwhile by another process of ours
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder)) from None
        os.chmod(folder, PRIVATE_DIR)


def _synced_temp(path: Path, data: bytes) -> str:
    """A private temporary file beside `path` holding `data`, on disk; returns its name."""
    private_dir(path.parent)
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


class UnsafeHome(Exception):
    """The home, something in it or a folder above it is not the user's own: another user
    could have written it (or could replace it). The message names the path and why."""


LOOSE_BEFORE = frozenset({"keeper.json"})
"""Files this program makes in the home that an older version could leave writable by others
(keeper.json was written at the umask's mode, then chmod'ed): tightened at start, with a
note, rather than refused. keeper/daemon.py names the file (INFO); a test holds them equal."""

_SHARED_BITS = stat.S_IWGRP | stat.S_IWOTH


def check_home(home: Path) -> list[str]:
    """Refuse (UnsafeHome) a home another user could have written to, or could swap for one
    of her own; the notes of what was tightened (LOOSE_BEFORE), else [].

    Refused: a folder above the home that belongs to another user (root is fine) or that
    group or others may write without the sticky bit (/tmp's 1777 is fine); the home, or an
    entry in it or in one of its folders (lstat: links are not followed), that belongs to
    another user or that group or others may write (a link's own mode means nothing and is
    not looked at). One lstat per entry, no file is read: cheap with thousands of recordings.
    Raises OSError (FileNotFoundError for a missing home) when it cannot look.
    """
    uid = os.geteuid()
    for folder in _above(home):
        st = os.stat(folder)
        if st.st_uid not in (uid, 0):
            raise UnsafeHome(
                f"{folder} (a folder above the home) belongs to uid {st.st_uid}, not you "
                f"(uid {uid}) nor root: its owner could replace {home}"
            )
        if st.st_mode & _SHARED_BITS and not st.st_mode & stat.S_ISVTX:
            raise UnsafeHome(
                f"{folder} (a folder above the home) is {_writable_by(st)} (mode "
                f"{_mode(st)}) without the sticky bit: they could replace {home}; chmod go-w it"
            )
    st = os.stat(home)
    _check_entry(home, st, uid)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeHome(f"{home} is not a folder")
    notes: list[str] = []
    with os.scandir(home) as entries:
        for entry in entries:
            est = entry.stat(follow_symlinks=False)
            if (
                entry.name in LOOSE_BEFORE
                and est.st_mode & _SHARED_BITS
                and est.st_uid == uid
                and stat.S_ISREG(est.st_mode)
            ):
                os.chmod(entry.path, PRIVATE_FILE)
                notes.append(f"{entry.path} was {_writable_by(est)} (mode {_mode(est)}): made 0600")
                continue
            _check_entry(entry.path, est, uid)
            if stat.S_ISDIR(est.st_mode):
                with os.scandir(entry.path) as inner:
                    for item in inner:
                        _check_entry(item.path, item.stat(follow_symlinks=False), uid)
    return notes


def _above(home: Path) -> list[Path]:
    """Every folder above the home, as named and as reached through links, root first."""
    named = Path(os.path.abspath(home))
    found: list[Path] = []
    for path in (named, named.resolve()):
        for folder in reversed(path.parents):
            if folder not in found:
                found.append(folder)
    return found


def _check_entry(path: str | Path, st: os.stat_result, uid: int) -> None:
    if st.st_uid != uid:
        raise UnsafeHome(f"{path} belongs to uid {st.st_uid}, not you (uid {uid})")
    if st.st_mode & _SHARED_BITS and not stat.S_ISLNK(st.st_mode):
        raise UnsafeHome(f"{path} is {_writable_by(st)} (mode {_mode(st)}): chmod go-w it")


def _writable_by(st: os.stat_result) -> str:
    return "writable by others" if st.st_mode & stat.S_IWOTH else "writable by its group"


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def lock_holder(path: Path) -> int | None:
    """The pid of the process that holds an flock on `path` (for `<home>/server.lock`: the
    running server), or None when none does or the file is missing.

    Asked of the kernel, not of a pid written down: /proc/locks names the holder of a lock
    on the file's inode, and that process must have the file open (/proc/PID/fd). A pid
    that a file names from long ago, since reused by another process, is never taken for
    the holder. Raises OSError when /proc cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    with open("/proc/locks", encoding="ascii", errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2147126 0 EOF"; a waiter's line has "->".
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or not fields[4].isdigit():
            continue
        inode = fields[5].rsplit(":", 1)[-1]
        pid = int(fields[4])
        # The device is not compared: overlayfs may name another one than stat does. The
        # holder's open file is compared instead, as stat sees it.
        if inode == str(st.st_ino) and pid > 0 and _has_open(pid, st):
            return pid
    return None


def _has_open(pid: int, st: os.stat_result) -> bool:
    """Process `pid` has the file of `st` open (False if its fds cannot be read)."""
    fds = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fds)
    except OSError:
        return False
    for name in names:
        try:
            other = os.stat(f"{fds}/{name}")
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False
