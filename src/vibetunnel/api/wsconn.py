"""uvicorn's sans-I/O WebSocket protocol, bounded for a peer that does not read.

**Reading.** uvicorn parses all it reads at once and queues every message for the app, then
pauses reading until the app has taken them all. 256 KiB of tiny messages (pings) made some
12,000 queued events per read, 4 MB for one connection; here what was read is parsed FEED
bytes at a time, and only while the app has nothing waiting.

**Writing.** What the app writes to a WebSocket waits for the peer (`send` awaits the
transport's "writable" flag), so its output, pongs and exit message are held back, not piled
up: pty/client.py bounds what waits. Three writes of uvicorn's own did not wait:

- **control-frame pongs.** Each WebSocket PING is answered at once, written whatever the
  write buffer holds: a peer sending pings and reading nothing grew the server by tens of
  MB a second. Past PONG_BACKLOG unsent bytes the pong is dropped, which RFC 6455 (5.5.3)
  allows: a pong may answer only the latest ping.
- **the close frame** waited for the peer to read like any message: a peer that reads
  nothing held the app's close (and the socket) forever. It now waits CLOSE_WAIT at most,
  then the connection is dropped (aborted).
- **closing the socket** once the app is done flushes the write buffer first, forever if
  the peer reads nothing (a zero window is probed, never timed out). LINGER after the app
  ends, a connection still open is reset: its socket and buffers, the kernel's included,
  are released.

**Text messages** are handed to the app's `on_text` as they are parsed, when nothing waits
before them (a keystroke then reaches the program in the socket's own callback, without a
task wakeup and the ASGI receive chain); anything the handler declines takes the queue.
A read that is exactly one short text frame (a keystroke, as browsers send them) is unmasked
and handed over without websockets' parser, whose generators were a third of a keystroke's
time in `data_received` (docs/perf/README.md).

**Output frames** (`can_send`, `send_frame`: pty/client.py's `Wire`, found by the app in the
scope's extensions under WIRE) are written straight to the transport as whole binary
messages, skipping the ASGI send chain (starlette, the middleware, websockets' framing): the
server never negotiates an extension (no permessage-deflate), so a server's unmasked binary
frame is all there is to it. The message for the last frame is kept, so the clients of one
session that are in step (handed the same frame object) share one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C part
    from websockets.utils import apply_mask

PONG_BACKLOG = 256 * 1024
"""Unsent bytes past which control-frame pongs are dropped. The app's own sends wait below
the transport's high-water mark (64 KiB) plus one frame, so a peer that reads is never near."""
FEED = 4096
"""Bytes parsed at a time. A read brings up to 256 KiB: parsed at once, 256 KiB of tiny
messages became some 12,000 queued events, sixteen times their size in memory."""
CLOSE_WAIT = 5.0
"""Seconds a close frame waits for a peer that reads nothing before the connection is dropped."""
LINGER = 15.0
"""Seconds a connection may stay open after its app is done (uvicorn's closing handshake
waits 10 s for the peer's close frame) before it is dropped."""

WIRE = "vibetunnel.wire"
"""The scope extension that holds the connection, for `can_send` and `send_frame`."""

_last: tuple[bytes, bytes] = (b"", b"")
"""(frame, its WebSocket message): one message for every client handed the same frame."""


