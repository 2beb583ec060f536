"""One viewer attached to a session: its pending output, its flush policy, its sender task.

Output is appended to the client's own buffer and never awaited by the session, so a slow
client cannot slow the program or the other clients. When a client falls more than
`backlog_limit` bytes behind, its backlog is dropped and it is sent the current screen again.

A client that acks (protocol/flow.py) has at most a window of output unacknowledged in
flight; the rest waits in its buffer. It is resynchronised sooner than one that never acks
(more than ACKED_LAG held back, or more than INPUT_LAG when the session gets input), with the
end of the screen (RESYNC_BYTES), which a browser paints in a few frames.

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
from vibetunnel.protocol.flow import ACKED_LAG, FRAME, INPUT_LAG, RESYNC_BYTES, AckWindow

BACKLOG_LIMIT = 4 * 1024 * 1024
TEXTS_PENDING = 8
"""Text messages (pongs) held for a client that is not reading; more are dropped."""
# Home the cursor and erase screen and scrollback before a resynchronising replay.
RESYNC_PREFIX = b"\x1b[H\x1b[2J\x1b[3J"


class Screen(Protocol):
    """Where a resynchronisation starts (Session.snapshot): the one call that says what the
    current screen is."""

    def __call__(self, limit: int | None = None) -> bytes:
        """The current screen, at most about `limit` bytes (None: the replay's own limit)."""


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
        snapshot: Screen,
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
        self.flow = AckWindow()
        self.acked_lag = ACKED_LAG
        """`backlog_limit` of a client that acks."""
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
        if len(self.pending) > (self.acked_lag if self.flow.acking else self.backlog_limit):
            self.resync()
            return
        self._kick(before)

    def _kick(self, before: int) -> None:
        """Send what is due now, here, or wake the sender when this changes what it waits
        for (`before`: the pending bytes it last saw)."""
        sent = self._waiter is not None and not self.texts and self._send_due()
        if sent and not self.pending:
            return
        if self.flow.room() == 0:
            return  # the window is shut: an ack wakes the sender
        if before == 0 or sent or (before < self.policy.max_frame <= len(self.pending)):
            self._wake()

    def _limit(self) -> int:
        """Data bytes the next frame may carry: 0 while the window is shut (or open by less
        than a character, which a frame never splits)."""
        room = self.flow.room()
        if room is None:
            return self.policy.max_frame
        if room < min(len(self.pending), 4):
            return 0
        return min(self.policy.max_frame, FRAME, room)

    def _send(self, frame: bytes) -> None:
        """Count a frame handed to the socket (its data bytes, as the client's acks do)."""
        self.flow.on_sent(len(frame) - frames.HEADER_SIZE)

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
            limit = self._limit()
            if not limit:
                break
            frame = self._take(self.pending, limit)
            self._send(frame)
            wire.send_frame(frame)
            self.policy.sent(now)
            sent = True
        return sent

    def resync(self) -> None:
        """Drop the backlog and start again from the current screen (its end, for a client
        that acks: what it can paint at once)."""
        self.resyncs += 1
        screen = self._snapshot(RESYNC_BYTES) if self.flow.acking else self._snapshot()
        self.pending = bytearray(RESYNC_PREFIX + screen)
        self._wake()

    def note_input(self) -> None:
        self.policy.note_input()
        if self.flow.acking and len(self.pending) > INPUT_LAG:
            self.resync()  # what the typist sees next is what the keystroke did
        elif self.pending:  # else the echo itself wakes the sender (or is sent by `feed`)
            self._wake()

    def ack(self, total: int) -> None:
        """The client has processed `total` data bytes (protocol/flow.py); raises
        ProtocolError for one that goes back or is more than was sent."""
        self.flow.ack(total)
        if self.pending and self._ending is not Ending.SHUTDOWN:
            self._kick(0)

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
            limit = self._limit()
            if not limit:
                await self._wait(None)  # until an ack opens the window
                continue
            frame = self._take(self.pending, limit)
            self._send(frame)
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
