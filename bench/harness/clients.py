"""One client per protocol, each a `loads.Conn`: text in, terminal bytes out.

- ttyd 1.7.7 (src/protocol.c, src/server.h): subprotocol "tty"; the client's first message is
  JSON `{"AuthToken": "", "columns": C, "rows": R}`, which spawns the program; then input is
  b"0" + data, a resize b"1" + JSON. Server to client, the first byte says what follows:
  b"0" output, b"1" window title, b"2" preferences.
- terminado: JSON text both ways: ["stdin", data], ["set_size", rows, cols]; ["setup", {}],
  ["stdout", text], ["disconnect", 1].
- ours (docs/protocol.md): a session by POST /api/sessions, then its WebSocket: JSON input,
  binary frames 0xBF + 4-byte length + UTF-8 data. With `acks` the client acks what it has
  read, as the web app acks what it has written (peers.py, against a server that speaks flow
  control); without, it is a client that never acks (bench.py and cluster.py, as their
  earlier figures were measured).

Every client offers no compression (`compression=None`): ttyd accepts permessage-deflate when a
client offers it and has no flag to refuse it, so "deflate off" is the client's choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

from .loads import PROGRAMS, Conn, Opener
from .servers import Listening, Server, Terminado, Ttyd

COLS, ROWS = 80, 24
WS_OPTIONS: dict[str, Any] = {
    "compression": None,
    "max_size": None,
    "ping_interval": None,
    "open_timeout": 120,
}


class WsConn:
    """A terminal over one WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def close(self) -> None:
        await self.ws.close()


class TtydConn(WsConn):
    @classmethod
    async def open(cls, ttyd: Ttyd, argv: list[str]) -> TtydConn:
        url = f"ws://127.0.0.1:{ttyd.port}/ws?{ttyd.query(argv)}"
        ws = await websockets.connect(url, subprotocols=[Subprotocol("tty")], **WS_OPTIONS)
        await ws.send(json.dumps({"AuthToken": "", "columns": COLS, "rows": ROWS}).encode())
        return cls(ws)

    async def send(self, text: str) -> None:
        await self.ws.send(b"0" + text.encode())

    async def output(self) -> bytes:
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, bytes) and msg[:1] == b"0":
                return msg[1:]


class TerminadoConn(WsConn):
    @classmethod
    async def open(cls, terminado: Terminado, program: str) -> TerminadoConn:
        ws = await websockets.connect(f"ws://127.0.0.1:{terminado.port}/{program}", **WS_OPTIONS)
        await ws.send(json.dumps(["set_size", ROWS, COLS]))
        return cls(ws)

    async def send(self, text: str) -> None:
        await self.ws.send(json.dumps(["stdin", text]))

    async def output(self) -> bytes:
        while True:
            msg = json.loads(await self.ws.recv())
            if msg[0] == "stdout":
                return str(msg[1]).encode()


class OursConn(WsConn):
    """The WebSocket of one session of ours; with `acks`, an ack every ACK_BATCH bytes read
    (from an ack of 0 at the open)."""

    HEADER = 5
    ACK_BATCH = 16 * 1024

    def __init__(self, ws: Any, acks: bool) -> None:
        super().__init__(ws)
        self.acks = acks
        self.read = 0
        self.acked = 0

    @classmethod
    async def connect(cls, ws_url: str, sid: str, acks: bool = False) -> OursConn:
        """The WebSocket of session `sid` on the server at `ws_url` (ws://host:port)."""
        ws = await websockets.connect(f"{ws_url}/api/sessions/{sid}/ws", **WS_OPTIONS)
        if acks:
            await ws.send('{"type":"ack","bytes":0}')
        return cls(ws, acks)

    async def send(self, text: str) -> None:
        await self.ws.send(json.dumps({"type": "input", "data": text}))

    async def _ack(self, msg: bytes) -> None:
        self.read += len(msg) - self.HEADER
        if self.acks and self.read - self.acked >= self.ACK_BATCH:
            self.acked = self.read
            await self.ws.send(f'{{"type":"ack","bytes":{self.read}}}')

    async def output(self) -> bytes:
        while True:
            msg = await self.ws.recv()
            if isinstance(msg, bytes):
                await self._ack(msg)
                return msg[self.HEADER :]

    async def run_to_exit(self, skip: int = 0) -> tuple[int, int, float]:
        """Enter (for a program that waits with `read _`), `skip` output messages not counted,
        then (output bytes, binary messages, seconds) until the exit message (or the close)."""
        await self.send("\n")
        for _ in range(skip):
            await self.output()
        start = time.perf_counter()
        total = count = 0
        async for msg in self.ws:
            if isinstance(msg, bytes):
                await self._ack(msg)
                total += len(msg) - self.HEADER
                count += 1
            elif json.loads(msg).get("type") == "exit":
                break
        return total, count, time.perf_counter() - start


# -- sessions of ours, over HTTP ----------------------------------------------------------------


def session_body(program: str) -> dict[str, Any]:
    """POST /api/sessions's body for one of loads.PROGRAMS."""
    argv = PROGRAMS[program]
    return {"command": argv[0], "args": argv[1:], "cols": COLS, "rows": ROWS}


async def create(srv: Server, body: dict[str, Any], timeout: float = 30) -> str:
    """A new session on `srv` (POST /api/sessions with `body`); its id."""
    async with httpx.AsyncClient(base_url=srv.url, timeout=timeout) as api:
        r = await api.post("/api/sessions", json=body)
        r.raise_for_status()
        return str(r.json()["id"])


async def delete(srv: Server, *sids: str) -> None:
    """DELETE each of these sessions of `srv`."""
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as api:
        for sid in sids:
            (await api.delete(f"/api/sessions/{sid}")).raise_for_status()


async def open_session(srv: Server, body: dict[str, Any], acks: bool = False) -> OursConn:
    """A new session on `srv`, and its WebSocket."""
    return await OursConn.connect(srv.ws_url, await create(srv, body), acks)


class JsonPoster:
    """POSTs of JSON over at most `size` HTTP/1.1 keep-alive connections, nothing more.

    Not httpx: its connection pool matches every queued request against every connection
    at every event, O(requests x connections): 300 POSTs at once cost this one-process client
    2.5 s of CPU (cProfile: httpcore `_assign_requests_to_connections`), more than the server
    spent creating the sessions, and the sessions load measured the client. This costs a few
    ms for the 300. The other requests of the benches, one at a time, go through httpx.
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


@contextlib.asynccontextmanager
async def opener(target: Listening, acks: bool = True) -> AsyncIterator[Opener]:
    """Opens terminals on `target` (ours, ttyd or terminado) by program name, each through
    its own protocol; ours acks (with `acks`) if its code speaks flow control."""
    if isinstance(target, Ttyd):

        async def ttyd(program: str) -> Conn:
            return await TtydConn.open(target, PROGRAMS[program])

        yield ttyd
    elif isinstance(target, Terminado):

        async def terminado(program: str) -> Conn:
            return await TerminadoConn.open(target, program)

        yield terminado
    elif isinstance(target, Server):
        poster = JsonPoster(target.url, size=50)
        try:

            async def ours(program: str) -> Conn:
                created = await poster.post("/api/sessions", session_body(program))
                return await OursConn.connect(target.ws_url, created["id"], acks and target.acks)

            yield ours
        finally:
            await poster.aclose()
    else:
        raise TypeError(f"no client for {target.name}")
