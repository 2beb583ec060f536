"""Measures through a running server, from its clients' side: a WebSocket, the HTTP API, `vt`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import bare
import httpx
import websockets
from servers import Server

from vibetunnel.protocol import frames


async def session(api: httpx.AsyncClient, srv: Server, **body: Any) -> tuple[str, Any]:
    r = await api.post("/api/sessions", json=body)
    r.raise_for_status()
    sid = r.json()["id"]
    ws = await websockets.connect(f"{srv.ws_url}/api/sessions/{sid}/ws", max_size=None)
    return sid, ws


async def read_until_exit(ws: Any) -> tuple[int, int]:
    """(output bytes, binary messages) until the exit message."""
    total = count = 0
    async for msg in ws:
        if isinstance(msg, bytes):
            total += len(msg) - frames.HEADER_SIZE
            count += 1
        elif json.loads(msg).get("type") == "exit":
            break
    return total, count


async def throughput(srv: Server, path: str) -> float:
    """MB/s of `cat path` reaching a WebSocket client."""
    async with httpx.AsyncClient(base_url=srv.url) as api:
        _, ws = await session(
            api, srv, command="/bin/sh", args=["-c", f"stty -echo; read _; cat {path}"]
        )
        await ws.send(json.dumps({"type": "input", "data": "\n"}))
        start = time.perf_counter()
        total, _ = await read_until_exit(ws)
        elapsed = time.perf_counter() - start
        await ws.close()
    return total / elapsed / 1e6


async def echo_times(ws: Any, samples: int) -> list[float]:
    """Seconds from sending one keystroke to receiving its echo, `samples` times."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        await ws.send('{"type":"input","data":"a"}')
        while not isinstance(await ws.recv(), bytes):
            pass
        out.append(time.perf_counter() - t0)
    return out


async def echo(srv: Server, samples: int) -> list[float]:
    async with httpx.AsyncClient(base_url=srv.url) as api:
        sid, ws = await session(api, srv, command="/bin/cat")
        out = await echo_times(ws, samples)
        await ws.close()
        await api.delete(f"/api/sessions/{sid}")
    return out


async def trickle(srv: Server) -> float:
    """Messages per second at the client while the TRICKLE program writes a byte every 2 ms."""
    async with httpx.AsyncClient(base_url=srv.url) as api:
        _, ws = await session(
            api,
            srv,
            command="/bin/sh",
            args=["-c", f'read _; exec {sys.executable} -c "{bare.TRICKLE}"'],
        )
        await ws.send(json.dumps({"type": "input", "data": "\n"}))
        # Skip the echo of the newline, then count messages while the dots trickle.
        first = await ws.recv()
        del first
        start = time.perf_counter()
        _, count = await read_until_exit(ws)
        elapsed = time.perf_counter() - start
        await ws.close()
    return count / elapsed


async def idle_sessions(srv: Server, n: int) -> list[str]:
    """Start `n` idle `cat` sessions; their ids."""
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as api:
        ids = []
        for _ in range(n):
            r = await api.post("/api/sessions", json={"command": "/bin/cat"})
            r.raise_for_status()
            ids.append(r.json()["id"])
        return ids


async def delete(srv: Server, ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as api:
        for sid in ids:
            (await api.delete(f"/api/sessions/{sid}")).raise_for_status()


# -- vt -----------------------------------------------------------------------------------------


class VtSession:
    """`vt COMMAND` of the server's code version in a PTY of ours (its local terminal, drained
    by a thread)."""

    def __init__(self, srv: Server, name: str, argv: list[str]) -> None:
        self.master, slave = os.openpty()
        env = {**os.environ, **srv.env, "VIBETUNNEL_HOME": str(srv.home)}
        env.pop("VIBETUNNEL_SESSION_ID", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vibetunnel.cli.vt", "--name", name, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.drain = threading.Thread(target=bare.read_all, args=(self.master,), daemon=True)
        self.drain.start()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()
        self.drain.join(5)
        os.close(self.master)


async def vt_session_id(api: httpx.AsyncClient, name: str) -> str:
    async with asyncio.timeout(20):
        while True:
            for s in (await api.get("/api/sessions")).json():
                if s["name"] == name and s["status"] == "running":
                    return str(s["id"])
            await asyncio.sleep(0.05)


async def vt_throughput(srv: Server, path: str, n: int) -> float:
    """MB/s of `vt cat path` reaching a WebSocket client."""
    vt = VtSession(srv, f"vt-tp-{n}", ["sh", "-c", f"stty -echo; read _; cat {path}"])
    try:
        async with httpx.AsyncClient(base_url=srv.url) as api:
            sid = await vt_session_id(api, f"vt-tp-{n}")
            async with websockets.connect(
                f"{srv.ws_url}/api/sessions/{sid}/ws", max_size=None
            ) as ws:
                await ws.send(json.dumps({"type": "input", "data": "\n"}))
                start = time.perf_counter()
                total, _ = await read_until_exit(ws)
                return total / (time.perf_counter() - start) / 1e6
    finally:
        vt.close()


async def vt_echo(srv: Server, samples: int, n: int) -> list[float]:
    vt = VtSession(srv, f"vt-echo-{n}", ["cat"])
    try:
        async with httpx.AsyncClient(base_url=srv.url) as api:
            sid = await vt_session_id(api, f"vt-echo-{n}")
            async with websockets.connect(
                f"{srv.ws_url}/api/sessions/{sid}/ws", max_size=None
            ) as ws:
                return await echo_times(ws, samples)
    finally:
        vt.close()
