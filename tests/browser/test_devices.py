"""Several devices on one session: only the one typing (or pressing Fit) sets its size.

Every page's socket is watched (Playwright's `framesent`), so a test sees each resize message
a page sends, not only the size the server ends up with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import (
    MS,
    access_token,
    create_session,
    expect,
    open_terminal,
    page_wait,
    screenshot,
    share_link,
    status,
    terminal,
    type_line,
)
from tests.browser.test_phone import PHONE
from tests.conftest import UNIT, RunningServer, wait_until

DESKTOP_SIZE = (120, 40)


def resizes_sent(page: Any) -> list[tuple[int, int]]:
    """Every resize message the page sends on its session sockets, from now on."""
    sent: list[tuple[int, int]] = []

    def on_socket(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, str) and '"resize"' in payload:
                message = json.loads(payload)
                sent.append((message["cols"], message["rows"]))

        ws.on("framesent", on_frame)

    page.on("websocket", on_socket)
    return sent


def session_size(
    server: RunningServer, session_id: str, token: str | None = None
) -> tuple[int, int]:
    with server.client(token) as api:
        s = api.get(f"/api/sessions/{session_id}").json()
    return (s["cols"], s["rows"])


def size_label(page: Any) -> Any:
    return page.locator(".term-header .term-size")


def fit_button(page: Any) -> Any:
    return page.get_by_role("button", name="Fit the session to this window")


def font_px(page: Any) -> float:
    size: str = page.evaluate("getComputedStyle(document.querySelector('.xterm-rows')).fontSize")
    return float(size.removesuffix("px"))


def test_a_phone_watching_a_desktop_session_leaves_its_size_alone(
    server: RunningServer, new_page: Callable[..., Any]
) -> None:
    with server.client() as api:
        session = create_session(api, name="desktop work")
    sid = session["id"]
    desktop = new_page(viewport={"width": 800, "height": 500})
    desktop_resizes = resizes_sent(desktop)
    open_terminal(desktop, server, sid)
    # Opening is watching: the desktop shows 80x24 and sends nothing...
    expect(size_label(desktop)).to_have_text("80×24")
    expect(fit_button(desktop)).to_have_attribute("aria-pressed", "false")
    # ...until the user types: then it fits the session to its window.
    type_line(desktop, "seq 1 60; seq -s ' ' 1 70; echo desk-$((4*5))")
    expect(terminal(desktop)).to_contain_text("desk-20")
    expect(fit_button(desktop)).to_have_attribute("aria-pressed", "true")
    desk = wait_until(
        lambda: (s := session_size(server, sid)) != (80, 24) and s, 5 * UNIT, "the desktop's size"
    )
    page_wait(desktop, lambda: desktop_resizes[-1:] == [desk], 5 * UNIT, "the desktop's resize")

    phone = new_page(**PHONE)
    phone_resizes = resizes_sent(phone)
    open_terminal(phone, server, sid)
    expect(terminal(phone)).to_contain_text("desk-20")
    # The phone renders the session at the desktop's size, shrunk to its narrow window...
    expect(size_label(phone)).to_have_text(f"{desk[0]}×{desk[1]}")
    expect(fit_button(phone)).to_have_attribute("aria-pressed", "false")
    wait_until(lambda: font_px(phone) < 12, 5 * UNIT, "the phone's font to shrink")
    fits = phone.evaluate(
        "() => { const s = document.querySelector('.xterm-screen').getBoundingClientRect();"
        " const h = document.querySelector('.term-host').getBoundingClientRect();"
        " return s.right <= h.right + 1 && s.bottom <= h.bottom + 1; }"
    )
    assert fits, "the whole session shows in the phone's window"
    screenshot(phone, "phone-watching")
    # ...turning the phone lays it out again (a smaller font), still without a resize.
    before = font_px(phone)
    phone.set_viewport_size({"width": 844, "height": 390})
    wait_until(lambda: font_px(phone) != before, 5 * UNIT, "the phone's new layout")
    assert phone_resizes == []
    assert session_size(server, sid) == desk
    phone.set_viewport_size({"width": 390, "height": 844})

    # The phone's user types: now the phone sets the size, and the desktop watches it.
    phone.get_by_role("button", name="Tab", exact=True).tap()
    phone_size = wait_until(
        lambda: (s := session_size(server, sid)) != desk and s, 5 * UNIT, "the phone's size"
    )
    assert phone_size[0] < desk[0]
    expect(fit_button(phone)).to_have_attribute("aria-pressed", "true")
    expect(size_label(desktop)).to_have_text(f"{phone_size[0]}×{phone_size[1]}")
    expect(fit_button(desktop)).to_have_attribute("aria-pressed", "false")
    screenshot(desktop, "desktop-watching")
    sent_by_desktop = len(desktop_resizes)

    # Fit on the desktop takes it back; the phone goes back to watching.
    fit_button(desktop).click()
    expect(size_label(desktop)).to_have_text(f"{desk[0]}×{desk[1]}")
    wait_until(lambda: session_size(server, sid) == desk, 5 * UNIT, "the desktop's size again")
    expect(fit_button(phone)).to_have_attribute("aria-pressed", "false")
    expect(size_label(phone)).to_have_text(f"{desk[0]}×{desk[1]}")
    page_wait(desktop, lambda: desktop_resizes[sent_by_desktop:] == [desk], 5 * UNIT, "one resize")


def test_a_session_made_in_the_form_fits_its_window_at_once(
    server: RunningServer, page: Any
) -> None:
    sent = resizes_sent(page)
    page.goto(server.url)
    page.get_by_role("button", name="New session").click()
    page.get_by_label("Command").fill("/bin/sh")
    page.get_by_role("button", name="Create").click()
    expect(status(page)).to_have_text("Connected")
    expect(fit_button(page)).to_have_attribute("aria-pressed", "true")
    sid = page.url.rsplit("/", 1)[1]
    page_wait(page, lambda: sent and session_size(server, sid) == sent[-1], 5 * UNIT, "the fit")
    size = sent[-1]
    expect(size_label(page)).to_have_text(f"{size[0]}×{size[1]}")
    # A reload is only opening the page again: it watches.
    page.reload()
    expect(status(page)).to_have_text("Connected")
    expect(fit_button(page)).to_have_attribute("aria-pressed", "false")


def test_a_read_only_link_follows_the_size_and_never_sets_it(
    auth_server: RunningServer, new_page: Callable[..., Any]
) -> None:
    token = access_token(auth_server)
    with auth_server.client(token) as api:
        sid = create_session(api, cols=DESKTOP_SIZE[0], rows=DESKTOP_SIZE[1])["id"]
    phone = new_page(**PHONE)
    sent = resizes_sent(phone)
    phone.goto(share_link(auth_server, sid, "--read-only"))
    expect(status(phone)).to_have_text("Connected", timeout=10 * MS)
    expect(size_label(phone)).to_have_text("120×40")
    expect(fit_button(phone)).to_be_hidden()
    phone.locator(".xterm-helper-textarea").focus()
    phone.keyboard.type("x")
    # The owner resizes elsewhere: the watcher follows (over the session's own event stream,
    # which a share link may open).
    with auth_server.client(token) as api:
        r = api.post(f"/api/sessions/{sid}/resize", json={"cols": 100, "rows": 30})
        assert r.status_code == 200
    expect(size_label(phone)).to_have_text("100×30")
    assert sent == []
    assert session_size(auth_server, sid, token) == (100, 30)
