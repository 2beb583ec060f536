"""The home as every command takes it: made private if asked, and checked before it is used.

Which commands check, and why (docs/security.md, "Other users of this machine"): every one
that reads or writes the home. `serve`, `passwd`, `token` and `vt` make it when it is
missing; `stop`, `login-link`, `recordings`, `play` and `vt --list` only read it, and a home
that does not exist holds nothing to trust.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vibetunnel.files import UnsafeHome, check_home, private_dir

REFUSED = 2
"""The exit status of a command whose home is refused (1: it cannot be made or looked at)."""


def refused(home: Path, prog: str, *, make: bool = False) -> int:
    """0 if `home` may be used (made first with `make`, every missing folder 0700), else
    the exit status, having said why on stderr. What was tightened is said as a warning."""
    try:
        if make:
            private_dir(home)
        elif not os.path.lexists(home):
            return 0
        notes = check_home(home)
    except UnsafeHome as exc:
        print(f"{prog}: refusing the home {home}: {exc}", file=sys.stderr)
        return REFUSED
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prog}: cannot use the home {home}: {where}{exc.strerror}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"{prog}: WARNING: {note}", file=sys.stderr)
    return 0
