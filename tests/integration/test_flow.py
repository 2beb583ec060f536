"""Flow control against a real server (docs/protocol.md, "Flow control"): the ack rules, the
window, and that one client's window never holds back the program or its other clients."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import UNIT, RunningServer, create, start_server
from tests.integration.wsclient import TermClient
from vibetunnel.auth.secret import load_or_create_secret
from vibetunnel.auth.tokens import TokenService
from vibetunnel.protocol.flow import WINDOW
from vibetunnel.pty.client import RESYNC_PREFIX

FLOOD = "import itertools, sys\nfor i in itertools.count():\n    sys.stdout.write(f'line {i}\\n')"
"""Numbered lines as fast as the program can write them, forever."""


def ws_url(server: RunningServer, sid: str) -> str:
    return f"{server.ws_url}/api/sessions/{sid}/ws"


async def connect(server: RunningServer, sid: str) -> TermClient:
    return await TermClient.connect(ws_url(server, sid))


def flood_session(api: httpx.Client) -> str:
    """A session that prints `ready`, then floods once it reads a line."""
    script = f'printf ready; read x; exec python3 -c "{FLOOD}"'
    sid: str = create(api, command="/bin/sh", args=["-c", script])["id"]
    return sid


LINES = 200_000


def last_line(t: TermClient) -> int:
    """The number of the last whole line of the flood a client got (resyncs skip lines)."""
    found = re.findall(r"line (\d+)\r\n", t.output[-100:])
    return int(found[-1]) if found else -1


async def drain(t: TermClient, seconds: float) -> None:
    """Read whatever comes for `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                t._take(await t.ws.recv())
    except TimeoutError:
        pass


@pytest.mark.parametrize(
    ("ack", "reason"),
    [
        ({"type": "ack", "bytes": -1}, "non-negative integer"),
        ({"type": "ack", "bytes": 1.5}, "non-negative integer"),
        ({"type": "ack", "bytes": "5"}, "non-negative integer"),
        ({"type": "ack"}, "non-negative integer"),
        ({"type": "ack", "bytes": 10**9}, "were sent"),
    ],
)
async def test_bad_acks_close_with_1003(
    shared_server: RunningServer, api: httpx.Client, ack: dict[str, object], reason: str
) -> None:
    sid = create(api, command="/bin/sh", args=["-c", "printf ready; exec cat"])["id"]
    t = await connect(shared_server, sid)
    await t.see("ready")
    await t.send(ack)
    code, why = await t.closed()
    assert code == 1003
    assert reason in why


async def test_an_ack_that_goes_back_closes_with_1003(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    sid = create(api, command="/bin/sh", args=["-c", "printf ready; exec cat"])["id"]
    t = await connect(shared_server, sid)
    await t.see("ready")
    await t.ack()
    await t.ack(t.received - 1)
    code, why = await t.closed()
    assert (code, why) == (1003, f"ack went back: {t.received - 1} after {t.received}")


async def test_the_window_holds_and_never_slows_the_program_or_the_other_clients(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    sid = flood_session(api)
    try:
        slow = await connect(shared_server, sid)  # acks what it had before the flood, then nothing
        fast = await connect(shared_server, sid)  # acks all it reads
        plain = await connect(shared_server, sid)  # never acks
        for t in (slow, fast, plain):
            await t.see("ready")
        await slow.ack()
        await fast.ack()
        before = slow.received
        await slow.type("\r")

        async def keep_acking() -> None:
            while last_line(fast) < LINES:
                fast._take(await fast.ws.recv())
                await fast.ack()

        await asyncio.wait_for(keep_acking(), 60 * UNIT)
        await plain.until(lambda c: last_line(c) >= LINES, 60 * UNIT, "the flood, unacked")
        await drain(slow, 0.5 * UNIT)
        assert 0 < slow.received - before <= WINDOW
        # Acked, the slow client moves again: it fell far behind, so it starts from the screen.
        await slow.ack()
        await slow.until(lambda c: RESYNC_PREFIX.decode() in c.output[before:], what="a resync")
        await slow.until(lambda c: c.received - before > WINDOW, what="more output")
    finally:
        api.delete(f"/api/sessions/{sid}")  # the flood would run on for the module


async def test_a_client_that_never_acks_gets_everything_unwindowed(
    shared_server: RunningServer, api: httpx.Client
) -> None:
    script = "import sys; sys.stdout.write('x' * 1000000 + 'END\\n')"
    sid = create(api, command="python3", args=["-c", script])["id"]
    t = await connect(shared_server, sid)
    await t.see("END", timeout=30 * UNIT)
    assert t.output.count("x") == 1000000
    assert t.received > 10 * WINDOW


async def test_a_read_only_viewer_acks_too(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home")
    try:
        service = TokenService(load_or_create_secret(srv.home))
        with srv.client(service.issue("owner", 600)) as api:
            sid = create(api, command="/bin/sh", args=["-c", "printf ready; exec cat"])["id"]
        viewer_token = service.issue("viewer", 600, session_id=sid, read_only=True)
        viewer = await TermClient.connect(f"{ws_url(srv, sid)}?token={viewer_token}")
        await viewer.see("ready")
        await viewer.ack()  # applied: the window is the viewer's own
        await viewer.ack(viewer.received + 1)  # so this one is checked, and refused
        code, why = await viewer.closed()
        assert code == 1003 and "were sent" in why
    finally:
        srv.stop()
