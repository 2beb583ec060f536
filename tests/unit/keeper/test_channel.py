"""Keeper messages over a real Unix socket pair, with real descriptors (SCM_RIGHTS)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.aio import debug_loop, until  # noqa: F401 (an autouse fixture)
from tests.conftest import UNIT
from vibetunnel.keeper.channel import Channel, Inbox, Message, recv_messages, send_message
from vibetunnel.keeper.wire import MAX_FDS, MAX_MESSAGE, WireError, encode

DEADLINE = 5 * UNIT


def open_fds() -> set[int]:
    """Descriptors open in this process (not the one listdir used for the listing)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.fstat(int(name))
        except OSError:
            continue
        fds.add(int(name))
    return fds


class End:
    """One Channel and what it received."""

    def __init__(self, sock: socket.socket, inbox: Inbox | None = None) -> None:
        self.got: list[tuple[Message, list[int]]] = []
        self.closes = 0
        self.channel = Channel(sock, self._message, self._closed, inbox)

    def _message(self, message: Message, fds: list[int]) -> None:
        self.got.append((message, fds))

    def _closed(self) -> None:
        self.closes += 1

    @property
    def messages(self) -> list[Message]:
        return [m for m, _ in self.got]

    def close(self) -> None:
        self.channel.close()
        for _, fds in self.got:
            for fd in fds:
                os.close(fd)
        self.got.clear()


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        yield a, b


@pytest.fixture
async def ends(pair: tuple[socket.socket, socket.socket]) -> AsyncIterator[tuple[End, End]]:
    a, b = End(pair[0]), End(pair[1])
    yield a, b
    a.close()
    b.close()


async def test_messages_both_ways_in_order(ends: tuple[End, End]) -> None:
    a, b = ends
    for n in range(100):
        a.channel.send({"type": "exited", "id": f"s{n}", "code": n})
    b.channel.send({"type": "bye"})
    await until(lambda: len(b.got) == 100 and a.got, "the messages")
    assert b.messages == [{"type": "exited", "id": f"s{n}", "code": n} for n in range(100)]
    assert a.got == [({"type": "bye"}, [])]


async def test_a_message_larger_than_the_socket_buffer(ends: tuple[End, End]) -> None:
    a, b = ends
    screen = "line €\r\n" * 500_000  # about 5 MB: many partial sends, many reads
    a.channel.send({"type": "screen", "id": "s", "data": screen})
    a.channel.send({"type": "bye"})
    await until(lambda: len(b.got) == 2, "both messages")
    await a.channel.drain(DEADLINE)
    assert b.messages == [{"type": "screen", "id": "s", "data": screen}, {"type": "bye"}]


async def test_a_descriptor_crosses_and_works(ends: tuple[End, End], pipe: tuple[int, int]) -> None:
    a, b = ends
    r, w = pipe
    before = open_fds()
    a.channel.send({"type": "spawned", "pid": 1}, [r])
    await until(lambda: b.got, "the message")
    await a.channel.drain(DEADLINE)
    [(message, [fd])] = b.got
    assert message == {"type": "spawned", "pid": 1, "fds": 1}
    assert fd != r and not os.get_inheritable(fd)
    # The sender's duplicate is closed once sent: only the received descriptor is new.
    assert open_fds() - before == {fd}
    os.write(w, b"through the socket")
    assert os.read(fd, 100) == b"through the socket"
    # The sender's own descriptor is still open and still reads the pipe.
    os.write(w, b"still mine")
    assert os.read(r, 100) == b"still mine"


async def test_descriptors_go_with_their_own_messages(ends: tuple[End, End]) -> None:
    a, b = ends
    pipes = [os.pipe() for _ in range(3)]
    try:
        a.channel.send({"type": "one"}, [pipes[0][0]])
        a.channel.send({"type": "none"})
        a.channel.send({"type": "two"}, [pipes[1][0], pipes[2][0]])
        await until(lambda: len(b.got) == 3, "three messages")
        assert [(m["type"], len(fds)) for m, fds in b.got] == [("one", 1), ("none", 0), ("two", 2)]
        received = b.got[0][1] + b.got[2][1]
        for n, (_, w) in enumerate(pipes):
            os.write(w, f"pipe {n}".encode())
        assert [os.read(fd, 100) for fd in received] == [b"pipe 0", b"pipe 1", b"pipe 2"]
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)


