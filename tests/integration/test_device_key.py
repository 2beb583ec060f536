"""A browser's sign-in is bound to its device key (auth/proof.py), against real servers: one
keeping its refresh tokens in refresh.json, one in a real redis-server (`--redis`).

Browsers send a host's cookies to every port of it, so whatever the browser keeps for its
sign-in, replayed by another program (here an httpx client that sends only the cookie), must
yield no token and change nothing."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.redis_server import RedisServer, free_port
from vibetunnel.auth import LOGIN_TOKEN_TTL, TokenService
from vibetunnel.auth.proof import b64url, make_proof

PASSWORD = "correct horse battery staple"
SECRET = secrets.token_urlsafe(48)
COOKIE = "vibetunnel_refresh"


@pytest.fixture(scope="module", params=["file", "redis"])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    redis: RedisServer | None = None
    args = ["--rate-limit", "10000"]
    if request.param == "redis":
        redis = RedisServer(port=free_port(), folder=tmp_path_factory.mktemp("redis")).start()
        args += ["--redis", redis.url, "--node", "solo"]
    env = {"VIBETUNNEL_PASSWORD": PASSWORD, "VIBETUNNEL_JWT_SECRET": SECRET}
    try:
        server = start_server(tmp_path_factory.mktemp("home"), *args, env=env)
        try:
            yield server
        finally:
            server.stop()
    finally:
        if redis is not None:
            redis.stop()


def new_key() -> str:
    return b64url(secrets.token_bytes(32))


class Browser:
    """What a browser holds for a sign-in: its cookie jar and its device key."""

    def __init__(self, srv: RunningServer) -> None:
        self.srv = srv
        self.key = new_key()
        self.http = srv.client()

    def close(self) -> None:
        self.http.close()

    def sign_in(self) -> dict[str, Any]:
        r = self.http.post("/api/auth/login", json={"password": PASSWORD, "deviceKey": self.key})
        assert r.status_code == 200, r.text
        assert self.cookie == r.json()["refreshToken"]
        body: dict[str, Any] = r.json()
        return body

    @property
    def cookie(self) -> str | None:
        return self.http.cookies.get(COOKIE)

    def nonce(self) -> str:
        r = self.http.post("/api/auth/nonce")
        assert r.status_code == 200, r.text
        assert r.json()["expiresIn"] == 60
        nonce: str = r.json()["nonce"]
        return nonce

    def proof(self, purpose: str, key: str | None = None, nonce: str | None = None) -> Any:
        nonce = nonce or self.nonce()
        return {
            "X-Refresh-Nonce": nonce,
            "X-Refresh-Proof": make_proof(key or self.key, nonce, purpose),
        }

    def refresh(self) -> httpx.Response:
        """What the web app does: a body-less refresh with the cookie and a fresh proof."""
        return self.http.post("/api/auth/refresh", headers=self.proof("refresh"))

    def still_signed_in(self) -> None:
        before = self.cookie
        r = self.refresh()
        assert r.status_code == 200, r.text
        assert self.cookie == r.json()["refreshToken"] != before
        with self.srv.client(r.json()["accessToken"]) as tab:
            assert tab.get("/api/sessions").status_code == 200


@pytest.fixture
def browser(srv: RunningServer) -> Iterator[Browser]:
    b = Browser(srv)
    b.sign_in()
    try:
        yield b
    finally:
        b.close()


def thief(srv: RunningServer, cookie: str | None, **headers: str) -> httpx.Client:
    """Another program on the machine: it sends what it was given, and no more."""
    sent = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    return httpx.Client(base_url=srv.url, headers={**sent, **headers})


def test_a_browser_sign_in_sets_the_cookie_and_each_tab_refreshes_with_a_proof(
    srv: RunningServer, browser: Browser
) -> None:
    r = browser.http.post("/api/auth/login", json={"password": PASSWORD, "deviceKey": browser.key})
    cookie = r.headers["set-cookie"].lower()
    for attribute in (f"{COOKIE}=", "httponly", "samesite=strict", "path=/api/auth"):
        assert attribute in cookie
    first = browser.cookie
    browser.still_signed_in()  # a new tab: the cookie and a proof sign it in
    browser.still_signed_in()  # the rotated cookie works in turn
    with thief(srv, None) as spec_client:  # the spent one is spent
        r = spec_client.post("/api/auth/refresh", json={"refreshToken": first})
        assert r.status_code == 401
    out = browser.http.post("/api/auth/logout", headers=browser.proof("logout"))
    assert out.status_code == 204
    assert browser.cookie is None
    assert browser.refresh().status_code == 401


def test_the_cookie_alone_yields_no_token_and_ends_nothing(
    srv: RunningServer, browser: Browser
) -> None:
    stolen = browser.cookie
    with thief(srv, stolen) as other:
        for path in ("/api/auth/refresh", "/api/auth/logout"):
            r = other.post(path)
            assert r.status_code == 401, (path, r.text)
            assert "X-Refresh-Proof" in r.json()["error"]["message"]
            assert "set-cookie" not in r.headers
            # The stolen value in a body, as the spec's clients send it: the same.
            r = other.post(path, json={"refreshToken": stolen})
            assert r.status_code == 401, (path, r.text)
    browser.still_signed_in()  # nothing was spent, nothing revoked
    # The cookie it stole is spent now: its replay would revoke the family, were it honoured.
    with thief(srv, stolen) as other:
        assert other.post("/api/auth/refresh").status_code == 401
        assert other.post("/api/auth/refresh", json={"refreshToken": stolen}).status_code == 401
    browser.still_signed_in()


def bad_proofs(browser: Browser, purpose: str) -> dict[str, Any]:
    tokens = TokenService(SECRET.encode())
    old = TokenService(SECRET.encode(), clock=lambda: time.time() - 3600)
    fresh = browser.nonce()
    other = "logout" if purpose == "refresh" else "refresh"
    foreign = {
        "access token": tokens.issue("tester", 600),
        "login token": tokens.issue("tester", LOGIN_TOKEN_TTL, kind="login"),
        "another server's nonce": TokenService(b"k" * 40).issue("proof", 60, kind="nonce"),
        "expired nonce": old.issue("proof", 60, kind="nonce"),
    }
    cases = {
        "another key": browser.proof(purpose, key=new_key()),
        "another purpose": browser.proof(other),
        "no proof": {"X-Refresh-Nonce": fresh},
        "no nonce": {"X-Refresh-Proof": browser.proof(purpose, nonce=fresh)["X-Refresh-Proof"]},
        "another nonce": {**browser.proof(purpose), "X-Refresh-Nonce": browser.nonce()},
    }
    for name, nonce in foreign.items():
        cases[name] = browser.proof(purpose, nonce=nonce)
    return cases


@pytest.mark.parametrize("purpose", ["refresh", "logout"])
def test_a_bad_proof_is_401_and_changes_nothing(
    srv: RunningServer, browser: Browser, purpose: str
) -> None:
    for name, headers in bad_proofs(browser, purpose).items():
        for body in (None, {"refreshToken": browser.cookie}):
            r = browser.http.post(f"/api/auth/{purpose}", headers=headers, json=body)
            assert r.status_code == 401, (name, body, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            assert "set-cookie" not in r.headers, name
    browser.still_signed_in()


def test_a_proof_by_body_works_too(srv: RunningServer, browser: Browser) -> None:
    """A key-bound token sent in the body needs the same proof, and the proof suffices."""
    token = browser.cookie
    with thief(srv, None, **browser.proof("refresh")) as client:
        r = client.post("/api/auth/refresh", json={"refreshToken": token})
    assert r.status_code == 200, r.text
    with thief(srv, None, **browser.proof("logout")) as client:
        r = client.post("/api/auth/logout", json={"refreshToken": r.json()["refreshToken"]})
    assert r.status_code == 204
    assert browser.refresh().status_code == 401  # logged out: the family is gone


def test_a_nonce_is_not_an_access_token(srv: RunningServer, browser: Browser) -> None:
    nonce = browser.nonce()
    with srv.client(nonce) as c:
        r = c.get("/api/sessions")
        assert r.status_code == 401 and "wrong token kind" in r.json()["error"]["message"]
        assert c.get(f"/api/sessions?token={nonce}").status_code == 401
    with srv.client() as c:
        r = c.post("/api/auth/exchange", json={"loginToken": nonce})
        assert r.status_code == 401


@pytest.mark.parametrize(
    "key",
    [
        "",
        b64url(bytes(31)),
        b64url(bytes(33)),
        b64url(bytes(32)) + "=",
        "A" * 42 + "B",
        "é" * 43,
        123,
        ["A" * 43],
    ],
)
def test_a_malformed_device_key_is_a_400_naming_it(srv: RunningServer, key: object) -> None:
    with srv.client() as c:
        r = c.post("/api/auth/login", json={"password": PASSWORD, "deviceKey": key})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["message"].startswith("deviceKey:")
        assert "set-cookie" not in r.headers
        login = TokenService(SECRET.encode()).issue("tester", LOGIN_TOKEN_TTL, kind="login")
        r = c.post("/api/auth/exchange", json={"loginToken": login, "deviceKey": key})
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("deviceKey:")


def test_a_sign_in_without_a_device_key_sets_no_cookie_and_works_as_before(
    srv: RunningServer,
) -> None:
    login = TokenService(SECRET.encode()).issue("tester", LOGIN_TOKEN_TTL, kind="login")
    with srv.client() as c:
        by_password = c.post("/api/auth/login", json={"password": PASSWORD})
        by_link = c.post("/api/auth/exchange", json={"loginToken": login})
        for r in (by_password, by_link):
            assert r.status_code == 200, r.text
            assert "set-cookie" not in r.headers
            assert set(r.json()) == {"accessToken", "refreshToken", "expiresIn", "tokenType"}
        assert not c.cookies
        pair = by_password.json()
        with srv.client(pair["accessToken"]) as authed:
            assert authed.get("/api/sessions").status_code == 200
        r = c.post("/api/auth/refresh", json={"refreshToken": pair["refreshToken"]})
        assert r.status_code == 200 and "set-cookie" not in r.headers
        newest = r.json()["refreshToken"]
        # Its token is never taken from a cookie: one planted by hand yields nothing.
        with thief(srv, newest) as planted:
            assert planted.post("/api/auth/refresh").status_code == 401
            assert planted.post("/api/auth/logout").status_code == 401
        r = c.post("/api/auth/refresh", json={"refreshToken": newest})
        assert r.status_code == 200
        r = c.post("/api/auth/logout", json={"refreshToken": r.json()["refreshToken"]})
        assert r.status_code == 204
        assert c.post("/api/auth/logout", json={"refreshToken": "unknown"}).status_code == 204
        r = c.post("/api/auth/refresh", json={"refreshToken": by_link.json()["refreshToken"]})
        assert r.status_code == 200


@pytest.mark.parametrize("origin", ["http://127.0.0.1:9", "http://localhost:{port}", "null"])
def test_the_cookie_from_a_page_of_another_origin_is_refused(
    srv: RunningServer, browser: Browser, origin: str
) -> None:
    """With a valid proof even: the Origin alone refuses it, before anything else."""
    foreign = {"Origin": origin.format(port=srv.port)}
    for purpose in ("refresh", "logout"):
        headers = {**browser.proof(purpose), **foreign}
        r = browser.http.post(f"/api/auth/{purpose}", headers=headers)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden" and "origin" in r.json()["error"]["message"]
        assert "set-cookie" not in r.headers
    # The page's own origin is no foreign one.
    own = {**browser.proof("refresh"), "Origin": srv.url}
    r = browser.http.post("/api/auth/refresh", headers=own)
    assert r.status_code == 200, r.text
    browser.still_signed_in()


def test_the_routes_describe_themselves(srv: RunningServer) -> None:
    with srv.client() as c:
        doc = c.get("/api/openapi.json").json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    assert "nonce" in schemas["Nonce"]["properties"]
    assert paths["/api/auth/nonce"]["post"]["responses"]["200"]
    for route in ("refresh", "logout"):
        operation = paths[f"/api/auth/{route}"]["post"]
        given = {(p["in"], p["name"]) for p in operation["parameters"]}
        assert given == {
            ("header", "X-Refresh-Nonce"),
            ("header", "X-Refresh-Proof"),
            ("cookie", COOKIE),
        }
        assert {"401", "403"} <= set(operation["responses"])
    for body in ("LoginBody", "ExchangeBody"):
        assert "deviceKey" in schemas[body]["properties"]
