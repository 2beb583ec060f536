"""One viewer attached to a session: its pending output, its flush policy, its sender task.

Output is appended to the client's own buffer and never awaited by the session, so a slow
client cannot slow the program or the other clients. When a client falls more than
`backlog_limit` bytes behind, its backlog is dropped and it is sent the current screen again.

Output that is due at once (the flush policy's word) is written by `feed` itself while the
sender task is parked and the socket takes writes without waiting (`Wire`): no task wakeup
and no trip through the ASGI layers per frame. Anything else (a frame not yet due, a socket
that is full, pongs, the end) is the sender task's, as before.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Protocol

from vibetunnel.protocol import frames, messages
from vibetunnel.protocol.aggregate import FlushPolicy

BACKLOG_LIMIT = 4 * 1024 * 1024
TEXTS_PENDING = 8
"""Text messages (pongs) held for a client that is not reading; more are dropped."""
# Home the cursor and erase screen and scrollback before a resynchronising replay.
RESYNC_PREFIX = b"\x1b[H\x1b[2J\x1b[3J"


class Wire(Protocol):
    """The socket below a client, written synchronously (api/wsconn.py)."""

    def can_send(self) -> bool:
        """A frame written now goes out without waiting (open, and under its high-water mark)."""

    def send_frame(self, frame: bytes) -> None:
        """Write one frame as one binary message; only when `can_send()`."""


class Ending(Enum):
    """Why a client's sender stopped: each maps to a close code in the WebSocket glue."""

    EXITED = 1000
    SHUTDOWN = 1001


class Client:
    """Fan-out target for one WebSocket (or any transport with the two send coroutines)."""

    def __init__(
        self,
        send_bytes: Callable[[bytes], Awaitable[None]],
        send_text: Callable[[str], Awaitable[None]],
        snapshot: Callable[[], bytes],
        *,
        backlog_limit: int = BACKLOG_LIMIT,
        policy: FlushPolicy | None = None,
        wire: Wire | None = None,
        shared: frames.SharedFrames | None = None,
    ) -> None:
        self._send_bytes = send_bytes
        self._wire = wire
        self._take = (shared or frames.SharedFrames()).take
        """Frames shared with the session's other clients that are in step."""
        self._send_text = send_text
        self._snapshot = snapshot
        self.backlog_limit = backlog_limit
        self.policy = policy or FlushPolicy()
        self.pending = bytearray()
        self.texts: deque[str] = deque()
        self.resyncs = 0
        self._ending: Ending | None = None
        self._exit_code: int | None = None
        """The program's exit code; None also when it cannot be known (see Session.lost)."""
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # Called by the session, synchronously, on the event loop.

    def feed(self, data: bytes) -> None:
        if self._ending is not None:
            return
        before = len(self.pending)
        self.pending += data
        if len(self.pending) > self.backlog_limit:
            self.resync()
            return
        sent = self._waiter is not None and not self.texts and self._send_due()
        if sent and not self.pending:
            return
        # Wake the sender only when this changes what it is waiting for.
        if before == 0 or sent or (before < self.policy.max_frame <= len(self.pending)):
            self._wake()

    def _send_due(self) -> bool:
        """Write what the policy says is due now, here, if the socket takes it without
        waiting; whether anything was written. Only while the sender task is parked (it
        would otherwise be mid-send, and frames must stay in order)."""
        wire, loop = self._wire, self._loop
        if wire is None or loop is None:
            return False
        sent = False
        now = loop.time()
        while self.pending and wire.can_send():
            due = self.policy.due(now, len(self.pending))
            if due is None or due > now:
                break
            wire.send_frame(self._take(self.pending, self.policy.max_frame))
            self.policy.sent(now)
            sent = True
        return sent

    def resync(self) -> None:
        """Drop the backlog and start again from the current screen."""
        self.resyncs += 1
        self.pending = bytearray(RESYNC_PREFIX + self._snapshot())
        self._wake()

    def note_input(self) -> None:
        self.policy.note_input()
        if self.pending:  # else the echo itself wakes the sender (or is sent by `feed`)
            self._wake()

    def send_text(self, text: str) -> bool:
        """Queue a text message (a pong); False, and dropped, when TEXTS_PENDING are still
        unsent: a client that pings and never reads must not grow the server. RFC 6455
        lets a pong answer only the latest ping, and a client that has not read eight
        pongs learns nothing from a ninth."""
        if len(self.texts) >= TEXTS_PENDING:
            return False
        self.texts.append(text)
        self._wake()
        return True

    def session_exited(self, code: int | None) -> None:
        """Send what is pending, then the exit message; the sender then ends with EXITED."""
        if self._ending is None:
            self._ending = Ending.EXITED
            self._exit_code = code
            self._wake()

    def shutdown(self) -> None:
        """The server is going away: stop now, pending output is not worth the wait."""
        self._ending = Ending.SHUTDOWN
        self.pending.clear()
        self._wake()

    # The sender task.

    async def run(self) -> Ending:
        """Send output by the flush policy until the session ends or the server stops."""
        loop = self._loop = asyncio.get_running_loop()
        while True:
            while self.texts:
                await self._send_text(self.texts.popleft())
            if self._ending is Ending.SHUTDOWN:
                return Ending.SHUTDOWN
            if not self.pending:
                if self._ending is Ending.EXITED:
                    await self._send_text(messages.exit_message(self._exit_code))
                    return Ending.EXITED
                await self._wait(None)
                continue
            now = loop.time()
            due = self.policy.due(now, len(self.pending))
            assert due is not None
            if due > now and self._ending is None:
                await self._wait(due)
                continue
            frame = self._take(self.pending, self.policy.max_frame)
            if self._wire is not None and self._wire.can_send():
                self._wire.send_frame(frame)
            else:
                await self._send_bytes(frame)
            self.policy.sent(loop.time())

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self, deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_at(deadline, self._wake) if deadline is not None else None
        try:
            await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
