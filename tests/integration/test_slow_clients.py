"""Clients that do not read: what the server holds for them stays bounded, and is released.

The clients here (tests/integration/rawws.py) read nothing after the handshake, so every
byte the server sends them piles up in its own buffers unless something bounds it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import UNIT, RunningServer, create, start_server, wait_until
from tests.integration.rawws import DeafSocket

PING = '{"type":"ping"}'


def rss_kb(srv: RunningServer) -> int:
    assert srv.process is not None
    status = Path(f"/proc/{srv.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


@pytest.fixture
def quick(tmp_path: Path) -> Iterator[RunningServer]:
    """A server that closes silent sockets after 1 s (pings count as messages)."""
    srv = start_server(
        tmp_path / "home", "--no-auth", "--rate-limit", "100000", "--idle-timeout", "1"
    )
    try:
        yield srv
    finally:
        srv.stop()


def sleeper(api: httpx.Client) -> str:
    sid: str = create(api, command="/bin/sh", args=["-c", "exec sleep 600"])["id"]
    return sid


def flood(sock: DeafSocket, seconds: float, send: str) -> int:
    """Send pings for `seconds` (as fast as the server takes them); how many went out."""
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if send == "json":
            sock.send_text(PING, 100)
        else:
            sock.send_ping(100)
        sent += 100
    return sent


@pytest.mark.parametrize("kind", ["json", "control"])
def test_pings_from_a_client_that_never_reads_do_not_grow_the_server(
    quick: RunningServer, kind: str
) -> None:
    # JSON pings piled up pongs in the client's queue, control-frame PINGs piled up pongs
    # in uvicorn's write buffer: tens of MB in a few seconds. Now a few pongs wait, the
    # rest are dropped. A warm-up flood first: the allocator's first growth is no leak.
    with quick.client() as api:
        sid = sleeper(api)
    url = f"{quick.ws_url}/api/sessions/{sid}/ws"
    warm = DeafSocket(url)
    flood(warm, 0.5 * UNIT, kind)
    warm.close()
    before = rss_kb(quick)
    sock = DeafSocket(url)
    sent = flood(sock, 3 * UNIT, kind)
    grown = rss_kb(quick) - before
    assert sent > 10_000
    assert grown < 8 * 1024, f"{grown} kB more after {sent} pings"
    sock.close()
    # A new HTTP connection: the floods outlast uvicorn's 5 s keep-alive on a loaded
    # machine, and a request sent as the server closes the idle one is reset.
    with quick.client() as api:
        wait_until(lambda: api.get(f"/api/sessions/{sid}").json()["clients"] == 0, what="gone")
        api.delete(f"/api/sessions/{sid}")


def test_a_client_that_never_reads_is_dropped_when_closed(quick: RunningServer) -> None:
    # The idle timeout closes the socket, but the close frame waits behind output the peer
    # never reads: the server used to wait forever, holding the socket and its buffers.
    with quick.client() as api:
        sid = create(
            api,
            command="/bin/sh",
            args=["-c", "read go; head -c 30000000 /dev/zero | tr '\\0' x; exec sleep 600"],
        )["id"]
        sock = DeafSocket(f"{quick.ws_url}/api/sessions/{sid}/ws")
        api.post(f"/api/sessions/{sid}/input", json={"data": "go\n"})
        # 1 s idle timeout, then CLOSE_WAIT (5 s) for the peer to read: then dropped.
        wait_until(sock.dropped, timeout=20 * UNIT, what="the server to drop the socket")
        assert api.get(f"/api/sessions/{sid}").json()["clients"] == 0
        sock.close()
        api.delete(f"/api/sessions/{sid}")
