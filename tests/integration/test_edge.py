"""Limits at the edge (contract "Limits at the edge"), against a real server, as an attacker on
the same machine would try them: spoofed addresses, huge bodies, slow clients and floods."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import UNIT, RunningServer, create, start_server, wait_until
from tests.integration.wsclient import TermClient
from vibetunnel.auth import TokenService, load_or_create_secret

PASSWORD = "correct horse battery staple"
SPOOFS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def spoofed(i: int) -> dict[str, str]:
    """Headers claiming the request comes from a new address each time."""
    address = f"203.0.113.{i % 250 + 1}"
    return {
        "X-Forwarded-For": address,
        "X-Real-IP": address,
        "Forwarded": f"for={address}",
    }


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RunningServer]:
    """Auth on, a known password, a general limit the login tests never reach."""
    srv = start_server(
        tmp_path / "home", "--rate-limit", "1000", env={"VIBETUNNEL_PASSWORD": PASSWORD}
    )
    try:
        yield srv
    finally:
        srv.stop()


# -- 1. addresses: forwarded headers only from --trusted-proxy ----------------------------------


def test_forwarded_headers_do_not_dodge_the_login_limit(guarded: RunningServer) -> None:
    with guarded.client() as c:
        codes = [
            c.post("/api/auth/login", json={"password": "guess"}, headers=spoofed(i)).status_code
            for i in range(11)
        ]
        assert codes == [401] * 10 + [429]
        # Blocked: a new forwarded address does not sign it in either.
        r = c.post("/api/auth/login", json={"password": PASSWORD}, headers=spoofed(99))
        assert r.status_code == 429


def test_loopback_addresses_are_one_client(guarded: RunningServer) -> None:
    # Anyone on this machine can send from any of 127.0.0.0/8.
    for i in range(10):
        local = httpx.HTTPTransport(local_address=f"127.0.0.{i + 2}")
        with httpx.Client(base_url=guarded.url, transport=local) as c:
            assert c.post("/api/auth/login", json={"password": "guess"}).status_code == 401
    with guarded.client() as c:
        assert c.post("/api/auth/login", json={"password": PASSWORD}).status_code == 429


def test_forwarded_headers_do_not_dodge_the_rate_limit(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--rate-limit", "5")
    try:
        with srv.client() as c:
            codes = [c.get("/api/health", headers=spoofed(i)).status_code for i in range(6)]
        assert codes == [200] * 5 + [429]
    finally:
        srv.stop()


def test_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--rate-limit", "3", "--trusted-proxy", "127.0.0.1")
    try:
        with srv.client() as c:
            first = {"X-Forwarded-For": "198.51.100.7"}
            assert [c.get("/api/health", headers=first).status_code for _ in range(4)] == [
                200,
                200,
                200,
                429,
            ]
            # Another client behind the same proxy has its own budget ...
            assert c.get("/api/health", headers={"X-Forwarded-For": "198.51.100.8"}).is_success
            # ... and only X-Forwarded-For names it: the other two headers are never read.
            for name in ("X-Real-IP", "Forwarded"):
                r = c.get("/api/health", headers={**first, name: "198.51.100.9"})
                assert r.status_code == 429, name
    finally:
        srv.stop()


# -- 9. odd headers are answered, never a 500 ----------------------------------------------------


async def test_odd_headers_are_refused_not_crashes(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--no-auth")
    try:
        with srv.client() as c:
            for version in [b"9" * 5000, b"\xb2", b"v1" + b"0" * 5000]:
                r = c.get("/api/health", headers={"X-Client-Version": version})
                assert r.status_code == 400, version[:10]
                assert r.json()["error"]["code"] == "unsupported_client_version"
            r = c.get("/api/sessions", headers={"Host": "[nope"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        t = await TermClient.connect(
            f"{srv.ws_url}/api/sessions/x/ws",
            origin="http://[nope",  # type: ignore[arg-type]
        )
        assert (await t.closed())[0] == 1008
    finally:
        srv.stop()
    assert "Traceback" not in "".join(srv.output)


# -- 10. tokens in the query never reach the log, however the name is spelled --------------------


def test_a_token_in_the_query_is_redacted_whatever_its_spelling(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--verbose")
    try:
        secret = TokenService(load_or_create_secret(srv.home))
        sent = []
        with srv.client() as c:
            for name in ("tok%65n", "%74%6F%6B%65%6E", "token"):
                t = secret.issue(f"user-{len(sent)}", 600)
                sent.append(t)
                assert c.get(f"/api/sessions?a=1&{name}={t}").status_code == 200, name
            wait_until(lambda: sum("token=[redacted]" in line for line in srv.output) >= 3)
    finally:
        srv.stop()
    log = "".join(srv.output)
    assert "?a=1&token=[redacted]" in log
    for t in sent:
        assert t not in log and t.split(".")[1] not in log


# -- 13. no token lives longer than the server would have made it ---------------------------------


def test_a_token_valid_until_the_year_9999_is_refused(guarded: RunningServer) -> None:
    key = load_or_create_secret(guarded.home)
    now = int(time.time())
    forever = jwt.encode({"sub": "me", "iat": now, "exp": 253402300799}, key, algorithm="HS256")
    with guarded.client(forever) as c:
        r = c.get("/api/sessions")
    assert r.status_code == 401 and "lifetime" in r.json()["error"]["message"]
    month = TokenService(key).issue("me", 30 * 86400)
    with guarded.client(month) as c:
        assert c.get("/api/sessions").status_code == 200


# -- 8. a share token reads, types and resizes; nothing else --------------------------------------


def test_a_share_token_cannot_delete_its_session_or_recording(guarded: RunningServer) -> None:
    tokens = TokenService(load_or_create_secret(guarded.home))
    with guarded.client(tokens.issue("owner", 600)) as owner:
        sid = create(owner, command="/bin/cat")["id"]
        share = tokens.issue("guest", 600, session_id=sid)
        with guarded.client(share) as guest:
            for method, path in [
                ("DELETE", f"/api/sessions/{sid}"),
                ("DELETE", f"/api/recordings/{sid}"),
                ("GET", "/api/recordings"),
                ("GET", "/api/sessions/events"),
            ]:
                r = guest.request(method, path)
                assert r.status_code == 403, (method, path)
                assert r.json()["error"]["code"] == "forbidden"
            # What a share link is for still works.
            assert guest.get(f"/api/sessions/{sid}").status_code == 200
            assert guest.post(f"/api/sessions/{sid}/input", json={"data": "x"}).status_code == 204
            r = guest.post(f"/api/sessions/{sid}/resize", json={"cols": 90, "rows": 30})
            assert r.status_code == 200
            wait_until(lambda: guest.get(f"/api/recordings/{sid}").status_code == 200)
        assert owner.get(f"/api/sessions/{sid}").json()["status"] == "running"
        assert owner.delete(f"/api/sessions/{sid}").status_code == 204


# -- 2. bodies: the token first, then at most 1 MiB; nothing read before -------------------------

MIB = 1024 * 1024


def raw_request(srv: RunningServer, head: str, body: bytes = b"") -> tuple[int, bytes, bool]:
    """Send `head` (request line and headers) and `body` on a new socket; return the status,
    the whole answer, and whether the server closed the connection after it."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5 * UNIT) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        closed = False
        while b"\r\n\r\n" not in answer or not _complete(answer):
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            answer += chunk
        if not closed:
            sock.settimeout(2 * UNIT)
            with contextlib.suppress(TimeoutError):
                closed = sock.recv(1) == b""
    return int(answer.split(b" ", 2)[1]), answer, closed


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    return length is not None and len(body) >= int(length.group(1))


