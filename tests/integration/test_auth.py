"""Authentication, share links and rate limits against a real server with auth on."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import UNIT, RunningServer, create, start_server, wait_until
from tests.integration.wsclient import TermClient
from vibetunnel.auth import TokenService, load_or_create_secret

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("home"), env={"VIBETUNNEL_PASSWORD": PASSWORD})
    try:
        yield srv
    finally:
        srv.stop()


def tokens(srv: RunningServer) -> TokenService:
    return TokenService(load_or_create_secret(srv.home))


def token(srv: RunningServer, session_id: str | None = None, expired: bool = False) -> str:
    if expired:  # issued an hour ago for a minute
        old = TokenService(load_or_create_secret(srv.home), clock=lambda: time.time() - 3600)
        return old.issue("tester", 60)
    return tokens(srv).issue("tester", 600, session_id=session_id)


def login(srv: RunningServer) -> dict[str, str]:
    with srv.client() as c:
        r = c.post("/api/auth/login", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def test_protected_routes_need_a_token(secured: RunningServer) -> None:
    with secured.client() as c:
        for method, path in [
            ("GET", "/api/sessions"),
            ("POST", "/api/sessions"),
            ("GET", "/api/recordings"),
            ("DELETE", "/api/sessions/x"),
        ]:
            r = c.request(method, path)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["code"] == "unauthorized"
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/auth/config").json() == {"authRequired": True}


@pytest.mark.parametrize("kind", ["garbage", "wrong-key", "expired", "none-alg"])
def test_bad_tokens_are_401(secured: RunningServer, kind: str) -> None:
    bad = {
        "garbage": "not.a.token",
        "wrong-key": TokenService(b"k" * 40).issue("x", 600),
        "expired": token(secured, expired=True),
        "none-alg": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
        "eyJzdWIiOiJ4IiwiaWF0IjoxLCJleHAiOjk5OTk5OTk5OTl9.",
    }[kind]
    with secured.client(bad) as c:
        r = c.get("/api/sessions")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_token_in_header_or_query(secured: RunningServer) -> None:
    t = token(secured)
    with secured.client(t) as c:
        assert c.get("/api/sessions").status_code == 200
    with secured.client() as c:
        assert c.get(f"/api/sessions?token={t}").status_code == 200


async def test_websocket_auth_failures_close_1008(secured: RunningServer) -> None:
    with secured.client(token(secured)) as c:
        sid = create(c, command="/bin/cat")["id"]
    base = f"{secured.ws_url}/api/sessions/{sid}/ws"
    other = create_other(secured)
    for url in [
        base,
        base + "?token=garbage",
        base + "?token=" + token(secured, expired=True),
        base + "?token=" + token(secured, session_id=other),
    ]:
        t = await TermClient.connect(url)
        code, _ = await t.closed()
        assert code == 1008, url
    ok = await TermClient.connect(base + "?token=" + token(secured))
    await ok.type("hi-from-token\r")
    await ok.see("hi-from-token")


def create_other(srv: RunningServer) -> str:
    with srv.client(token(srv)) as c:
        sid: str = create(c, command="/bin/cat")["id"]
    return sid


async def test_share_link_opens_its_session_only(secured: RunningServer) -> None:
    mine, theirs = create_other(secured), create_other(secured)
    share = token(secured, session_id=mine)
    with secured.client(share) as c:
        assert c.get(f"/api/sessions/{mine}").status_code == 200
        assert c.post(f"/api/sessions/{mine}/input", json={"data": "x"}).status_code == 204
        r = c.get(f"/api/sessions/{theirs}")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert c.get("/api/sessions").status_code == 403
        assert c.post("/api/sessions", json={}).status_code == 403
    t = await TermClient.connect(f"{secured.ws_url}/api/sessions/{mine}/ws?token={share}")
    await t.type("shared\r")
    await t.see("shared")
    refused = await TermClient.connect(f"{secured.ws_url}/api/sessions/{theirs}/ws?token={share}")
    assert (await refused.closed())[0] == 1008


def vibetunnel(srv: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibetunnel", *args],
        env={**os.environ, "VIBETUNNEL_HOME": str(srv.home)},
        capture_output=True,
        text=True,
        check=False,
        timeout=30 * UNIT,
    )


def test_token_command_makes_a_working_share_link(secured: RunningServer) -> None:
    sid = create_other(secured)
    done = vibetunnel(secured, "token", "--session", sid.upper(), "--ttl", "10m")
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    prefix = f"{secured.url}/sessions/{sid}?token="  # the id in its canonical form
    assert link.startswith(prefix)
    share = link[len(prefix) :]
    claims = TokenService(load_or_create_secret(secured.home)).verify(share)
    assert claims.session_id == sid and claims.exp - claims.iat == 600
    with secured.client(share) as c:
        assert c.get(f"/api/sessions/{sid}").status_code == 200
        assert c.get("/api/sessions").status_code == 403


def test_token_command_refuses_a_session_that_does_not_exist(secured: RunningServer) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    done = vibetunnel(secured, "token", "--session", missing)
    assert done.returncode == 2 and done.stdout == ""
    assert f"the server has no session {missing}" in done.stderr


def test_login_link_command_signs_in_once(secured: RunningServer) -> None:
    done = vibetunnel(secured, "login-link")
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith(f"{secured.url}/?login=")
    login_token = link.split("?login=", 1)[1]
    with secured.client() as c:
        first = c.post("/api/auth/exchange", json={"loginToken": login_token})
        assert first.status_code == 200 and first.json()["accessToken"]
        again = c.post("/api/auth/exchange", json={"loginToken": login_token})
        assert again.status_code == 401  # one time only
        # It says how to get a new one: the command that prints sign-in links.
        assert "run `vibetunnel login-link` for a new one" in again.json()["error"]["message"]


def test_login_refresh_logout_round_trip(secured: RunningServer) -> None:
    pair = login(secured)
    assert pair["tokenType"] == "Bearer" and int(pair["expiresIn"]) > 60
    with secured.client(pair["accessToken"]) as c:
        assert c.get("/api/sessions").status_code == 200
    with secured.client() as c:
        r = c.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]})
        assert r.status_code == 200
        new = r.json()
        assert new["refreshToken"] != pair["refreshToken"]
        # The old refresh token works once only; its reuse revokes the whole family.
        assert (
            c.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]}).status_code
            == 401
        )
        assert (
            c.post("/api/auth/refresh", json={"refreshToken": new["refreshToken"]}).status_code
            == 401
        )
        other = login(secured)
        assert (
            c.post("/api/auth/logout", json={"refreshToken": other["refreshToken"]}).status_code
            == 204
        )
        assert (
            c.post("/api/auth/refresh", json={"refreshToken": other["refreshToken"]}).status_code
            == 401
        )


def test_wrong_password_is_401(secured: RunningServer) -> None:
    with secured.client() as c:
        r = c.post("/api/auth/login", json={"password": "nope"})
    assert r.status_code == 401 and "password" in r.json()["error"]["message"]


def test_login_url_token_works_once(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home")
    try:
        assert srv.login_url and "/?login=" in srv.login_url
        one_time = srv.login_url.split("login=", 1)[1]
        with srv.client() as c:
            r = c.post("/api/auth/exchange", json={"loginToken": one_time})
            assert r.status_code == 200
            with srv.client(r.json()["accessToken"]) as authed:
                assert authed.get("/api/sessions").status_code == 200
            assert c.post("/api/auth/exchange", json={"loginToken": one_time}).status_code == 401
            # A login token is not an access token.
            with srv.client(one_time) as misuse:
                assert misuse.get("/api/sessions").status_code == 401
    finally:
        srv.stop()


def test_tokens_and_refresh_survive_restart_and_files_are_private(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", env={"VIBETUNNEL_PASSWORD": PASSWORD})
    try:
        pair = login(srv)
        srv.restart()
        with srv.client(pair["accessToken"]) as c:
            assert c.get("/api/sessions").status_code == 200
            r = c.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]})
            assert r.status_code == 200
        for name in ("secret", "refresh.json"):
            mode = stat.S_IMODE((srv.home / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))
        assert len((srv.home / "secret").read_text().splitlines()) == 1
    finally:
        srv.stop()


def test_rate_limit_headers_and_429(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--rate-limit", "5")
    try:
        t = token(srv)
        with srv.client(t) as c:
            seen = []
            for _ in range(5):
                r = c.get("/api/sessions")
                assert r.status_code == 200
                seen.append(int(r.headers["x-ratelimit-remaining"]))
                assert r.headers["x-ratelimit-limit"] == "5"
                assert int(r.headers["x-ratelimit-reset"]) > 1_700_000_000
            assert seen == [4, 3, 2, 1, 0]
            r = c.get("/api/sessions")
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["code"] == "too_many_requests"
        # Keyed by token subject, so another subject is not affected.
        with srv.client(TokenService(load_or_create_secret(srv.home)).issue("other", 600)) as c:
            assert c.get("/api/sessions").status_code == 200
    finally:
        srv.stop()


def test_failed_logins_limited_to_ten_a_minute(tmp_path: Path) -> None:
    srv = start_server(
        tmp_path / "home", "--rate-limit", "1000", env={"VIBETUNNEL_PASSWORD": PASSWORD}
    )
    try:
        with srv.client() as c:
            codes = [
                c.post("/api/auth/login", json={"password": "guess"}).status_code for _ in range(10)
            ]
            assert codes == [401] * 10
            r = c.post("/api/auth/login", json={"password": PASSWORD})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    finally:
        srv.stop()


def test_tokens_never_logged(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "home", "--verbose")
    try:
        t = token(srv)
        with srv.client() as c:
            assert c.get(f"/api/sessions?token={t}").status_code == 200
            wait_until(lambda: any("/api/sessions?token=[redacted]" in line for line in srv.output))
    finally:
        srv.stop()
    log = "".join(srv.output)
    assert t not in log


def test_no_auth_refuses_foreign_host_names(server: RunningServer) -> None:
    with server.client() as c:
        assert c.get("/api/sessions").status_code == 200
        r = c.get("/api/sessions", headers={"Host": "evil.example:4020"})
        assert r.status_code == 403 and "localhost" in r.json()["error"]["message"]


async def test_cross_origin_websocket_refused(server: RunningServer) -> None:
    with server.client() as c:
        sid = create(c, command="/bin/cat")["id"]
    url = f"{server.ws_url}/api/sessions/{sid}/ws"
    t = await TermClient.connect(url, origin="http://evil.example")  # type: ignore[arg-type]
    code, reason = await t.closed()
    assert code == 1008 and "origin" in reason
    same = await TermClient.connect(url, origin=server.url)  # type: ignore[arg-type]
    await same.type("same-origin\r")
    await same.see("same-origin")


def test_no_auth_warns_loudly(server: RunningServer) -> None:
    assert any("authentication is OFF" in line for line in server.output)
    # Started with --port 0: the warning names the port picked, as the listening line does.
    assert server.port != 0
    reach = f"Anyone who can reach 127.0.0.1:{server.port} gets a shell"
    assert any(line.startswith(reach) for line in server.output), server.output


async def test_read_only_share_link_watches_but_cannot_type(secured: RunningServer) -> None:
    sid = create_other(secured)
    ro = tokens(secured).issue("viewer", 600, session_id=sid, read_only=True)
    with secured.client(ro) as c:
        assert c.get(f"/api/sessions/{sid}").status_code == 200
        r = c.post(f"/api/sessions/{sid}/input", json={"data": "x"})
        assert r.status_code == 403 and "read-only" in r.json()["error"]["message"]
        assert c.delete(f"/api/sessions/{sid}").status_code == 403
    viewer = await TermClient.connect(f"{secured.ws_url}/api/sessions/{sid}/ws?token={ro}")
    await viewer.type("typed-by-viewer\r")
    await viewer.resize(33, 11)
    await viewer.send({"type": "ping"})
    await viewer.until(lambda c: {"type": "pong"} in c.messages, what="pong")
    owner = await TermClient.connect(
        f"{secured.ws_url}/api/sessions/{sid}/ws?token={token(secured)}"
    )
    await owner.type("typed-by-owner\r")
    await viewer.see("typed-by-owner")
    assert "typed-by-viewer" not in viewer.output
    with secured.client(token(secured)) as c:
        assert c.get(f"/api/sessions/{sid}").json()["cols"] == 80


def test_password_set_with_passwd_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "VIBETUNNEL_PASSWORD"}
    subprocess.run(
        [sys.executable, "-m", "vibetunnel", "passwd"],
        input="s3cret-phrase\n",
        env={**env, "VIBETUNNEL_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    stored = (home / "password").read_text()
    assert "s3cret-phrase" not in stored and stored.startswith("$argon2")
    assert stat.S_IMODE((home / "password").stat().st_mode) == 0o600
    srv = start_server(home)
    try:
        with srv.client() as c:
            assert c.post("/api/auth/login", json={"password": "wrong"}).status_code == 401
            r = c.post("/api/auth/login", json={"password": "s3cret-phrase"})
            assert r.status_code == 200 and r.json()["accessToken"]
    finally:
        srv.stop()


def test_no_cookie_and_no_body_is_a_401(secured: RunningServer) -> None:
    with secured.client() as c:
        r = c.post("/api/auth/refresh")
        assert r.status_code == 401 and "sign in" in r.json()["error"]["message"]