def binary_message(data: bytes) -> bytes:
    """A server's WebSocket binary message (FIN, opcode 2, unmasked) carrying `data`."""
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x82, n)
    elif n < 0x10000:
        head = struct.pack("!BBH", 0x82, 126, n)
    else:
        head = struct.pack("!BBQ", 0x82, 127, n)
    return head + data


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    """`WebSocketsSansIOProtocol` whose writes of its own are bounded (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._abort_timer: asyncio.TimerHandle | None = None
        self._unparsed = bytearray()
        """Read, not yet parsed: parsing waits until the app has taken what was parsed."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the app's task is created, not yet run
            scope["extensions"][WIRE] = self

    on_text: Callable[[str], bool] | None = None
    """The app's handler of a text message, called as it arrives while nothing waits in the
    queue before it: True, it was applied; False, it goes to the queue (and the app's
    receive loop), as every message does without a handler."""

    def send_receive_event_to_app(self) -> None:
        if (
            self.on_text is not None
            and self.curr_msg_data_type == "text"
            and self.queue.empty()
            and not self.close_sent
        ):
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                text = data.decode()
            except UnicodeDecodeError:  # uvicorn's own path says so
                pass
            else:
                if self.on_text(text):
                    self.frames = []
                    return
        super().send_receive_event_to_app()

    def can_send(self) -> bool:
        return (
            self.writable.is_set()
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and self.conn.state is State.OPEN
            and not self.transport.is_closing()
        )

    def send_frame(self, frame: bytes) -> None:
        global _last
        if _last[0] is not frame:
            _last = (frame, binary_message(frame))
        self.transport.write(_last[1])

    def data_received(self, data: bytes) -> None:
        if not self._unparsed and self._one_text(data):
            return
        self._unparsed += data
        self._feed()

    def _one_text(self, data: bytes) -> bool:
        """Whether `data`, read alone, was one whole short text message (FIN, masked, under
        126 bytes: a keystroke, a resize, a ping) that `on_text` applied. The parser's
        generators, its events and uvicorn's handlers are skipped; they hold no state for a
        whole frame read between two others. Anything else, a parser mid-frame or
        mid-message, or text that is not UTF-8, goes the long way, which says what is wrong."""
        on_text = self.on_text
        if on_text is None or len(data) < 6 or data[0] != 0x81:
            return False
        size = data[1] ^ 0x80  # the mask bit set, so the size; unmasked, over 127
        if size > 125 or len(data) != 6 + size:
            return False
        conn = self.conn
        if (
            conn.state is not State.OPEN
            or conn.current_size is not None
            or conn.reader.buffer
            or conn.parser_exc is not None
            or self.close_sent
            or self.frames
            or not self.queue.empty()
        ):
            return False
        try:
            text = apply_mask(data[6:], data[2:6]).decode()
        except UnicodeDecodeError:
            return False
        return on_text(text)

    def _feed(self) -> None:
        """Parse what was read, FEED bytes at a time, while the app has nothing waiting (or
        has closed: messages are then dropped, and the peer's close frame must be read)."""
        while self._unparsed and (self.queue.empty() or self.close_sent):
            if self.disconnected or self.transport.is_closing() or self.conn.parser_exc:
                self._unparsed.clear()  # nobody will read the rest
                return
            chunk = bytes(self._unparsed[:FEED])
            del self._unparsed[:FEED]
            super().data_received(chunk)
        if self._unparsed and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()  # resumed by `receive` once the app caught up

    async def receive(self) -> ASGIReceiveEvent:
        message = await super().receive()
        self._feed()
        return message

    def handle_ping(self) -> None:
        if self.transport.get_write_buffer_size() > PONG_BACKLOG:
            self.conn.data_to_send()  # the peer reads nothing: drop the pong
            return
        super().handle_ping()

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "websocket.close" and not self.writable.is_set():
            try:
                async with asyncio.timeout(CLOSE_WAIT):
                    await self.writable.wait()
            except TimeoutError:
                self._abort()
                raise ClientDisconnected() from None
        await super().send(message)

    def on_task_complete(self, task: asyncio.Task[None]) -> None:
        super().on_task_complete(task)
        if not self.disconnected and self._abort_timer is None:
            self._abort_timer = self.loop.call_later(LINGER, self._abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._unparsed and not self.disconnected and self.conn.parser_exc is None:
            # What the peer sent before it left reaches the app before the disconnect.
            rest, self._unparsed = bytes(self._unparsed), bytearray()
            super().data_received(rest)
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        super().connection_lost(exc)

    def _abort(self) -> None:
        self._abort_timer = None
        if self.disconnected:
            return
        # Linger 0: the close is a reset, and the kernel frees the unsent bytes now. A plain
        # close would queue a FIN behind them and keep the socket (FIN-WAIT-1) and up to
        # its send buffer alive, probing a zero window, long after this process let go.
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()  # connection_lost follows: the app sees a disconnect
