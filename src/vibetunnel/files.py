"""Small file helpers shared by the parts that keep state on disk."""

from __future__ import annotations

import contextlib
import os
import resource
from pathlib import Path


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
