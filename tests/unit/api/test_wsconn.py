"""The bounded WebSocket protocol (api/wsconn.py) on a fake transport: bytes in, the app's
queue and the bytes written out, no network."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.uri import parse_uri

from tests.conftest import UNIT
from vibetunnel.api import wsconn
from vibetunnel.api.wsconn import FEED, PONG_BACKLOG, BoundedWebSocketProtocol

DEADLINE = 5 * UNIT


class FakeTransport(asyncio.Transport):
    """Collects writes; `backlog` is what it reports as unsent."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.backlog = 0
        self.reading = True
        self.closing = False
        self.aborted = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True
        self.aborted.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 4020)}.get(name)


class Peer:
    """The client side: a sans-I/O websockets client whose bytes go straight to the server."""

    def __init__(self, server: BoundedWebSocketProtocol) -> None:
        self.server = server
        self.client = ClientProtocol(parse_uri("ws://127.0.0.1:4020/ws"))

    def handshake(self, transport: FakeTransport) -> None:
        self.client.send_request(self.client.connect())
        self.flush()

    def flush(self) -> None:
        self.server.data_received(b"".join(self.client.data_to_send()))

    def received(self, transport: FakeTransport) -> list[Frame]:
        self.client.receive_data(bytes(transport.written))
        transport.written.clear()
        return [e for e in self.client.events_received() if isinstance(e, Frame)]


App = Callable[[Any, Any, Any], Any]


@pytest.fixture
async def connect() -> AsyncIterator[
    Callable[[App], tuple[BoundedWebSocketProtocol, FakeTransport, Peer]]
]:
    made: list[BoundedWebSocketProtocol] = []
    state = ServerState()

    def make(app: App) -> tuple[BoundedWebSocketProtocol, FakeTransport, Peer]:
        config = Config(app=app, log_config=None)
        config.load()
        protocol = BoundedWebSocketProtocol(config=config, server_state=state, app_state={})
        transport = FakeTransport()
        protocol.connection_made(transport)
        made.append(protocol)
        peer = Peer(protocol)
        peer.handshake(transport)
        return protocol, transport, peer

    yield make
    for protocol in made:
        if not protocol.disconnected:
            protocol.connection_lost(None)
    if state.tasks:  # every app returns by itself: none is left running
        _, pending = await asyncio.wait(state.tasks, timeout=DEADLINE)
        assert not pending


async def accept_then(hold: asyncio.Event, received: list[Any] | None = None) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await hold.wait()
        while received is not None:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return

    return app


async def settle(check: Callable[[], object]) -> None:
    async with asyncio.timeout(DEADLINE):
        while not check():
            await asyncio.sleep(0.001)


async def test_a_burst_of_tiny_messages_is_parsed_as_the_app_takes_them(connect: Any) -> None:
    hold = asyncio.Event()
    received: list[Any] = []
    protocol, transport, peer = connect(await accept_then(hold, received))
    await settle(lambda: protocol.handshake_complete)
    peer.received(transport)  # the handshake answer
    ping = json.dumps({"type": "ping"}).encode()
    for _ in range(20_000):
        peer.client.send_text(ping)
    peer.flush()  # some 400 KiB in one read
    # Parsed at once, that was 20,000 queued events; now at most one FEED's worth.
    assert protocol.queue.qsize() <= FEED // len(ping) + 1
    assert not transport.reading
    hold.set()
    await settle(lambda: len(received) == 20_000)
    assert transport.reading
    assert all(m == {"type": "websocket.receive", "text": ping.decode()} for m in received)


async def test_what_came_before_the_peer_left_reaches_the_app(connect: Any) -> None:
    hold = asyncio.Event()
    received: list[Any] = []
    protocol, transport, peer = connect(await accept_then(hold, received))
    await settle(lambda: protocol.handshake_complete)
    peer.received(transport)
    for i in range(2_000):
        peer.client.send_text(f"message {i}".encode())
    peer.flush()
    protocol.connection_lost(None)
    hold.set()
    await settle(lambda: received and received[-1]["type"] == "websocket.disconnect")
    assert [m.get("text") for m in received[:-1]] == [f"message {i}" for i in range(2_000)]


async def test_pongs_are_dropped_while_the_peer_reads_nothing(connect: Any) -> None:
    hold = asyncio.Event()
    protocol, transport, peer = connect(await accept_then(hold))
    await settle(lambda: protocol.handshake_complete)
    peer.received(transport)  # the handshake answer
    peer.client.send_ping(b"1")
    peer.flush()
    assert [f.data for f in peer.received(transport)] == [b"1"]  # answered
    transport.backlog = PONG_BACKLOG + 1
    peer.client.send_ping(b"2")
    peer.flush()
    assert transport.written == b""  # dropped
    transport.backlog = 0
    peer.client.send_ping(b"3")
    peer.flush()
    assert [f.data for f in peer.received(transport)] == [b"3"]
    hold.set()


