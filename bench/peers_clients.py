"""One client per protocol, and the loads, which see only a `Conn`: text in, terminal bytes out.

- ttyd 1.7.7 (src/protocol.c, src/server.h): subprotocol "tty"; the client's first message is
  JSON `{"AuthToken": "", "columns": C, "rows": R}`, which spawns the program; then input is
  b"0" + data, a resize b"1" + JSON. Server to client, the first byte says what follows:
  b"0" output, b"1" window title, b"2" preferences.
- terminado: JSON text both ways: ["stdin", data], ["set_size", rows, cols]; ["setup", {}],
  ["stdout", text], ["disconnect", 1].
- ours (docs/protocol.md): a session by POST /api/sessions, then its WebSocket: JSON input,
  binary frames 0xBF + 4-byte length + UTF-8 data.

Every client offers no compression (`compression=None`): ttyd accepts permessage-deflate when a
client offers it and has no flag to refuse it, so "deflate off" is the client's choice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import websockets

PROGRAMS: dict[str, list[str]] = {
    "bash": ["bash", "--norc", "--noprofile"],
    "cat": ["cat"],
    "ready": ["sh", "-c", "echo ready; exec cat"],
}
"""The programs the loads run: an interactive bash (throughput), `cat` (echo: the PTY echoes
each key), and `cat` after one line, the first output (the sessions load)."""

READY = b"ready\r\n"
COLS, ROWS = 80, 24
WS_OPTIONS: dict[str, Any] = {
    "compression": None,
    "max_size": None,
    "ping_interval": None,
    "open_timeout": 120,
}


class Conn(Protocol):
    async def send(self, text: str) -> None: ...

    async def output(self) -> bytes:
        """The next piece of terminal output (other messages are skipped)."""
        ...

    async def close(self) -> None: ...


class TtydConn:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, port: int, program: str) -> TtydConn:
        # ttyd runs `sh -c 'exec "$@"' peer` with -a (--url-arg): each arg= is appended.
        query = "&".join(f"arg={quote(a)}" for a in PROGRAMS[program])
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws?{query}", subprotocols=["tty"], **WS_OPTIONS
        )
        await ws.send(json.dumps({"AuthToken": "", "columns": COLS, "rows": ROWS}).encode())
        return cls(ws)

    async def send(self, text: str) -> None:
        await self.ws.send(b"0" + text.encode())

    async def output(self) -> bytes:
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, bytes) and msg[:1] == b"0":
                return msg[1:]

    async def close(self) -> None:
        await self.ws.close()


class TerminadoConn:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, port: int, program: str) -> TerminadoConn:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/{program}", **WS_OPTIONS)
        await ws.send(json.dumps(["set_size", ROWS, COLS]))
        return cls(ws)

    async def send(self, text: str) -> None:
        await self.ws.send(json.dumps(["stdin", text]))

    async def output(self) -> bytes:
        while True:
            msg = json.loads(await self.ws.recv())
            if msg[0] == "stdout":
                return str(msg[1]).encode()

    async def close(self) -> None:
        await self.ws.close()


class JsonPoster:
    """POSTs of JSON over at most `size` HTTP/1.1 keep-alive connections, nothing more.

    Not httpx: its connection pool matches every queued request against every connection
    at every event, O(requests x connections): 300 POSTs at once cost this one-process client
    2.5 s of CPU (cProfile: httpcore `_assign_requests_to_connections`), more than the server
    spent creating the sessions, and the sessions load measured the client. This costs a few
    ms for the 300.
    """

    IDLE = 2.0
    """Seconds a connection may idle before it is dropped: under uvicorn's 5 s keep-alive, so
    no request goes out on a connection the server is closing."""

    def __init__(self, base_url: str, size: int = 50) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def post(self, path: str, body: Any) -> Any:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        async with self._slots:
            while self._idle:
                reader, writer, since = self._idle.pop()
                if time.monotonic() - since < self.IDLE:
                    try:
                        return await self._exchange(reader, writer, head + data)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        writer.close()  # closed by the server meanwhile: a fresh one
                        continue
                writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            return await self._exchange(reader, writer, head + data)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> Any:
        writer.write(request)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        payload = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            writer.close()
        else:
            self._idle.append((reader, writer, time.monotonic()))
        if status >= 400:
            raise RuntimeError(f"POST: HTTP {status}: {payload[:200]!r}")
        return json.loads(payload)

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()


class OursConn:
    """Our protocol; with `acks` (a server that speaks flow control, protocol/flow.py), the
    client acks what it has read, as the web app acks what it has written: every ACK_BATCH
    bytes."""

    HEADER = 5
    ACK_BATCH = 16 * 1024

    def __init__(self, ws: Any, acks: bool) -> None:
        self.ws = ws
        self.acks = acks
        self.read = 0
        self.acked = 0

    @classmethod
    async def open(cls, api: JsonPoster, ws_url: str, program: str, acks: bool) -> OursConn:
        argv = PROGRAMS[program]
        body = {"command": argv[0], "args": argv[1:], "cols": COLS, "rows": ROWS}
        created = await api.post("/api/sessions", body)
        ws = await websockets.connect(f"{ws_url}/api/sessions/{created['id']}/ws", **WS_OPTIONS)
        if acks:
            await ws.send('{"type":"ack","bytes":0}')
        return cls(ws, acks)

    async def send(self, text: str) -> None:
        await self.ws.send(json.dumps({"type": "input", "data": text}))

    async def output(self) -> bytes:
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, bytes):
                if self.acks:
                    self.read += len(msg) - self.HEADER
                    if self.read - self.acked >= self.ACK_BATCH:
                        self.acked = self.read
                        await self.ws.send(f'{{"type":"ack","bytes":{self.read}}}')
                return msg[self.HEADER :]

    async def close(self) -> None:
        await self.ws.close()


# -- the loads ----------------------------------------------------------------------------------


class Opener(Protocol):
    async def __call__(self, program: str) -> Conn: ...


async def read_until(conn: Conn, marker: bytes) -> tuple[int, int]:
    """Read output until `marker` has arrived (across pieces too): (bytes, pieces) read."""
    total = pieces = 0
    tail = b""
    while True:
        piece = await conn.output()
        total += len(piece)
        pieces += 1
        seen = tail + piece
        if marker in seen:
            return total, pieces
        tail = seen[-(len(marker) - 1) :]


async def throughput(
    open_: Opener, lines: int, mark: Callable[[], None] = lambda: None
) -> tuple[int, int, float, float]:
    """`seq 1 LINES` typed into an interactive bash: (output bytes and messages at the client,
    seconds from the Enter key to the end marker's arrival, and the client's CPU seconds);
    `mark()` is called just before the Enter key and just after the end marker."""
    conn = await open_("bash")
    try:
        # The markers are computed by bash, so their echo as typed does not match them.
        await conn.send("echo READY$((1+1))\r")
        await read_until(conn, b"READY2")
        mark()
        cpu = time.process_time()
        start = time.perf_counter()
        await conn.send(f"seq 1 {lines}; echo END$((2+3))\r")
        total, pieces = await read_until(conn, b"END5")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        mark()
        return total, pieces, seconds, cpu
    finally:
        await conn.close()


async def echo(open_: Opener, samples: int, mark: Callable[[], None] = lambda: None) -> list[float]:
    """Seconds from sending one key to `cat` to receiving its echo, `samples` times (after one
    key unmeasured); `mark()` is called just before the first measured key and just after
    the last (the session's open is not between them)."""
    conn = await open_("cat")
    try:
        out = []
        for i in range(samples + 1):
            if i == 1:
                mark()
            t0 = time.perf_counter()
            await conn.send("a")
            await read_until(conn, b"a")
            if i:
                out.append(time.perf_counter() - t0)
        mark()
        return out
    finally:
        await conn.close()


async def sessions(
    open_: Opener, n: int, waves: int, mark: Callable[[], None] = lambda: None
) -> tuple[float, list[float]]:
    """Open `n` sessions at once: (seconds until every one has shown its first output, and the
    seconds from the write of one key to each session to that session's echo, in `waves` waves
    of a key to every session); `mark()` is called before the opening and after it."""

    async def one() -> Conn:
        conn = await open_("ready")
        await read_until(conn, READY)
        return conn

    mark()
    start = time.perf_counter()
    opened = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    open_s = time.perf_counter() - start
    mark()
    conns = [c for c in opened if not isinstance(c, BaseException)]
    try:
        if len(conns) < n:
            failed = next(c for c in opened if isinstance(c, BaseException))
            raise RuntimeError(f"{n - len(conns)} of {n} sessions failed to open: {failed!r}")
        latencies: list[float] = []
        for _ in range(waves):
            sent = [0.0] * n

            async def echoed(i: int, sent: list[float]) -> float:
                await read_until(conns[i], b"x")
                return time.perf_counter() - sent[i]

            waiting = [asyncio.create_task(echoed(i, sent)) for i in range(n)]
            await asyncio.sleep(0)
            for i, conn in enumerate(conns):
                sent[i] = time.perf_counter()
                await conn.send("x")
            latencies += await asyncio.gather(*waiting)
        return open_s, latencies
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