def test_no_token_is_401_before_the_body_is_read(guarded: RunningServer) -> None:
    # 100 MB announced, none sent: the answer comes at once, and the connection is closed.
    head = (
        "POST /api/sessions HTTP/1.1\nHost: localhost\nContent-Type: text/plain\n"
        f"Content-Length: {100 * MIB}\n"
    )
    status, answer, closed = raw_request(guarded, head)
    assert status == 401 and b"unauthorized" in answer and closed


def test_a_body_over_1_mib_is_413_before_it_is_read(guarded: RunningServer) -> None:
    tokens = TokenService(load_or_create_secret(guarded.home))
    auth = f"Authorization: Bearer {tokens.issue('me', 600)}"
    head = (
        f"POST /api/sessions HTTP/1.1\nHost: localhost\n{auth}\nContent-Type: application/json\n"
        f"Content-Length: {MIB + 1}\n"
    )
    status, answer, closed = raw_request(guarded, head)
    assert status == 413 and b"payload_too_large" in answer and closed
    # Open routes too: the login form is no way around it.
    head = f"POST /api/auth/login HTTP/1.1\nHost: localhost\nContent-Length: {MIB + 1}\n"
    assert raw_request(guarded, head)[0] == 413


def test_a_chunked_body_is_cut_at_1_mib(guarded: RunningServer) -> None:
    tokens = TokenService(load_or_create_secret(guarded.home))
    with guarded.client(tokens.issue("me", 600)) as c:
        sid = create(c, command="/bin/cat")["id"]
        url = f"/api/sessions/{sid}/input"
        big = json.dumps({"data": "x" * MIB}).encode()

        def chunks(body: bytes) -> Iterator[bytes]:  # no Content-Length: sent chunked
            for i in range(0, len(body), 64 * 1024):
                yield body[i : i + 64 * 1024]

        jtype = {"Content-Type": "application/json"}
        r = c.post(url, content=chunks(big), headers=jtype)
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        # Up to 1 MiB is fine, chunked or not.
        fits = json.dumps({"data": "y" * (MIB - 20)}).encode()
        assert len(fits) <= MIB
        assert c.post(url, content=chunks(fits), headers=jtype).status_code == 204
        assert c.post(url, content=fits, headers=jtype).status_code == 204


