"""A test client for the session WebSocket: decodes frames, collects text, waits with deadlines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.conftest import UNIT
from vibetunnel.protocol import frames

OPEN: list[TermClient] = []
"""Every client a test opened; the integration conftest closes them after each test."""


class TermClient:
    """One WebSocket to one session, as a browser would hold it."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.output = ""
        self.frames: list[bytes] = []
        self.messages: list[dict[str, Any]] = []
        self.received = 0
        """Data bytes of every frame so far: what an ack counts (docs/protocol.md)."""

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> TermClient:
        ws = await websockets.connect(url, max_size=None, **kwargs)
        client = cls(ws)
        OPEN.append(client)
        return client

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(obj))

    async def type(self, data: str) -> None:
        await self.send({"type": "input", "data": data})

    async def resize(self, cols: int, rows: int) -> None:
        await self.send({"type": "resize", "cols": cols, "rows": rows})

    async def ack(self, total: int | None = None) -> None:
        """Ack `total` data bytes (default: every byte received so far)."""
        await self.send({"type": "ack", "bytes": self.received if total is None else total})

    def _take(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            data, rest = frames.decode(message)
            assert rest == b"", "one frame per message"
            self.frames.append(message)
            self.received += len(data)
            self.output += data.decode("utf-8")  # strict: frames are always whole UTF-8
        else:
            self.messages.append(json.loads(message))

    async def until(
        self, check: Callable[[TermClient], Any], timeout: float = 5 * UNIT, what: str = ""
    ) -> Any:
        """Read messages until `check(self)` is truthy; fail after `timeout`."""
        try:
            return await self._until(check, timeout, what)
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout:.1f}s waiting for {what or check}; "
                f"output so far: {self.output[-500:]!r}"
            ) from None

    async def _until(self, check: Callable[[TermClient], Any], timeout: float, what: str) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := check(self)):
                try:
                    self._take(await self.ws.recv())
                except ConnectionClosed:
                    if result := check(self):
                        return result
                    raise AssertionError(
                        f"closed ({self.ws.close_code} {self.ws.close_reason!r}) waiting for "
                        f"{what or check}; output so far: {self.output[-500:]!r}"
                    ) from None
            return result

    async def see(self, text: str, timeout: float = 5 * UNIT) -> None:
        await self.until(lambda c: text in c.output, timeout, f"output {text!r}")

    async def closed(self, timeout: float = 5 * UNIT) -> tuple[int | None, str]:
        """Read until the server closes; returns (code, reason)."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    self._take(await self.ws.recv())
            except ConnectionClosed:
                pass
        return self.ws.close_code, self.ws.close_reason or ""

    async def close(self) -> None:
        await self.ws.close()