async def test_a_close_the_peer_never_reads_drops_the_connection(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wsconn, "CLOSE_WAIT", 0.05 * UNIT)
    outcome: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        protocol.pause_writing()  # the write buffer is full: the peer reads nothing
        try:
            await send({"type": "websocket.close", "code": 1001, "reason": ""})
        except OSError as exc:
            outcome.append(exc)

    protocol, transport, peer = connect(app)
    await asyncio.wait_for(transport.aborted.wait(), DEADLINE)
    await settle(lambda: outcome)


async def test_a_connection_left_open_after_the_app_is_reset(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wsconn, "LINGER", 0.05 * UNIT)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        # The peer never answers the close, nor reads: uvicorn's close would wait forever.

    protocol, transport, peer = connect(app)
    await asyncio.wait_for(transport.aborted.wait(), DEADLINE)


async def test_nothing_is_parsed_after_a_protocol_error(connect: Any) -> None:
    hold = asyncio.Event()
    protocol, transport, peer = connect(await accept_then(hold))
    await settle(lambda: protocol.handshake_complete)
    peer.received(transport)
    for _ in range(1000):
        peer.client.send_text(b'{"type":"ping"}')
    # An unmasked frame (a server's frame, never a client's) first: a protocol error.
    protocol.data_received(b"\x81\x02hi" + b"".join(peer.client.data_to_send()))
    assert protocol.conn.parser_exc is not None and transport.closing
    assert not protocol._unparsed  # dropped, not parsed after the error
    hold.set()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_binary_message_is_what_websockets_frames(size: int) -> None:
    from websockets.frames import Opcode

    from vibetunnel.api.wsconn import binary_message

    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    expected = Frame(Opcode.BINARY, data).serialize(mask=False, extensions=[])
    assert binary_message(data) == expected


async def test_text_goes_to_the_handler_in_order_and_what_it_declines_to_the_queue(
    connect: Any,
) -> None:
    hold = asyncio.Event()
    received: list[Any] = []
    protocol, transport, peer = connect(await accept_then(hold, received))
    await settle(lambda: protocol.handshake_complete)
    peer.received(transport)
    handled: list[str] = []

    def on_text(text: str) -> bool:
        if text.startswith("no"):
            return False
        handled.append(text)
        return True

    protocol.on_text = on_text
    for text in ("a", "b", "no-1", "c", "d"):
        peer.client.send_text(text.encode())
    peer.flush()
    # "c" and "d" came after a message still queued: they wait their turn behind it.
    assert handled == ["a", "b"]
    hold.set()
    await settle(lambda: len(received) == 3)
    assert [m["text"] for m in received] == ["no-1", "c", "d"]
    peer.client.send_text(b"e")  # the queue is empty again: straight to the handler
    peer.flush()
    assert handled == ["a", "b", "e"]
    protocol.on_text = None
    peer.client.send_text(b"f")
    peer.flush()
    await settle(lambda: len(received) == 4)
    assert received[-1]["text"] == "f"


async def test_a_whole_text_frame_read_alone_skips_the_parser_which_stays_in_step(
    connect: Any,
) -> None:
    hold = asyncio.Event()
    protocol, transport, peer = connect(await accept_then(hold))
    await settle(lambda: protocol.handshake_complete)
    peer.received(transport)
    handled: list[str] = []
    protocol.on_text = lambda text: handled.append(text) is None
    parsed: list[bytes] = []
    receive_data = protocol.conn.receive_data

    def spy(data: bytes) -> None:
        parsed.append(data)
        receive_data(data)

    protocol.conn.receive_data = spy  # type: ignore[method-assign]
    for text in ("a", "é" * 60, '{"type":"input","data":"x"}'):
        peer.client.send_text(text.encode())
        peer.flush()
    assert handled == ["a", "é" * 60, '{"type":"input","data":"x"}']
    assert parsed == []  # none went through websockets' parser
    # A frame read in two halves takes the parser, which then leaves nothing behind.
    peer.client.send_text(b"split")
    data = b"".join(peer.client.data_to_send())
    protocol.data_received(data[:3])
    assert handled[-1] != "split"
    protocol.data_received(data[3:])
    assert handled[-1] == "split" and len(parsed) == 2
    peer.client.send_text(b"fast again")
    peer.flush()
    assert handled[-1] == "fast again" and len(parsed) == 2
    # Mid-message (a first fragment read), a whole text frame is the parser's to refuse.
    peer.client.send_text(b"part", fin=False)
    peer.flush()
    protocol.data_received(bytes([0x81, 0x81, 1, 2, 3, 4, ord("z") ^ 1]))
    assert protocol.conn.parser_exc is not None and transport.closing
    assert "z" not in handled
    hold.set()


async def test_text_that_is_not_utf8_is_never_handed_to_the_handler(connect: Any) -> None:
    hold = asyncio.Event()
    protocol, transport, peer = connect(await accept_then(hold, []))
    await settle(lambda: protocol.handshake_complete)
    handled: list[str] = []
    protocol.on_text = lambda text: handled.append(text) is None
    mask = b"\x00\x00\x00\x00"
    protocol.data_received(bytes([0x81, 0x82]) + mask + b"\xff\xfe")
    assert handled == []
    hold.set()
