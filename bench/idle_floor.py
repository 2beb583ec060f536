"""What the stack costs an idle server before any of our code: the floor under our idle RSS.

Each level is a fresh interpreter listening on a loopback port, measured (VmRSS and PSS) one
second after it first accepts a connection, as `peers.py --loads idle` measures our server:

    python bench/idle_floor.py [--rounds 3] [--after PATH]

bare: the interpreter, a socket and `select`; asyncio: asyncio + uvloop serving raw TCP;
uvicorn: uvicorn (uvloop, httptools, websockets) serving a three-line ASGI app; starlette:
the same with a Starlette app of one route and one WebSocket route; fastapi: a FastAPI
app of the same two; ours: `vibetunnel serve --no-auth` of this tree (or of --after PATH), no
session (so no keeper). Cells: medians of the rounds.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from harness import options, proctable, report, versions
from harness.fleet import Fleet
from harness.run import Run
from harness.servers import Listening, accepts, free_port
from harness.versions import Version

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


class Level(Listening):
    """One level of the stack, listening on a free loopback port: started once it accepts a
    connection."""

    def __init__(self, level: str) -> None:
        self.name = level
        self.port = free_port()
        argv = [sys.executable, "-c", LEVELS[level].replace("PORT", str(self.port))]
        super().__init__(argv, dict(os.environ))

    def started(self) -> bool:
        if accepts(self.port):
            return True
        time.sleep(0.02)
        return False


def measure(fleet: Fleet, level: str, ours: Version, i: int) -> tuple[float, float]:
    """(RSS, PSS) in MB of `level`, SETTLE s after it first accepted a connection."""
    program: Listening
    if level == "ours":
        program = fleet.start(ours, f"floor-{i}", "--no-auth")
        accepts(program.port)  # listening already: its first connection, as the others'
    else:
        program = fleet.own(Level(level))
    try:
        time.sleep(SETTLE)
        mem = proctable.memory([program.pid])
        return mem.rss / 1024, mem.pss / 1024
    finally:
        fleet.stop(program)


def main() -> int:
    ap = options.parser(__doc__)
    options.add_rounds(ap, 3, "rounds")
    options.add_versions(ap, before=False)
    options.add_json(ap)
    args = ap.parse_args()
    options.at_least_one(ap, args, "rounds")
    _, ours = versions.chosen(args, after="ours")  # and its bytecode made, as an install makes it
    levels = [*LEVELS, "ours"]
    rss: dict[str, list[float]] = {name: [] for name in levels}
    pss: dict[str, list[float]] = {name: [] for name in levels}
    with Run("vt-floor-") as run:
        for i in range(args.rounds):
            for level in levels:
                r, p = measure(run.fleet, level, ours, i)
                rss[level].append(r)
                pss[level].append(p)
    rows = []
    for level in levels:
        r, p = statistics.median(rss[level]), statistics.median(pss[level])
        rows.append([level, f"{r:.1f}", f"{p:.1f}"])
    print("\n".join(report.markdown(["level", "idle RSS MB", "PSS MB"], rows)))
    report.write_json(args.json, {"rss": rss, "pss": pss})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
