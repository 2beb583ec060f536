"""Limits on connections, below ASGI: uvicorn's protocols, with a header deadline, a header
size limit and a cap on connections per client.

These must act on the socket, not in the app: a request whose headers never end never
reaches ASGI middleware, yet holds a file descriptor for as long as its sender likes. So:

- **header deadline**: while a request's headers are due (a new connection, an idle
  keep-alive one, a request begun), they must all arrive within `header_timeout` seconds,
  else the connection is closed;
- **header size**: at most MAX_HEADER_BYTES of them, else 431 and close (uvicorn and
  httptools keep them all in memory, without a limit of their own);
- **connections per client**: `ConnectionGuard` (api/peers.py), fed from here. A
  connection over the cap is closed at once, freeing its descriptor, unless one of the
  client's waiting connections can make room. Each protocol is the `Seat` of its requests
  (`scope["extensions"][SEAT]`): the app moves a share link's request to the link's own
  count (api/security.py), and an HTTP connection returns to its address's when the
  response ends (or is closed, if the address has no room left by then);
- **after a WebSocket close**: a peer that goes on sending after the server's close frame
  (a refused token that streams anyway) is hung up on, not read.

`protocols()` returns the two classes to hand uvicorn (`http=` and `ws=`): an upgraded
WebSocket keeps its transport, so the guard counts transports and the WebSocket protocol
only says when one is gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from websockets.http11 import Request

from vibetunnel.api.peers import SEAT, ConnectionGuard, peer_key
from vibetunnel.api.wsconn import BoundedWebSocketProtocol

log = logging.getLogger("vibetunnel")

MAX_HEADER_BYTES = 64 * 1024
"""Bytes of request line and headers at most (browsers send a few KiB; nginx allows 32 KiB)."""
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)
AFTER_CLOSE_BYTES = 64 * 1024
"""Bytes a WebSocket peer may send after the server's close frame (its own close reply, and
what it had in flight) before it is hung up on."""
WARN_EVERY = 60.0
"""Seconds between two log lines about refused connections (a flood must not flood the log)."""

Guard = ConnectionGuard[asyncio.BaseTransport]


def _count_as(guard: Guard, transport: asyncio.BaseTransport, client: str, cap: int) -> bool:
    moved, evicted = guard.move(transport, client, cap)
    if evicted is not None:
        evicted.close()
    return moved


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the header deadline, the header size limit and the
    connection cap."""

    guard: ClassVar[Guard]
    header_timeout: ClassVar[float]
    _warned: ClassVar[float] = -WARN_EVERY

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._heads = 0
        """Requests whose headers are complete, so far."""
        self._address = "-"
        """The client this connection comes from (`peer_key`), whose count it returns to."""

    # -- the connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        client = self._address = peer_key(self.client[0] if self.client else None)
        admitted, evicted = self.guard.admit(transport, client)
        if evicted is not None:
            self._warn(client, "closing the longest waiting for its headers")
            evicted.close()
        if not admitted:
            self._warn(client, "refusing new ones: all are busy")
            transport.close()
            return
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.leave(self.transport)
        self._stop_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        heads = self._heads
        super().data_received(data)
        if self._deadline is not None and self._heads == heads:
            # Still no end of headers: count what came (a chunk that ended some headers and
            # began the next request's is not counted; it is one chunk, bounded).
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self.transport.write(TOO_LARGE)
                self.transport.close()

    # -- httptools' callbacks and uvicorn's hooks --------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        cast(dict[str, Any], self.scope).setdefault("extensions", {})[SEAT] = self
        self._await_headers()  # a pipelined request, begun while another is served

    def on_headers_complete(self) -> None:
        self._heads += 1
        self._header_bytes = 0
        self._stop_deadline()
        self.guard.busy(self.transport)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        idle = not self.pipeline  # else the next request's headers are already here
        if self.guard.client_of(self.transport) not in (self._address, None):
            self._come_back()
        super().on_response_complete()
        if idle and not self.transport.is_closing():
            self._await_headers()

    # -- the seat (api/peers.py) ------------------------------------------------------------

    def count_as(self, client: str, cap: int) -> bool:
        """Seat.count_as: this request is `client`'s, until its response ends."""
        return _count_as(self.guard, self.transport, client, cap)

    def _come_back(self) -> None:
        """Counted as its address's again: the next request may be anyone's."""
        back, evicted = self.guard.move(self.transport, self._address)
        if evicted is not None:
            self._warn(self._address, "closing the longest waiting for its headers")
            evicted.close()
        if not back:  # the address filled up meanwhile, all busy: this idle one goes
            self.transport.close()

    # -- the deadline -----------------------------------------------------------------------

    def _await_headers(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._headers_late)
            self.guard.waiting(self.transport)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def _warn(self, client: str, doing: str) -> None:
        now = time.monotonic()
        if now - GuardedHttp._warned >= WARN_EVERY:
            GuardedHttp._warned = now
            log.warning(
                "%s has %d connections open (--max-connections-per-address): %s",
                client,
                self.guard.count(client),
                doing,
            )


class GuardedWebSocket(BoundedWebSocketProtocol):
    """The WebSocket protocol (uvicorn's, bounded for peers that do not read: api/wsconn.py),
    which gives the connection's slot back when it ends and stops reading a peer that goes on
    sending after the server's close."""

    guard: ClassVar[Guard]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._after_close = 0

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the app's task is created, not yet run
            scope["extensions"][SEAT] = self

    def count_as(self, client: str, cap: int) -> bool:
        """Seat.count_as: this WebSocket is `client`'s, until it closes."""
        return _count_as(self.guard, self.transport, client, cap)

    def data_received(self, data: bytes) -> None:
        if self.close_sent:
            # Our close frame is out (a refused token, say): what should come back is the
            # peer's close, after what was in flight. uvicorn would read and drop frames of
            # up to 1 MiB for 10 s while it waits; a peer that keeps sending is hung up on.
            self._after_close += len(data)
            if self._after_close > AFTER_CLOSE_BYTES:
                self.transport.close()
                return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.leave(self.transport)
        super().connection_lost(exc)


def protocols(
    per_client: int, header_timeout: float
) -> tuple[type[GuardedHttp], type[GuardedWebSocket]]:
    """The HTTP and WebSocket protocol classes for one server, sharing one guard."""
    guard: Guard = ConnectionGuard(per_client)

    class Http(GuardedHttp):
        pass

    class WebSocket(GuardedWebSocket):
        pass

    Http.guard = WebSocket.guard = guard
    Http.header_timeout = header_timeout
    return Http, WebSocket
