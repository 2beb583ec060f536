"""Close code 1011: a fault in our code closes that one socket, and the session keeps running.

The server runs in-process (uvicorn on a socket bound here) so the test can break a method of
the real Session class with monkeypatch.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.conftest import UNIT
from tests.integration.wsclient import TermClient
from vibetunnel.api.app import create_app
from vibetunnel.config import Config
from vibetunnel.pty.session import Session


@dataclass
class InProcessServer:
    url: str
    ws_url: str
    http: httpx.AsyncClient


@pytest.fixture
async def in_process(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    app = create_app(Config(auth=False, home=tmp_path))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, ws="websockets-sansio", lifespan="off", log_config=None, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10 * UNIT):
            while not server.started:
                if task.done():
                    task.result()  # raise what stopped it
                await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10 * UNIT) as http:
            yield InProcessServer(url, url.replace("http://", "ws://", 1), http)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15 * UNIT)
        sock.close()


async def test_internal_fault_closes_1011_and_session_survives(
    in_process: InProcessServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = in_process.http
    r = await http.post("/api/sessions", json={"command": "/bin/cat"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    ws_url = f"{in_process.ws_url}/api/sessions/{sid}/ws"
    try:

        def broken_resize(self: Session, cols: int, rows: int) -> None:
            raise RuntimeError("injected fault in Session.resize")

        monkeypatch.setattr(Session, "resize", broken_resize)

        first = await TermClient.connect(ws_url)
        await first.type("before-fault\r")
        await first.see("before-fault")
        await first.resize(100, 30)
        code, reason = await first.closed()
        assert code == 1011, reason
        assert reason == "internal error"

        # The session is untouched: still running, still at its size, still echoing.
        r = await http.get(f"/api/sessions/{sid}")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "running"
        assert (body["cols"], body["rows"]) == (80, 24)

        second = await TermClient.connect(ws_url)
        await second.see("before-fault")  # the replay of the screen so far
        await second.type("after-fault-42\r")
        await second.see("after-fault-42\r\nafter-fault-42")  # the echo, then cat's copy
        await second.send({"type": "ping"})
        await second.until(lambda c: {"type": "pong"} in c.messages, what="pong")
        await second.close()
    finally:
        r = await http.delete(f"/api/sessions/{sid}")
        assert r.status_code == 204
    r = await http.get(f"/api/sessions/{sid}")
    assert r.status_code == 404
