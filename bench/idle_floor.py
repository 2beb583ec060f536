"""What the stack costs an idle server before any of our code: the floor under our idle RSS.

Each level is a fresh interpreter listening on a loopback port, measured (VmRSS and PSS) one
second after it first accepts a connection, as `peers.py --loads idle` measures our server:

    python bench/idle_floor.py [--rounds 3]

bare: the interpreter, a socket and `select`; asyncio: asyncio + uvloop serving raw TCP;
uvicorn: uvicorn (uvloop, httptools, websockets) serving a three-line ASGI app; starlette:
the same with a Starlette app of one route and one WebSocket route; fastapi: a FastAPI
app of the same two; ours: `vibetunnel serve --no-auth`, no session (so no keeper).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import proctable
import versions

ROOT = Path(__file__).resolve().parents[1]

LEVELS = {
    "bare": """
import select, socket
s = socket.socket(); s.bind(("127.0.0.1", PORT)); s.listen()
while True:
    select.select([s], [], [])
    s.accept()[0].close()
""",
    "asyncio": """
import asyncio, uvloop
async def main():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", PORT)
    await server.serve_forever()
uvloop.run(main())
""",
    "uvicorn": """
import uvicorn
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=PORT, loop="uvloop", log_level="error")
""",
    "starlette": """
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
async def hello(request):
    return JSONResponse({"ok": True})
async def ws(websocket):
    await websocket.accept()
    await websocket.close()
app = Starlette(routes=[Route("/", hello), WebSocketRoute("/ws", ws)])
uvicorn.run(app, host="127.0.0.1", port=PORT, loop="uvloop", log_level="error")
""",
    "fastapi": """
import uvicorn
from fastapi import FastAPI, WebSocket
app = FastAPI()
@app.get("/")
async def hello() -> dict[str, bool]:
    return {"ok": True}
@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close()
uvicorn.run(app, host="127.0.0.1", port=PORT, loop="uvloop", log_level="error")
""",
}
SETTLE = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def measure(level: str, home: Path) -> tuple[float, float]:
    """(RSS, PSS) in MB of `level`, SETTLE s after it first accepted a connection."""
    port = free_port()
    if level == "ours":
        argv = [sys.executable, "-m", "vibetunnel", "serve", "--no-auth", "--port", str(port)]
        env = {**os.environ, "VIBETUNNEL_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    else:
        argv = [sys.executable, "-c", LEVELS[level].replace("PORT", str(port))]
        env = dict(os.environ)
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not accepts(port):
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{level} did not listen: {child.stderr.read() if child.stderr else ''}"
                )
            time.sleep(0.02)
        time.sleep(SETTLE)
        mem = proctable.memory([child.pid])
        return mem.rss / 1024, mem.pss / 1024
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    versions.working_tree("ours").check()  # and its bytecode made, as an install makes it
    levels = [*LEVELS, "ours"]
    rss: dict[str, list[float]] = {name: [] for name in levels}
    pss: dict[str, list[float]] = {name: [] for name in levels}
    with tempfile.TemporaryDirectory(prefix="vt-floor-") as tmp:
        for i in range(args.rounds):
            for level in levels:
                r, p = measure(level, Path(tmp) / f"home-{i}")
                rss[level].append(r)
                pss[level].append(p)
    print("| level | idle RSS MB | PSS MB |")
    print("| --- | --- | --- |")
    for level in levels:
        r, p = statistics.median(rss[level]), statistics.median(pss[level])
        print(f"| {level} | {r:.1f} | {p:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