def test_bodies_without_a_token_cost_no_memory(guarded: RunningServer) -> None:
    """Eight 100 MB POSTs without a token: the server's peak memory barely moves."""
    assert guarded.process is not None
    before = peak_rss(guarded.process.pid)

    def flood() -> None:
        head = (
            b"POST /api/sessions HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n" % (100 * MIB)
        )
        block = b"x" * MIB
        address = ("127.0.0.1", guarded.port)
        with (
            socket.create_connection(address, timeout=5 * UNIT) as sock,
            contextlib.suppress(OSError),
        ):
            sock.sendall(head)
            for _ in range(100):
                sock.sendall(block)

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with guarded.client() as c:
        assert c.get("/api/health").status_code == 200
    assert peak_rss(guarded.process.pid) - before < 64 * MIB


def peak_rss(pid: int) -> int:
    """The peak resident memory of process `pid`, in bytes (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match, status
    return int(match.group(1)) * 1024


# -- 7. without auth, state changes must be JSON: a cross-site form cannot send it ----------------


def test_no_auth_refuses_what_a_cross_site_form_can_send(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--no-auth")
    try:
        with srv.client() as c:
            sid = create(c, command="/bin/cat")["id"]
            forms = [
                {"content": b"", "headers": {"Content-Type": "text/plain"}},
                {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
                {"data": {"command": "/bin/sh"}},  # application/x-www-form-urlencoded
                {"files": {"command": ("x", b"/bin/sh")}},  # multipart/form-data
                {"content": b""},  # no Content-Type at all
                {"content": b"{}", "headers": {"Content-Type": "application/jsonx"}},
            ]
            for form in forms:
                for path in ("/api/sessions", f"/api/sessions/{sid}/input"):
                    r = c.post(path, **form)  # type: ignore[arg-type]
                    assert r.status_code == 415, (path, form)
                    assert r.json()["error"]["code"] == "unsupported_media_type"
            assert [s["id"] for s in c.get("/api/sessions").json()] == [sid]
            # JSON, with or without a charset, is what the API takes; DELETE has no body.
            typed = {"Content-Type": "application/json; charset=utf-8"}
            r = c.post(f"/api/sessions/{sid}/input", content=b'{"data":"x"}', headers=typed)
            assert r.status_code == 204
            assert c.delete(f"/api/sessions/{sid}").status_code == 204
    finally:
        srv.stop()


# -- 2. WebSocket messages: at most 1 MiB -------------------------------------------------------


async def test_a_websocket_message_over_1_mib_is_closed_with_1009(guarded: RunningServer) -> None:
    tokens = TokenService(load_or_create_secret(guarded.home))
    t = tokens.issue("me", 600)
    with guarded.client(t) as c:
        sid = create(c, command="/bin/cat")["id"]
    url = f"{guarded.ws_url}/api/sessions/{sid}/ws?token={t}"
    fits = await TermClient.connect(url)
    message = json.dumps({"type": "input", "data": "x" * (MIB - 100)})
    assert len(message) <= MIB
    await fits.ws.send(message)
    await fits.send({"type": "ping"})
    await fits.until(lambda c: {"type": "pong"} in c.messages, what="pong after 1 MiB")
    over = await TermClient.connect(url)
    await over.type("x" * MIB)
    assert (await over.closed())[0] == 1009


UPGRADE = (
    b"GET /api/sessions/x/ws?token=bad HTTP/1.1\r\nHost: localhost\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


def text_frame(size: int) -> bytes:
    """One text frame of `size` bytes, masked with a zero key (the payload goes as it is)."""
    return b"\x81\xff" + size.to_bytes(8, "big") + b"\0\0\0\0" + b"x" * size


def bad_token_flood(srv: RunningServer, sockets: int, frame: bytes, seconds: float) -> int:
    """`sockets` WebSockets with a bad token, each sending `frame` again and again for
    `seconds` (or once, for 0) and never answering the close, as an attacker would (a polite
    client hangs up on the 1008). Returns the growth of the server's peak memory."""
    assert srv.process is not None
    before = peak_rss(srv.process.pid)

    def attack() -> None:
        address = ("127.0.0.1", srv.port)
        with (
            socket.create_connection(address, timeout=15 * UNIT) as sock,
            contextlib.suppress(OSError),
        ):
            sock.sendall(UPGRADE)
            assert b" 101 " in sock.recv(4096)
            end = time.monotonic() + seconds
            sock.sendall(frame)
            while time.monotonic() < end:
                sock.sendall(frame)
            while sock.recv(65536):  # until the server hangs up
                pass

    threads = [threading.Thread(target=attack) for _ in range(sockets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert health(srv) == 200
    return peak_rss(srv.process.pid) - before


def test_websockets_without_a_token_cost_no_memory(guarded: RunningServer) -> None:
    """Thirty sockets with a bad token, each sending one 16 MiB message (was +525 MB)."""
    assert bad_token_flood(guarded, 30, text_frame(16 * MIB), 0) < 64 * MIB


def test_websockets_without_a_token_are_not_read_after_the_close(guarded: RunningServer) -> None:
    """200 sockets with a bad token, each streaming 1 MiB messages (was +160 MB)."""
    assert bad_token_flood(guarded, 200, text_frame(MIB - 16), 5 * UNIT) < 32 * MIB


# -- 3. slow clients and floods: a header deadline, a cap per address -----------------------------

PARTIAL = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
"""A request whose headers never end."""


def slow_client(srv: RunningServer, first: bytes = PARTIAL) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5 * UNIT)
    if first:
        sock.sendall(first)
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server ends the connection within `within` seconds (reading what comes)."""
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def health(srv: RunningServer) -> int:
    """GET /api/health on a connection of its own."""
    try:
        return httpx.get(f"{srv.url}/api/health", timeout=5 * UNIT).status_code
    except httpx.HTTPError:
        return 0


def test_headers_that_never_end_are_cut_off(tmp_path: Path) -> None:
    deadline = 1.0 * UNIT
    srv = start_server(tmp_path / "home", "--no-auth", "--header-timeout", str(deadline))
    try:
        started = time.monotonic()
        silent = slow_client(srv, b"")  # connects and says nothing
        slow = [slow_client(srv) for _ in range(20)]
        # Between requests too: one answered request, then a trickle of empty lines.
        idle = slow_client(srv, b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert b" 200 " in idle.recv(65536)
        assert [health(srv) for _ in range(5)] == [200] * 5  # the others are answered
        for _ in range(3):
            idle.sendall(b"\r\n")
            time.sleep(deadline / 2)
        for sock in [silent, *slow, idle]:
            assert closed_by_server(sock, 5 * UNIT)
            sock.close()
        assert time.monotonic() - started < deadline + 5 * UNIT
    finally:
        srv.stop()


def test_headers_over_64_kib_are_refused(guarded: RunningServer) -> None:
    assert guarded.process is not None
    before = peak_rss(guarded.process.pid)
    sock = slow_client(guarded, b"GET /api/health HTTP/1.1\r\n")
    answer = b""
    with sock:
        try:
            for i in range(8192):  # up to 8 MiB of headers, 1 KiB each, as fast as they go
                sock.sendall(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1024))
            answer = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            answer = b"reset"  # refused while we were still sending
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b"reset", answer[:100]
    assert peak_rss(guarded.process.pid) - before < 16 * MIB
    # A request with the usual few headers is fine.
    assert health(guarded) == 200


def test_one_address_cannot_take_every_descriptor(tmp_path: Path) -> None:
    """Under a limit of 256 open files, 400 connections whose headers never end: the server
    still answers, because one address holds at most 64 and waiting ones make room."""

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    srv = start_server(
        tmp_path / "home", "--no-auth", "--max-connections-per-address", "64", preexec=few_files
    )
    slow: list[socket.socket] = []
    try:
        for _ in range(400):
            with contextlib.suppress(OSError):
                slow.append(slow_client(srv))
        answered = [health(srv) for _ in range(40)]
        assert answered == [200] * 40
    finally:
        for sock in slow:
            sock.close()
        srv.stop()


async def test_busy_connections_are_not_evicted(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--no-auth", "--max-connections-per-address", "4")
    try:
        with srv.client() as c:
            sid = create(c, command="/bin/cat")["id"]
        sockets = [
            await TermClient.connect(f"{srv.ws_url}/api/sessions/{sid}/ws") for _ in range(4)
        ]
        for t in sockets:
            await t.type("ping\r")
        await sockets[0].see("ping")
        # All four of this address's connections are busy: a fifth is refused, and they live.
        assert await asyncio.to_thread(health, srv) == 0
        await sockets[3].type("still-here\r")
        await sockets[3].see("still-here")
        await sockets[3].close()
        assert await asyncio.to_thread(
            wait_until, lambda: health(srv) == 200, 5 * UNIT, "a free slot"
        )
    finally:
        srv.stop()
