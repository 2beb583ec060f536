"""Limits at the edge (contract "Limits at the edge"), against a real server, as an attacker on
the same machine would try them: spoofed addresses, huge bodies, slow clients and floods."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import RunningServer, create, start_server, wait_until
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
