"""Keeper messages over a Unix stream socket, with file descriptors (SCM_RIGHTS).

`Channel` runs on an asyncio loop (readers and writers on the raw socket: asyncio's
transports cannot carry descriptors). `recv_messages` and `send_message` are the blocking
forms, for the short handshakes of `vibetunnel serve` and `vibetunnel stop`.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from vibetunnel.keeper.wire import MAX_FDS, Decoder, WireError, encode

log = logging.getLogger("vibetunnel.keeper")

RECV_SIZE = 256 * 1024
_ANCILLARY = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)

Message = dict[str, Any]


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _recv(sock: socket.socket) -> tuple[bytes, list[int]]:
    data, ancillary, flags, _ = sock.recvmsg(RECV_SIZE, _ANCILLARY)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
            fds.extend(got)
    for fd in fds:
        os.set_inheritable(fd, False)
    if flags & socket.MSG_CTRUNC:
        for fd in fds:
            os.close(fd)
        raise WireError("too many descriptors in one message")
    return data, fds


def _send(sock: socket.socket, data: memoryview, fds: Sequence[int]) -> int:
    if fds:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        return sock.sendmsg([data], ancillary)
    return sock.send(data)


class Inbox:
    """Bytes and descriptors in arrival order, out as messages each with its descriptors."""

    def __init__(self) -> None:
        self.decoder = Decoder()
        self.fds: deque[int] = deque()

    def take(self, data: bytes, fds: list[int]) -> list[tuple[Message, list[int]]]:
        self.fds.extend(fds)
        out = []
        for message in self.decoder.feed(data):
            count = message.get("fds", 0)
            if count > len(self.fds):
                raise WireError("a message promised descriptors that did not come")
            out.append((message, [self.fds.popleft() for _ in range(count)]))
        return out

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.popleft())


def send_message(sock: socket.socket, message: Message, fds: Sequence[int] = ()) -> None:
    """Blocking send of one message."""
    data = memoryview(encode({**message, "fds": len(fds)} if fds else message))
    sent = _send(sock, data, fds)
    while sent < len(data):
        sent += sock.send(data[sent:])


def recv_messages(
    sock: socket.socket,
    until: Callable[[Message], bool],
    timeout: float,
    inbox: Inbox | None = None,
) -> list[tuple[Message, list[int]]]:
    """Blocking receive until a message for which `until` is true; returns every message of
    the read that brought it, later ones included. What came after them (a message cut in
    two) stays in `inbox`, for a Channel to carry on from.

    Raises TimeoutError, ConnectionError (the peer closed) or WireError.
    """
    own = inbox is None
    inbox = Inbox() if inbox is None else inbox
    got: list[tuple[Message, list[int]]] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the keeper did not answer in time")
            sock.settimeout(left)
            data, fds = _recv(sock)
            if not data and not fds:
                raise ConnectionError("the keeper closed the connection")
            received = inbox.take(data, fds)
            got.extend(received)
            if any(until(message) for message, _ in received):
                return got
    except BaseException:
        for _, fds in got:
            for fd in fds:
                os.close(fd)
        inbox.close()
        raise
    finally:
        if own:
            inbox.close()


class Channel:
    """One connection on the running loop: `send` queues, `on_message` and `on_close` fire.

    Descriptors passed to `send` are duplicated at once: the caller keeps its own.
    """

    def __init__(
        self,
        sock: socket.socket,
        on_message: Callable[[Message, list[int]], None],
        on_close: Callable[[], None],
        inbox: Inbox | None = None,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._on_message = on_message
        self._on_close = on_close
        self._inbox = Inbox() if inbox is None else inbox
        self._out: deque[tuple[memoryview, list[int]]] = deque()
        self._writing = False
        self._drained = asyncio.Event()
        self._drained.set()
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def send(self, message: Message, fds: Sequence[int] = ()) -> None:
        if self.closed:
            return
        data = encode({**message, "fds": len(fds)} if fds else message)
        owned = [os.dup(fd) for fd in fds]
        self._out.append((memoryview(data), owned))
        self._drained.clear()
        if not self._writing:
            self._writable()

    def _writable(self) -> None:
        while self._out:
            data, fds = self._out[0]
            try:
                sent = _send(self.sock, data, fds)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close()
                return
            for fd in fds:
                os.close(fd)
            if sent < len(data):
                self._out[0] = (data[sent:], [])
                break
            self._out.popleft()
        want = bool(self._out)
        if not want:
            self._drained.set()
        if want != self._writing:
            self._writing = want
            if want:
                self._loop.add_writer(self.sock.fileno(), self._writable)
            else:
                self._loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        try:
            data, fds = _recv(self.sock)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, WireError):
            self.close()
            return
        if not data and not fds:
            self.close()
            return
        try:
            received = self._inbox.take(data, fds)
        except WireError:
            self.close()
            return
        for message, its_fds in received:
            if self.closed:
                for fd in its_fds:
                    os.close(fd)
                continue
            try:
                self._on_message(message, its_fds)
            except Exception as exc:  # the messages after it are still handled, in order
                log.warning("a %.40r message was not handled: %.200s", message["type"], exc)

    async def drain(self, timeout: float) -> None:
        """Wait until everything queued is sent (or `timeout` seconds)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._drained.wait()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self.sock.fileno())
            if self._writing:
                self._loop.remove_writer(self.sock.fileno())
        for _, fds in self._out:
            for fd in fds:
                os.close(fd)
        self._out.clear()
        self._drained.set()
        self._inbox.close()
        self.sock.close()
        self._on_close()
