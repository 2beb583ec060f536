"""The session WebSocket against a real server and real PTYs: messages, close codes, PTYs."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import httpx
import pytest
import websockets

from tests.conftest import UNIT, RunningServer, create, start_server, wait_until
from tests.integration.wsclient import TermClient
from vibetunnel.protocol import frames

SH = "/bin/sh"


def ws_url(server: RunningServer, sid: str) -> str:
    return f"{server.ws_url}/api/sessions/{sid}/ws"


async def attach(
    server: RunningServer, api: httpx.Client, **body: object
) -> tuple[str, TermClient]:
    s = create(api, **body)
    return s["id"], await TermClient.connect(ws_url(server, s["id"]))


async def shell(shared_server: RunningServer, api: httpx.Client) -> tuple[str, TermClient]:
    sid, t = await attach(
        shared_server, api, command="/bin/bash", args=["--norc", "--noprofile"], env={"PS1": "$ "}
    )
    await t.see("$ ")
    return sid, t


async def test_input_output_round_trip(shared_server: RunningServer, api: httpx.Client) -> None:
    _, t = await shell(shared_server, api)
    await t.type("echo round-$((40+2))\r")
    await t.see("round-42")
    await t.close()


async def test_every_frame_is_one_whole_utf8_frame(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    # 400 KB of mixed-width characters in many PTY reads: each message is exactly one frame,
    # its length field matches, its data is whole UTF-8, and no frame exceeds 64 KB.
    script = "import sys; sys.stdout.write(('a€😀é' * 25000) + '\\nEND\\n')"
    _, t = await attach(shared_server, api, command="python3", args=["-c", script])
    await t.see("END")
    for raw in t.frames:
        assert raw[0] == 0xBF
        assert int.from_bytes(raw[1:5], "big") == len(raw) - 5 <= 64 * 1024
        raw[5:].decode("utf-8")
    assert t.output.count("😀") == 25000


async def test_ping_pong(shared_server: RunningServer, api: httpx.Client) -> None:
    _, t = await attach(shared_server, api, command="/bin/cat")
    await t.send({"type": "ping"})
    await t.send({"type": "ping"})
    await t.until(lambda c: c.messages.count({"type": "pong"}) == 2, what="two pongs")
    await t.close()


async def test_resize_reaches_the_program(shared_server: RunningServer, api: httpx.Client) -> None:
    # The program sees SIGWINCH and the new size.
    script = "trap 'echo winch $(stty size)' WINCH; echo ready; while :; do sleep 0.05; done"
    sid, t = await attach(shared_server, api, command=SH, args=["-c", script])
    await t.see("ready")
    await t.resize(120, 40)
    await t.see("winch 40 120")
    assert (api.get(f"/api/sessions/{sid}").json()["cols"]) == 120
    await t.close()


async def test_ctrl_c_interrupts_sleep(shared_server: RunningServer, api: httpx.Client) -> None:
    _, t = await attach(shared_server, api, command=SH, args=["-c", "echo ready; exec sleep 100"])
    await t.see("ready")
    await t.type("\x03")
    assert await t.closed() == (1000, "session ended")
    assert t.messages[-1] == {"type": "exit", "code": 130}


async def test_ctrl_backslash_quits(shared_server: RunningServer, api: httpx.Client) -> None:
    _, t = await attach(shared_server, api, command=SH, args=["-c", "echo ready; exec sleep 100"])
    await t.see("ready")
    await t.type("\x1c")
    await t.closed()
    assert t.messages[-1] == {"type": "exit", "code": 131}


async def test_ctrl_d_ends_input_and_del_erases(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    _, t = await attach(
        shared_server, api, command=SH, args=["-c", "echo ready; cat; echo got-eof"]
    )
    await t.see("ready")
    await t.type("abc\x7f\x7fX\n")
    await t.see("aX\r\n")  # cat got the line as the line discipline edited it
    await t.type("\x04")
    await t.see("got-eof")
    await t.closed()
    assert t.messages[-1] == {"type": "exit", "code": 0}


async def test_ctrl_z_suspends(shared_server: RunningServer, api: httpx.Client) -> None:
    _, t = await shell(shared_server, api)
    await t.type("sh -c 'echo sleep-$((1+2)); exec sleep 100'\r")
    await t.see("sleep-3")
    await t.type("\x1a")
    await t.until(lambda c: "Stopped" in c.output, what="job stopped")
    await t.type("kill -9 %1; echo killed-$?\r")
    await t.see("killed-0")
    await t.close()


async def test_large_paste_arrives_whole(shared_server: RunningServer, api: httpx.Client) -> None:
    # 250 KB in one input message; the program reads it slowly in lines. Meanwhile another
    # session still answers: the paste does not block the server.
    script = "stty -echo; echo ready; wc -c"
    _, t = await attach(shared_server, api, command=SH, args=["-c", script])
    _, other = await attach(shared_server, api, command="/bin/cat")
    await t.see("ready")
    line = "x" * 99 + "\n"
    await t.type(line * 2560)
    await other.send({"type": "ping"})
    await other.until(lambda c: {"type": "pong"} in c.messages, what="pong during paste")
    await t.type("\x04")
    await t.see("256000")
    await other.close()


async def test_split_multibyte_character_is_never_split(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    # '€' is e2 82 ac: written in two pieces with a pause, so it arrives in two PTY reads.
    script = (
        "import os,sys; sys.stdin.readline(); os.write(1, b'<\\xe2\\x82'); sys.stdin.readline();"
        " os.write(1, b'\\xac>\\xff!\\n')"
    )
    _, t = await attach(
        shared_server, api, command=SH, args=["-c", f'stty -echo; exec python3 -c "{script}"']
    )
    await t.type("go\r")
    await t.until(lambda c: c.frames, what="first half")
    await t.type("go\r")
    await t.see("!")
    assert "<€>\ufffd!" in t.output  # TermClient decodes strictly: any split would have failed


async def test_two_clients_both_see_everything_latest_resize_wins(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    sid, a = await shell(shared_server, api)
    b = await TermClient.connect(ws_url(shared_server, sid))
    await a.type("echo from-a-$((1+1))\r")
    await b.see("from-a-2")
    await b.type("echo from-b-$((2+2))\r")
    await a.see("from-b-4")
    await a.resize(100, 30)
    wait_until(lambda: api.get(f"/api/sessions/{sid}").json()["cols"] == 100)
    await b.resize(90, 20)
    wait_until(lambda: api.get(f"/api/sessions/{sid}").json()["cols"] == 90)
    assert api.get(f"/api/sessions/{sid}").json()["clients"] == 2
    await a.close()
    await b.close()


async def test_late_joiner_gets_screen_since_last_clear(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    script = "printf 'old-stuff\\n\\033[H\\033[2Jnew-screen\\n'; exec cat"
    sid, first = await attach(shared_server, api, command=SH, args=["-c", script])
    await first.see("new-screen")
    late = await TermClient.connect(ws_url(shared_server, sid))
    await late.see("new-screen")
    assert "old-stuff" not in late.output
    await late.type("live\r")
    await late.see("live")
    await first.close()
    await late.close()


async def test_late_joiner_of_a_full_screen_program_and_after_it_quit(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    # As vim does: the shell's screen, then the alternate screen with its own modes and clear.
    enter = r"shell-screen\n\033[?1049h\033[?1h\033[H\033[2Jfull-screen"
    leave = r"\033[?1l\033[?1049lback-in-shell"
    script = f"printf '{enter}'; read x; printf '{leave}'; exec cat"
    sid, first = await attach(shared_server, api, command=SH, args=["-c", script])
    await first.see("full-screen")
    during = await TermClient.connect(ws_url(shared_server, sid))
    await during.see("full-screen")
    assert during.output.index("shell-screen") < during.output.index("\x1b[?1049h")
    assert during.output.endswith("full-screen\x1b[?1h")  # arrow keys as the program wants
    await during.type("\r")
    await during.see("back-in-shell")
    after = await TermClient.connect(ws_url(shared_server, sid))
    await after.see("back-in-shell")
    assert "full-screen" not in after.output and "\x1b[?1049h" not in after.output
    assert after.output.startswith("shell-screen")
    for t in (first, during, after):
        await t.close()


async def test_exit_code_and_close_1000(shared_server: RunningServer, api: httpx.Client) -> None:
    _, t = await attach(shared_server, api, command=SH, args=["-c", "read x; echo bye; exit 42"])
    await t.type("\r")
    code, why = await t.closed()
    assert (code, why) == (1000, "session ended")
    assert "bye" in t.output and t.messages[-1] == {"type": "exit", "code": 42}


async def test_exited_session_replays_then_closes(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    s = create(api, command=SH, args=["-c", "echo last-words; exit 5"])
    wait_until(lambda: api.get(f"/api/sessions/{s['id']}").json()["status"] == "exited")
    t = await TermClient.connect(ws_url(shared_server, s["id"]))
    assert await t.closed() == (1000, "session ended")
    assert "last-words" in t.output and t.messages == [{"type": "exit", "code": 5}]


async def test_unknown_session_closes_1000(shared_server: RunningServer) -> None:
    t = await TermClient.connect(ws_url(shared_server, str(uuid.uuid4())))
    assert await t.closed() == (1000, "session not found")


@pytest.mark.parametrize(
    ("message", "why"),
    [
        (b"\x01\x02", "binary"),
        ("{not json", "JSON"),
        ("[1, 2]", "object"),
        ('{"type": "dance"}', "unknown message type"),
        ('{"type": "input", "data": 5}', "data"),
        ('{"type": "resize", "cols": "80", "rows": 24}', "cols"),
        ('{"type": "resize", "cols": 80, "rows": 0}', "rows"),
        ('{"type": "resize", "cols": 1001, "rows": 24}', "cols"),
        ('{"data": "x"}', "type"),
    ],
)
async def test_bad_messages_close_1003(
    shared_server: RunningServer, api: httpx.Client, message: str | bytes, why: str
) -> None:
    sid, t = await attach(shared_server, api, command="/bin/cat")
    await t.ws.send(message)
    code, reason = await t.closed()
    assert code == 1003 and why in reason
    assert api.get(f"/api/sessions/{sid}").json()["status"] == "running"


async def test_idle_client_closed_1001(tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "home", "--no-auth", "--idle-timeout", str(0.5 * UNIT))
    try:
        with srv.client() as api:
            sid, t = await attach(srv, api, command="/bin/cat")
            for _ in range(3):  # pings keep it open past the timeout
                await asyncio.sleep(0.3 * UNIT)
                await t.send({"type": "ping"})
            code, reason = await t.closed(timeout=5 * UNIT)
            assert code == 1001 and "idle" in reason
            assert t.messages.count({"type": "pong"}) == 3
    finally:
        srv.stop()


async def test_shutdown_closes_1001_and_leaves_programs_running(tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = start_server(tmp_path / "home", "--no-auth")
    marker = tmp_path / "hup.txt"
    script = f"trap 'echo hup > {marker}; exit 0' HUP; echo ready; while :; do sleep 0.05; done"
    with srv.client() as api:
        _, t = await attach(srv, api, command=SH, args=["-c", script])
        await t.see("ready")
    assert srv.stop(keep_sessions=True) == 0
    assert await t.closed() == (1001, "server shutdown")
    assert not marker.exists()  # the program was not hung up: it outlives the server
    srv.stop()  # `vibetunnel stop --sessions`: SIGHUP first
    assert marker.read_text() == "hup\n"
    assert any("listening" in line for line in srv.output)


async def test_frames_decode_helper_rejects_garbage() -> None:
    with pytest.raises(frames.FrameError):
        frames.decode(b"\x00\x00\x00\x00\x01x")


async def test_raw_websocket_from_spec_example(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    # What a client written from docs/protocol.md alone does: JSON text out, binary frames in.
    s = create(api, command=SH, args=["-c", 'read line; echo "got $line"'])
    async with websockets.connect(ws_url(shared_server, s["id"])) as ws:
        await ws.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
        await ws.send(json.dumps({"type": "input", "data": "spec\n"}))
        seen = ""
        async with asyncio.timeout(5 * UNIT):
            while "got spec" not in seen:
                msg = await ws.recv()
                if isinstance(msg, bytes):
                    seen += frames.decode(msg)[0].decode()


async def test_slow_client_never_slows_the_others(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    # One client stops reading (its socket fills up) while the program writes 32 MB: the
    # program still finishes, the other client gets every byte, and the slow one, when it
    # reads again, is resynchronised with the current screen instead of the whole backlog.
    size = 32_000_000
    script = f"read _; head -c {size} /dev/zero | tr '\\\\0' x; echo; echo done"
    sid, fast = await attach(shared_server, api, command=SH, args=["-c", f"stty -echo; {script}"])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up at once
    sock.connect(("127.0.0.1", shared_server.port))
    slow = await websockets.connect(
        ws_url(shared_server, sid), sock=sock, max_size=None, max_queue=1
    )
    await fast.type("\n")
    got = 0
    async with asyncio.timeout(60 * UNIT):
        while True:
            msg = await fast.ws.recv()
            if isinstance(msg, bytes):
                got += len(frames.decode(msg)[0])
            elif json.loads(msg)["type"] == "exit":
                break
    assert got >= size
    received = b""
    async with asyncio.timeout(20 * UNIT):
        async for msg in slow:
            if isinstance(msg, bytes):
                received += frames.decode(msg)[0]
    assert b"\x1b[H\x1b[2J\x1b[3J" in received  # the resync prefix
    assert len(received) < size  # the backlog was dropped, not delivered
    assert received.rstrip().endswith(b"done")
