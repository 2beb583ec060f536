"""The per-viewer sender (`Client`) on a real event loop with fake send functions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from tests.conftest import UNIT
from vibetunnel.errors import ProtocolError
from vibetunnel.protocol import frames, messages
from vibetunnel.protocol.aggregate import FlushPolicy
from vibetunnel.protocol.flow import ACKED_LAG, FRAME, INPUT_LAG, RESYNC_BYTES, WINDOW
from vibetunnel.pty.client import BACKLOG_LIMIT, RESYNC_PREFIX, TEXTS_PENDING, Client, Ending

DEADLINE = 5 * UNIT


class Transport:
    """Records what a Client sends; `gate` (when set) blocks every binary send until opened."""

    def __init__(self) -> None:
        self.sent: list[bytes | str] = []
        self.gate: asyncio.Event | None = None
        self.blocked = asyncio.Event()  # set while a send is waiting on the gate
        self.changed = asyncio.Event()

    async def send_bytes(self, data: bytes) -> None:
        if self.gate is not None and not self.gate.is_set():
            self.blocked.set()
            await self.gate.wait()
        self.sent.append(data)
        self.changed.set()

    async def send_text(self, text: str) -> None:
        self.sent.append(text)
        self.changed.set()

    @property
    def frames(self) -> list[bytes]:
        out = []
        for item in self.sent:
            if isinstance(item, bytes):
                data, rest = frames.decode(item)
                assert rest == b"", "exactly one frame per message"
                out.append(data)
        return out

    @property
    def output(self) -> bytes:
        return b"".join(self.frames)

    @property
    def texts(self) -> list[str]:
        return [item for item in self.sent if isinstance(item, str)]

    async def until(self, check: Callable[[], object], what: str) -> None:
        async def loop() -> None:
            while not check():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), DEADLINE)
        except TimeoutError:
            sent = repr(self.sent)[:300]
            raise AssertionError(f"timed out waiting for {what}; sent: {sent}") from None


@pytest.fixture
def transport() -> Transport:
    return Transport()


Start = Callable[..., tuple[Client, "asyncio.Task[Ending]"]]


@pytest.fixture
async def start(transport: Transport) -> AsyncIterator[Start]:
    tasks: list[asyncio.Task[Ending]] = []
    screen: list[bytes] = [b""]

    def make(
        snapshot: Callable[..., bytes] | None = None, **kwargs: object
    ) -> tuple[Client, asyncio.Task[Ending]]:
        client = Client(
            transport.send_bytes,
            transport.send_text,
            snapshot or (lambda limit=None: screen[0]),
            **kwargs,  # type: ignore[arg-type]
        )
        task = asyncio.create_task(client.run())
        tasks.append(task)
        return client, task

    yield make
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def finish(task: asyncio.Task[Ending]) -> Ending:
    return await asyncio.wait_for(task, DEADLINE)


async def test_first_feed_goes_out_at_once_as_one_frame(transport: Transport, start: Start) -> None:
    client, _ = start()
    await asyncio.sleep(0)  # let the sender reach its wait
    client.feed("hello €".encode())
    await transport.until(lambda: transport.sent, "the first frame")
    assert transport.sent == [frames.encode("hello €".encode())]
    assert frames.decode(transport.sent[0]) == ("hello €".encode(), b"")


async def test_feed_before_run_is_sent(transport: Transport, start: Start) -> None:
    client = Client(transport.send_bytes, transport.send_text, lambda: b"")
    client.feed(b"early")
    task = asyncio.create_task(client.run())
    try:
        await transport.until(lambda: transport.frames == [b"early"], "the early frame")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_second_chunk_within_interval_waits_then_one_frame(
    transport: Transport, start: Start
) -> None:
    interval = 0.2 * UNIT
    client, _ = start(policy=FlushPolicy(interval=interval))
    loop = asyncio.get_running_loop()
    client.feed(b"a")
    await transport.until(lambda: len(transport.frames) == 1, "first frame")
    t0 = loop.time()
    client.feed(b"b")
    client.feed(b"c")
    await transport.until(lambda: len(transport.frames) == 2, "second frame")
    assert loop.time() - t0 >= interval * 0.5  # it waited for the timer
    assert transport.frames == [b"a", b"bc"]  # and the two chunks went as one frame


async def test_note_input_makes_output_go_at_once(transport: Transport, start: Start) -> None:
    # With a huge interval, only input (or a full frame) can make output go.
    client, _ = start(policy=FlushPolicy(interval=3600))
    client.feed(b"prompt$ ")
    await transport.until(lambda: len(transport.frames) == 1, "first frame")
    for n, key in enumerate([b"l", b"s", b"\r\n"], start=2):
        client.note_input()
        client.feed(key)
        await transport.until(lambda n=n: len(transport.frames) == n, f"echo {key!r}")
    assert transport.frames == [b"prompt$ ", b"l", b"s", b"\r\n"]
    # Without input, the next chunk waits for the (hour-long) timer.
    client.feed(b"output")
    client.send_text(messages.PONG)  # wakes the sender; the output must still wait
    await transport.until(lambda: transport.texts, "pong")
    assert len(transport.frames) == 4


async def test_full_frame_goes_at_once(transport: Transport, start: Start) -> None:
    client, _ = start(policy=FlushPolicy(interval=3600, max_frame=1000))
    client.feed(b"x")
    await transport.until(lambda: len(transport.frames) == 1, "first frame")
    client.feed(b"y" * 999)
    client.feed(b"z" * 1)  # reaches max_frame
    await transport.until(lambda: len(transport.frames) == 2, "a full frame")
    assert transport.frames[1] == b"y" * 999 + b"z"


async def test_pong_is_sent(transport: Transport, start: Start) -> None:
    client, _ = start()
    client.send_text(messages.PONG)
    client.send_text(messages.PONG)
    await transport.until(lambda: len(transport.texts) == 2, "two pongs")
    assert [json.loads(t) for t in transport.texts] == [{"type": "pong"}] * 2


async def test_session_exited_flushes_then_exit_message(transport: Transport, start: Start) -> None:
    client, task = start(policy=FlushPolicy(interval=3600))
    client.feed(b"first")
    await transport.until(lambda: transport.frames, "first frame")
    client.feed(b"last words")  # held by the timer...
    client.session_exited(42)  # ...but the exit sends it at once
    assert await finish(task) is Ending.EXITED
    assert transport.sent == [
        frames.encode(b"first"),
        frames.encode(b"last words"),
        '{"type": "exit", "code": 42}',
    ]
    assert json.loads(transport.sent[-1]) == {"type": "exit", "code": 42}


async def test_session_exited_with_nothing_pending(transport: Transport, start: Start) -> None:
    client, task = start()
    client.session_exited(0)
    client.session_exited(1)  # only the first exit counts
    assert await finish(task) is Ending.EXITED
    assert [json.loads(t) for t in transport.sent] == [{"type": "exit", "code": 0}]  # type: ignore[arg-type]
    client.feed(b"after exit")  # ignored
    assert client.pending == b""


async def test_shutdown(transport: Transport, start: Start) -> None:
    client, task = start(policy=FlushPolicy(interval=3600))
    client.feed(b"a")
    await transport.until(lambda: transport.frames, "first frame")
    client.feed(b"dropped")
    client.shutdown()
    assert await finish(task) is Ending.SHUTDOWN
    assert transport.frames == [b"a"]
    client.feed(b"more")
    assert client.pending == b""


async def test_shutdown_after_exit_wins(transport: Transport, start: Start) -> None:
    gate = transport.gate = asyncio.Event()
    client, task = start()
    client.feed(b"a")
    await asyncio.wait_for(transport.blocked.wait(), DEADLINE)
    client.feed(b"b")
    client.session_exited(0)
    client.shutdown()
    gate.set()
    assert await finish(task) is Ending.SHUTDOWN
    assert transport.sent == [frames.encode(b"a")]


async def test_slow_client_is_resynced(transport: Transport, start: Start) -> None:
    screen = [b"\x1b[2Jcurrent screen \xe2\x82\xac"]
    gate = transport.gate = asyncio.Event()
    client, task = start(snapshot=lambda: screen[0], backlog_limit=1000)
    client.feed(b"first")
    await asyncio.wait_for(transport.blocked.wait(), DEADLINE)  # stuck sending "first"
    for _ in range(20):
        client.feed(b"d" * 50)  # exactly the backlog limit: still kept
    assert client.resyncs == 0
    client.feed(b"d")  # one byte over: the backlog goes, the screen comes instead
    assert client.resyncs == 1
    assert client.pending == RESYNC_PREFIX + screen[0]
    client.feed(b" live")
    gate.set()
    await transport.until(lambda: transport.output.endswith(b" live"), "the resync")
    assert transport.frames == [b"first", RESYNC_PREFIX + screen[0] + b" live"]
    assert b"d" not in transport.output
    assert client.resyncs == 1
    client.session_exited(0)
    assert await finish(task) is Ending.EXITED


async def test_resync_repeats_while_still_behind(transport: Transport, start: Start) -> None:
    gate = transport.gate = asyncio.Event()
    client, _ = start(snapshot=lambda: b"S", backlog_limit=100)
    client.feed(b"x")
    await asyncio.wait_for(transport.blocked.wait(), DEADLINE)
    for _ in range(10):
        client.feed(b"y" * 60)
    assert client.resyncs == 5
    assert len(client.pending) <= 100
    gate.set()
    await transport.until(lambda: len(transport.frames) == 2, "resync frame")
    assert transport.frames[1] == RESYNC_PREFIX + b"S"


def test_defaults() -> None:
    async def nothing(_: object) -> None: ...

    client = Client(nothing, nothing, lambda: b"")
    assert client.backlog_limit == BACKLOG_LIMIT == 4 * 1024 * 1024
    assert client.policy.max_frame == 64 * 1024
    assert RESYNC_PREFIX == b"\x1b[H\x1b[2J\x1b[3J"
    assert Ending.EXITED.value == 1000 and Ending.SHUTDOWN.value == 1001


@pytest.mark.parametrize("max_frame", [4, 5, 7, 1000, 64 * 1024])
async def test_frames_are_bounded_and_whole_utf8(
    transport: Transport, start: Start, max_frame: int
) -> None:
    text = ("a€😀é中\n" * 20_000).encode()
    client, task = start(policy=FlushPolicy(max_frame=max_frame))
    # Whole characters only, as the session feeds them: reads of about 4 KB.
    pos = 0
    while pos < len(text):
        cut = pos + frames.split_utf8(text[pos:], 4093)
        client.feed(text[pos:cut])
        pos = cut
        if pos % 3 == 0:
            await asyncio.sleep(0)
    client.session_exited(0)
    assert await finish(task) is Ending.EXITED
    assert transport.output == text
    for data in transport.frames:
        assert 0 < len(data) <= max_frame
        data.decode("utf-8")


async def test_bulk_output_fills_frames(transport: Transport, start: Start) -> None:
    client, task = start(policy=FlushPolicy(interval=3600, max_frame=1000))
    client.feed(b"x")
    await transport.until(lambda: transport.frames, "first frame")
    for _ in range(10):
        client.feed(b"y" * 1000)
    await transport.until(lambda: len(transport.output) >= 10_001 - 1000, "full frames")
    assert all(len(f) == 1000 for f in transport.frames[1:])
    client.session_exited(0)
    assert await finish(task) is Ending.EXITED
    assert transport.output == b"x" + b"y" * 10_000


async def test_send_error_propagates(start: Start, transport: Transport) -> None:
    async def broken(_: bytes) -> None:
        raise ConnectionResetError("gone")

    client = Client(broken, transport.send_text, lambda: b"")
    client.feed(b"a")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(client.run(), DEADLINE)


async def test_pongs_for_a_client_that_does_not_read_are_bounded(
    transport: Transport, start: Start
) -> None:
    # A client that pings and never reads: its sender is stuck on a send; pongs pile up to
    # TEXTS_PENDING, the rest are dropped, and it gets pongs again once it reads.
    transport.gate = asyncio.Event()
    client, _ = start()
    client.feed(b"output the client never reads")
    await asyncio.wait_for(transport.blocked.wait(), DEADLINE)
    accepted = sum(client.send_text(messages.PONG) for _ in range(10_000))
    assert accepted == len(client.texts) == TEXTS_PENDING
    transport.gate.set()
    await transport.until(lambda: len(transport.texts) == TEXTS_PENDING, "the pending pongs")
    assert client.send_text(messages.PONG)
    await transport.until(lambda: len(transport.texts) == TEXTS_PENDING + 1, "a new pong")


class FakeWire:
    """A socket written synchronously (api/wsconn.py's `can_send`/`send_frame`)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.open = True

    def can_send(self) -> bool:
        return self.open

    def send_frame(self, frame: bytes) -> None:
        assert self.open
        self.transport.sent.append(frame)
        self.transport.changed.set()


async def test_due_output_is_written_by_feed_while_the_sender_is_parked(
    transport: Transport, start: Start
) -> None:
    wire = FakeWire(transport)
    client, _ = start(wire=wire)
    await asyncio.sleep(0)  # the sender parks
    client.feed(b"now")
    # Written within feed: no task had to run.
    assert transport.frames == [b"now"]
    client.feed(b"later")  # within the interval of the last send: the sender's, on a tick
    assert transport.frames == [b"now"]
    await transport.until(lambda: transport.frames == [b"now", b"later"], "the tick's frame")


async def test_a_full_socket_leaves_output_to_the_sender(
    transport: Transport, start: Start
) -> None:
    wire = FakeWire(transport)
    wire.open = False
    client, _ = start(wire=wire)
    await asyncio.sleep(0)
    client.feed(b"held")
    assert transport.sent == []
    # The sender falls back to its send coroutine while the socket is full.
    await transport.until(lambda: transport.frames == [b"held"], "the frame, sent by the task")


async def test_echo_after_input_goes_out_at_once_through_the_wire(
    transport: Transport, start: Start
) -> None:
    wire = FakeWire(transport)
    client, _ = start(wire=wire)
    await asyncio.sleep(0)
    client.feed(b"a")
    client.note_input()
    client.feed(b"b")  # the echo: due at once though a frame just went out
    assert transport.frames == [b"a", b"b"]


async def test_pending_pongs_keep_output_behind_them(transport: Transport, start: Start) -> None:
    wire = FakeWire(transport)
    client, _ = start(wire=wire)
    await asyncio.sleep(0)
    client.send_text(messages.PONG)
    client.feed(b"after")
    assert transport.sent == []  # the sender goes first, in order
    await transport.until(lambda: len(transport.sent) == 2, "the pong, then the frame")
    assert transport.sent[0] == messages.PONG
    assert transport.frames == [b"after"]


async def test_clients_in_step_share_one_frame_object(transport: Transport, start: Start) -> None:
    shared = frames.SharedFrames()
    wire = FakeWire(transport)
    a, _ = start(wire=wire, shared=shared)
    b, _ = start(wire=wire, shared=shared)
    await asyncio.sleep(0)
    a.feed("ligne é".encode())
    b.feed("ligne é".encode())
    assert len(transport.sent) == 2
    assert transport.sent[0] is transport.sent[1]
    assert transport.frames == ["ligne é".encode()] * 2


def test_shared_frames_cut_like_take() -> None:
    shared = frames.SharedFrames()
    data = ("é" * 10).encode()
    one, two = bytearray(data), bytearray(data)
    got = shared.take(one, 5)
    assert got == frames.take(two, 5)
    assert one == two
    # The same pending bytes again: the same frame object.
    assert shared.take(bytearray(b"xy"), 5) is shared.take(bytearray(b"xy"), 5)
    assert shared.take(bytearray(b"xz"), 5) == frames.encode(b"xz")


# -- flow control (protocol/flow.py) --------------------------------------------------------------


def data_bytes(transport: Transport) -> int:
    return sum(len(f) for f in transport.frames)


async def test_an_acking_client_has_at_most_the_window_in_flight(
    transport: Transport, start: Start
) -> None:
    client, _ = start()
    client.ack(0)
    client.feed(b"x" * (5 * WINDOW))
    await transport.until(lambda: data_bytes(transport) == WINDOW, "a window of output")
    await asyncio.sleep(0.05 * UNIT)  # nothing more comes without an ack
    assert data_bytes(transport) == WINDOW
    assert all(len(f) <= FRAME for f in transport.frames)
    client.ack(FRAME)
    await transport.until(lambda: data_bytes(transport) == WINDOW + FRAME, "one more frame")
    client.ack(WINDOW + FRAME)
    await transport.until(lambda: data_bytes(transport) == 2 * WINDOW + FRAME, "a window more")
    assert client.resyncs == 0
    assert len(client.pending) == 5 * WINDOW - 2 * WINDOW - FRAME


async def test_a_window_open_by_less_than_a_character_waits(
    transport: Transport, start: Start
) -> None:
    client, _ = start()
    client.ack(0)
    client.feed(b"x" * (WINDOW - 2) + "€uro".encode())
    await transport.until(lambda: data_bytes(transport) == WINDOW - 2, "all but the euro")
    client.ack(1)  # room 3: less than a character may need, so nothing yet
    await asyncio.sleep(0.05 * UNIT)
    assert data_bytes(transport) == WINDOW - 2
    client.ack(2)  # room 4: the euro sign, whole, and the u
    await transport.until(lambda: data_bytes(transport) == WINDOW + 2, "the euro sign")
    assert transport.frames[-1] == "€u".encode()


async def test_an_acking_client_far_behind_is_resynced_with_the_end_of_the_screen(
    transport: Transport, start: Start
) -> None:
    asked: list[int | None] = []

    def screen(limit: int | None = None) -> bytes:
        asked.append(limit)
        return b"SCREEN"

    client, _ = start(snapshot=screen)
    client.ack(0)
    client.feed(b"x" * WINDOW)
    await transport.until(lambda: data_bytes(transport) == WINDOW, "a window of output")
    client.feed(b"x" * ACKED_LAG)  # held back: ACKED_LAG, not more
    assert client.resyncs == 0
    client.feed(b"y")
    assert client.resyncs == 1
    assert asked == [RESYNC_BYTES]
    assert bytes(client.pending) == RESYNC_PREFIX + b"SCREEN"
    client.ack(WINDOW)
    await transport.until(lambda: transport.output.endswith(b"SCREEN"), "the screen")


async def test_input_resyncs_an_acking_client_that_is_behind(
    transport: Transport, start: Start
) -> None:
    client, _ = start(snapshot=lambda limit=None: b"NOW")
    client.ack(0)
    client.feed(b"x" * WINDOW)
    await transport.until(lambda: data_bytes(transport) == WINDOW, "a window of output")
    client.feed(b"x" * INPUT_LAG)
    client.note_input()
    assert client.resyncs == 0  # INPUT_LAG held back: not more
    client.feed(b"x")
    client.note_input()
    assert client.resyncs == 1
    assert bytes(client.pending) == RESYNC_PREFIX + b"NOW"


async def test_input_does_not_resync_a_client_that_never_acks(
    transport: Transport, start: Start
) -> None:
    transport.gate = asyncio.Event()  # the socket takes nothing: everything stays pending
    client, _ = start()
    client.feed(b"x" * (2 * ACKED_LAG))
    await transport.until(lambda: transport.blocked.is_set(), "a blocked send")
    client.note_input()
    assert client.resyncs == 0


async def test_bad_acks_raise_and_leave_the_client_as_it_was(
    transport: Transport, start: Start
) -> None:
    client, _ = start()
    client.feed(b"hello")
    await transport.until(lambda: transport.output == b"hello", "hello")
    with pytest.raises(ProtocolError, match="but 5 were sent"):
        client.ack(6)
    assert not client.flow.acking
    client.ack(5)
    with pytest.raises(ProtocolError, match="went back"):
        client.ack(4)
    assert client.flow.acked == 5


async def test_resync_frames_count_as_sent(transport: Transport, start: Start) -> None:
    client, _ = start(snapshot=lambda limit=None: b"S" * 100, backlog_limit=1000)
    client.feed(b"x" * 2000)  # over the backlog: a resync, before anything went out
    await transport.until(lambda: transport.output.endswith(b"S" * 100), "the screen")
    client.ack(len(RESYNC_PREFIX) + 100)  # every data byte the client got, resync included
    assert client.flow.in_flight == 0
