"""The local terminal: raw mode that is always undone, and its size.

`RawMode` saves the terminal's attributes, makes it raw, and puts them back exactly once:
on a normal exit, on a signal (the relay calls `restore` first thing), on an exception
(the `with` block), and as a last resort at interpreter exit (atexit), so no path leaves
the user's terminal without echo.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import struct
import termios
import tty
from types import TracebackType
from typing import Any

DEFAULT_SIZE = (80, 24)


class RawMode:
    """Raw mode on `fd` while in the `with` block; a no-op when `fd` is not a terminal."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list[Any] | None = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def __enter__(self) -> RawMode:
        if os.isatty(self.fd):
            self._saved = termios.tcgetattr(self.fd)
            atexit.register(self.restore)
            tty.setraw(self.fd, termios.TCSANOW)
        return self

    def restore(self) -> None:
        """Put the saved attributes back (once; later calls do nothing)."""
        saved, self._saved = self._saved, None
        if saved is not None:
            atexit.unregister(self.restore)
            # TCSADRAIN: output already written is shown with the raw settings it expects.
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()


def terminal_size(*fds: int) -> tuple[int, int] | None:
    """(cols, rows) of the first of `fds` that is a terminal with a size, else None."""
    for fd in fds:
        try:
            raw = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        except OSError:
            continue
        rows, cols = struct.unpack("HHHH", raw)[:2]
        if cols > 0 and rows > 0:
            return min(cols, 1000), min(rows, 1000)
    return None