async def test_descriptors_promised_that_never_came_close_the_channel(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = pair
    end = End(receiver)
    try:
        sender.sendall(encode({"type": "spawned", "fds": 1}))  # no SCM_RIGHTS with it
        await until(lambda: end.closes, "the channel to close")
        assert end.channel.closed and end.got == []
        assert receiver.fileno() == -1
        end.channel.send({"type": "ignored"})  # a closed channel drops what it is given
        end.channel.close()
        assert end.closes == 1
    finally:
        end.close()


async def test_garbage_closes_the_channel(pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    end = End(receiver)
    try:
        sender.sendall(b"\x00\x00\x00\x05hello")
        await until(lambda: end.closes, "the channel to close")
        assert end.got == []
    finally:
        end.close()


async def test_peer_closing_closes_the_channel(pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    end = End(receiver)
    try:
        sender.sendall(encode({"type": "last"}))
        sender.close()
        await until(lambda: end.closes, "the channel to close")
        assert end.messages == [{"type": "last"}]
    finally:
        end.close()


async def test_close_drops_queued_descriptors(
    pair: tuple[socket.socket, socket.socket], pipe: tuple[int, int]
) -> None:
    sender, _receiver = pair
    end = End(sender)
    before = open_fds()
    # Fill the socket until sends queue (nobody reads the other end); then one more.
    while not end.channel._out:
        end.channel.send({"type": "screen", "data": "x" * 65536})
    end.channel.send({"type": "session"}, [pipe[0]])
    assert len(open_fds() - before) == 1  # the queued duplicate
    end.close()
    assert open_fds() - before == set()
    assert end.closes == 1
    await end.channel.drain(DEADLINE)  # returns at once: nothing is left to send


def test_blocking_send_and_receive_with_a_descriptor(
    pair: tuple[socket.socket, socket.socket], pipe: tuple[int, int]
) -> None:
    a, b = pair
    r, w = pipe
    send_message(a, {"type": "welcome", "pid": 1})
    send_message(a, {"type": "session", "id": "s"}, [r])
    send_message(a, {"type": "ready"})
    got = recv_messages(b, lambda m: m["type"] == "ready", DEADLINE)
    assert [(m, len(fds)) for m, fds in got] == [
        ({"type": "welcome", "pid": 1}, 0),
        ({"type": "session", "id": "s", "fds": 1}, 1),
        ({"type": "ready"}, 0),
    ]
    fd = got[1][1][0]
    try:
        os.write(w, b"kept")
        assert os.read(fd, 10) == b"kept"
    finally:
        os.close(fd)
    assert os.fstat(r)  # the sender's stays open


def test_blocking_receive_times_out(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    send_message(a, {"type": "welcome"})  # never the one awaited
    timeout = 0.2 * UNIT
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        recv_messages(b, lambda m: m["type"] == "ready", timeout)
    assert timeout <= time.monotonic() - start < timeout + DEADLINE


def test_blocking_receive_sees_the_peer_close(
    pair: tuple[socket.socket, socket.socket], pipe: tuple[int, int]
) -> None:
    a, b = pair
    before = open_fds()
    send_message(a, {"type": "session"}, [pipe[0]])
    a.close()
    with pytest.raises(ConnectionError):
        recv_messages(b, lambda m: m["type"] == "ready", DEADLINE)
    assert open_fds() - before == set()  # what it got before the close is closed again


def test_blocking_receive_of_a_broken_promise(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.sendall(encode({"type": "session", "fds": 2}))
    with pytest.raises(WireError, match="promised"):
        recv_messages(b, lambda m: True, DEADLINE)


def test_blocking_receive_of_too_many_descriptors(
    pair: tuple[socket.socket, socket.socket], pipe: tuple[int, int]
) -> None:
    a, b = pair
    send_message(a, {"type": "session"}, [pipe[0]] * (MAX_FDS + 1))
    before = open_fds()
    with pytest.raises(WireError, match="too many descriptors"):
        recv_messages(b, lambda m: True, DEADLINE)
    assert open_fds() == before  # those that did come were closed


async def test_a_message_too_big_to_send_leaves_no_descriptor(
    ends: tuple[End, End], pipe: tuple[int, int]
) -> None:
    a, _ = ends
    before = open_fds()
    with pytest.raises(WireError, match="over"):
        a.channel.send({"type": "screen", "data": "x" * MAX_MESSAGE}, [pipe[0]])
    assert open_fds() == before


async def test_a_message_right_after_the_awaited_one_is_not_lost(
    pair: tuple[socket.socket, socket.socket], pipe: tuple[int, int]
) -> None:
    # As `attach` then `KeeperLink.take`: a program may exit right after the keeper's ready.
    # What came with ready is returned; what came after goes on in a Channel on that inbox.
    a, b = pair
    send_message(a, {"type": "ready"})
    send_message(a, {"type": "spawned", "id": "s"}, [pipe[0]])
    a.close()  # then the end of the stream: nothing is waited for in vain
    inbox = Inbox()
    got = recv_messages(b, lambda m: m["type"] == "ready", DEADLINE, inbox)
    assert got[0] == ({"type": "ready"}, [])
    end = End(b, inbox)
    try:
        await until(lambda: end.closes, "the end of the stream")
        after = got[1:] + end.got
        assert [m for m, _ in after] == [{"type": "spawned", "id": "s", "fds": 1}]
        ((_, fds),) = after
        assert len(fds) == 1
        os.write(pipe[1], b"x")
        assert os.read(fds[0], 1) == b"x"  # the descriptor came through, working
    finally:
        for _, fds in got[1:]:
            for fd in fds:
                os.close(fd)
        end.close()
