"""Signing in: the password form, the server's login URL, and share links scoped to a session."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import (
    PASSWORD,
    access_token,
    create_session,
    expect,
    screenshot,
    share_link,
    status,
    terminal,
    type_line,
)
from tests.conftest import RunningServer


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
    auth_server: RunningServer, page: Any
) -> None:
    assert auth_server.login_url is not None
    page.goto(auth_server.login_url)
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    assert "login=" not in page.url


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


def test_one_sign_in_serves_every_tab_and_rotates(auth_server: RunningServer, page: Any) -> None:
    page.goto(auth_server.url)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    first = refresh_cookie(page)
    assert first
    # Nothing a page script can read holds a token of a sign-in.
    assert page.evaluate("() => sessionStorage.getItem('vibetunnel.tokens')") is None
    # A new tab of the same browser (a middle-click on "Open") needs no sign-in.
    tab = page.context.new_page()
    tab.goto(auth_server.url)
    expect(tab.get_by_role("heading", name="Sessions")).to_be_visible()
    expect(tab.get_by_label("Password")).to_have_count(0)
    rotated = refresh_cookie(tab)
    assert rotated and rotated != first  # each renewal rotates the refresh token
    with auth_server.client() as client:  # and the spent one is refused
        r = client.post("/api/auth/refresh", json={"refreshToken": first})
        assert r.status_code == 401
    tab.close()


def test_sign_out_ends_the_browser_sign_in(auth_server: RunningServer, page: Any) -> None:
    page.goto(auth_server.url)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Password")).to_be_visible()
    assert refresh_cookie(page) is None
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
