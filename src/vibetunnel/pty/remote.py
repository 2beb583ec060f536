"""A PTY that `vt` runs in its own process, driven over the host link (api/host.py).

Output and the exit arrive from the link and are handed to the session; input, resizes and
signals become messages queued for vt. The queue is bounded like PtyProcess's input queue
(WRITE_QUEUE_LIMIT characters of queued messages, input and resizes alike), so a browser
pasting or resizing into a vt that does not read cannot grow the server without limit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from vibetunnel.errors import InputOverflow
from vibetunnel.protocol import host as messages
from vibetunnel.pty.process import WRITE_QUEUE_LIMIT, staged_kill


class RemotePty:
    """The `Pty` of a session whose program runs under `vt`. Create one per registration."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exited = asyncio.Event()
        self.returncode: int | None = None
        self.linked = True
        """False once the link to vt is gone (dropped or replaced): messages are then ignored."""
        self._outbox: deque[str] = deque()
        self._queued = 0
        self._wakeup = asyncio.Event()
        self._on_output: Callable[[bytes], None] = lambda data: None
        self._on_exit: Callable[[int], None] = lambda code: None

    # -- the Pty protocol (called by the Session) -------------------------------------------

    def start(self, on_output: Callable[[bytes], None], on_exit: Callable[[int], None]) -> None:
        self._on_output = on_output
        self._on_exit = on_exit

    def write(self, data: bytes) -> None:
        """Queue input for vt; never blocks. Raises InputOverflow when vt is not reading."""
        if data:
            self._send(messages.input_message(data.decode("utf-8", "replace")), bounded=True)

    def resize(self, cols: int, rows: int) -> None:
        """Queue a resize for vt. Raises InputOverflow when vt is not reading: resizes count
        against the same limit as input, so a flood of them cannot grow the queue either."""
        self._send(messages.resize_message(cols, rows), bounded=True)

    def signal(self, sig: int) -> None:
        # Never refused: a DELETE must reach vt, and a staged kill queues three at most.
        self._send(messages.signal_message(sig))

    async def terminate(self, grace: float = 1.0) -> None:
        """Staged kill through vt: SIGHUP, then SIGTERM, then SIGKILL, `grace` seconds apart."""
        await staged_kill(self.signal, self.exited, grace)

    # -- the link side (called by serve_host) -----------------------------------------------

    def _send(self, message: str, bounded: bool = False) -> None:
        if not self.linked or self.exited.is_set():
            return
        # The limit counts the queued messages themselves: JSON escapes a control character
        # as six, so counting the input's characters would let six times the limit in.
        if bounded and self._queued + len(message) > WRITE_QUEUE_LIMIT:
            raise InputOverflow(
                f"the program is not reading its input ({self._queued} characters queued for "
                f"vt, {len(message)} more would pass the {WRITE_QUEUE_LIMIT >> 20} MiB limit)"
            )
        self._outbox.append(message)
        self._queued += len(message)
        self._wakeup.set()

    async def next_message(self) -> str | None:
        """The next message for vt, waiting for one; None once the link is to be closed."""
        while not self._outbox:
            if not self.linked:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        message = self._outbox.popleft()
        self._queued -= len(message)
        return message

    def feed(self, data: bytes) -> None:
        """Output of the program, as vt read it."""
        if not self.exited.is_set():
            self._on_output(data)

    def finish(self, code: int) -> None:
        """The program ended: the session goes to exited, its clients get the exit message."""
        if self.exited.is_set():
            return
        self.returncode = code
        self.exited.set()
        self._on_exit(code)

    def unlink(self) -> None:
        """The link is gone without an exit: stop queueing, wake the sender and any kill."""
        self.linked = False
        self._outbox.clear()
        self._queued = 0
        self._wakeup.set()
        # Nothing more will come from this registration; a staged kill waiting on it returns.
        self.exited.set()
