"""A WebSocket client that never reads: a blocking socket with a tiny receive buffer, frames
built by websockets' sans-I/O client. For tests of what the server holds for such a peer."""

from __future__ import annotations

import select
import socket
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.uri import parse_uri


class DeafSocket:
    """Opens the WebSocket at `url`, reads its handshake answer, then never reads again."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.protocol = ClientProtocol(parse_uri(url))
        self.sock = socket.socket()
        # Set before connecting, so the window the server sees stays small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(timeout)
        self.sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        answer = b""
        while b"\r\n\r\n" not in answer:  # byte by byte: nothing after the answer is read
            byte = self.sock.recv(1)
            if not byte:
                raise ConnectionError("closed during the handshake")
            answer += byte
        self.protocol.receive_data(answer)
        self.protocol.events_received()

    def _flush(self) -> None:
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def send_text(self, text: str, count: int = 1) -> None:
        for _ in range(count):
            self.protocol.send_text(text.encode())
        self._flush()

    def send_ping(self, count: int = 1) -> None:
        for _ in range(count):
            self.protocol.send_ping(b"p" * 125)
        self._flush()

    def dropped(self) -> bool:
        """The server reset or closed the connection (seen without reading a byte)."""
        ended = select.POLLRDHUP | select.POLLHUP | select.POLLERR
        poller = select.poll()
        poller.register(self.sock, ended)
        return any(event & ended for _, event in poller.poll(0))

    def close(self) -> None:
        self.sock.close()
