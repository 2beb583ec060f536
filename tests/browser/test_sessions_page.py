"""The session list and the terminal page against a real server (--no-auth)."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import (
    MS,
    create_session,
    expect,
    open_terminal,
    page_wait,
    screenshot,
    status,
    terminal,
    type_line,
)
from tests.browser.test_pages import axe_violations
from tests.conftest import UNIT, RunningServer, wait_until


def test_create_from_form_type_and_kill(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        create_session(api, args=["-c", "sleep 300"], name="build-watch")
        done = create_session(api, args=["-c", "exit 3"], name="finished-job")
        wait_until(lambda: api.get(f"/api/sessions/{done['id']}").json()["status"] == "exited")

    page.goto(server.url)
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    page.get_by_role("button", name="New session").click()
    page.get_by_label("Command").fill("/bin/sh")
    page.get_by_label("Name", exact=True).fill("demo shell")
    page.get_by_role("button", name="Create").click()

    expect(page).to_have_url(re.compile(r"/sessions/[0-9a-f-]+$"))
    expect(status(page)).to_have_text("Connected")
    session_id = page.url.rsplit("/", 1)[1]
    page.locator(".xterm-helper-textarea").focus()
    type_line(page, "echo hello-$((6*7))")
    expect(terminal(page)).to_contain_text("hello-42")
    expect(page).to_have_title(re.compile("demo shell"))
    screenshot(page, "terminal")

    page.get_by_role("link", name="Back to sessions").click()
    card = page.locator(f"li[data-id='{session_id}']")
    expect(card).to_contain_text("demo shell")
    expect(card).to_contain_text("running")
    exited = page.locator("li.card", has_text="finished-job")
    expect(exited).to_contain_text("exited (code 3)")
    expect(exited.get_by_role("button", name="Delete")).to_be_visible()
    screenshot(page, "sessions")

    # Kill asks first; Cancel keeps the session.
    card.get_by_role("button", name="Kill").click()
    expect(card.get_by_role("group", name="Confirm kill")).to_be_visible()
    card.get_by_role("button", name="Cancel").click()
    expect(card.get_by_role("button", name="Kill")).to_be_focused()
    expect(card).to_contain_text("running")
    card.get_by_role("button", name="Kill").click()
    card.get_by_role("button", name="Yes, kill it").click()
    expect(card).to_have_count(0)
    with server.client() as api:
        assert api.get(f"/api/sessions/{session_id}").status_code == 404
    exited.get_by_role("button", name="Delete").click()
    expect(exited).to_have_count(0)


def test_form_shows_server_error(server: RunningServer, page: Any) -> None:
    page.goto(server.url)
    page.get_by_role("button", name="New session").click()
    page.get_by_label("Working directory").fill("/no/such/folder")
    page.get_by_role("button", name="Create").click()
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).not_to_have_text("")
    expect(page).to_have_url(server.url + "/")


def test_window_resize_resizes_the_pty(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api)
        open_terminal(page, server, session["id"])

        def size_if(wanted: Callable[[tuple[int, int]], bool]) -> tuple[int, int] | None:
            s = api.get(f"/api/sessions/{session['id']}").json()
            size: tuple[int, int] = (s["cols"], s["rows"])
            return size if wanted(size) else None

        # Typing makes this the tab that sets the size: it fits the session to its window.
        page.keyboard.type(" ")
        first = wait_until(lambda: size_if(lambda s: s != (80, 24)), 5 * UNIT, "the first resize")
        assert first is not None
        page.set_viewport_size({"width": 700, "height": 500})
        # Narrower and shorter: the page may report it in two steps (the width, then the height
        # once the viewport's new height is applied), so wait for where both lead.
        second = wait_until(
            lambda: size_if(lambda s: s[0] < first[0] and s[1] < first[1]),
            5 * UNIT,
            "the window's resize",
        )
        assert second is not None

    page.keyboard.press("Backspace")
    type_line(page, "stty size")
    expect(terminal(page)).to_contain_text(f"{second[1]} {second[0]}")


def test_reconnects_after_server_restart(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "echo before-$((1+1))")
    expect(terminal(page)).to_contain_text("before-2")

    server.stop(keep_sessions=True)  # the session lives on in the keeper
    expect(status(page)).to_contain_text("reconnecting")
    server.start()
    expect(status(page)).to_have_text("Connected", timeout=15 * MS)
    expect(terminal(page)).to_contain_text("before-2")  # replayed by the new server
    expect(page.get_by_role("link", name="Back to sessions")).to_be_visible()


def test_ended_session_shows_exit_code(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "exit 7")
    expect(status(page)).to_have_text("Session ended with exit code 7")


def test_unknown_session(server: RunningServer, page: Any) -> None:
    page.goto(f"{server.url}/sessions/00000000-0000-4000-8000-000000000000")
    expect(status(page)).to_contain_text("Session not found")


def test_list_updates_live_without_polling(server: RunningServer, page: Any) -> None:
    # Changes made elsewhere (another tab, a script, vt) appear on their own, pushed by the
    # server over one event stream: the page makes no further list requests.
    list_requests: list[str] = []
    page.on(
        "request",
        lambda r: list_requests.append(r.url) if r.url.endswith("/api/sessions") else None,
    )
    page.goto(server.url)
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    with server.client() as api:
        s = create_session(api, args=["-c", "read x; exit 4"], name="made-elsewhere")
        row = page.locator("li", has_text="made-elsewhere")
        expect(row).to_be_visible()
        api.post(f"/api/sessions/{s['id']}/input", json={"data": "\n"})
        expect(row).to_contain_text("code 4")
        assert api.delete(f"/api/sessions/{s['id']}").status_code == 204
    expect(row).to_have_count(0)
    assert len(list_requests) <= 1  # the first render's fetch, nothing after


def test_list_shows_the_programs_title_and_activity(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        s = create_session(
            api, args=["-c", r"printf '\033]0;compiling the docs\007'; exec cat"], name="titled"
        )
        wait_until(lambda: api.get(f"/api/sessions/{s['id']}").json()["title"], what="the title")
    page.goto(server.url)
    row = page.locator("li", has_text="titled")
    expect(row.locator(".program-title")).to_have_text("compiling the docs")
    expect(row).to_contain_text("Last output")
    violations = axe_violations(page)
    assert violations == [], violations


def test_rename_a_session(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        s = create_session(api, name="old-name")
    page.goto(server.url)
    row = page.locator("li", has_text="old-name")
    row.get_by_role("button", name="Rename").click()
    field = row.get_by_label("New name")
    expect(field).to_have_value("old-name")
    violations = axe_violations(page)
    assert violations == [], violations
    field.fill("renamed-from-the-page")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("li", has_text="renamed-from-the-page")).to_be_visible()
    with server.client() as api:
        assert api.get(f"/api/sessions/{s['id']}").json()["name"] == "renamed-from-the-page"


GEOMETRY = """() => {
  const host = document.querySelector('.term-host');
  const rows = document.querySelector('.xterm-rows');
  const screen = document.querySelector('.xterm-screen').getBoundingClientRect();
  const box = host.getBoundingClientRect();
  const top = parseFloat(getComputedStyle(host).paddingTop);
  return {
    rows: rows.children.length,
    rowHeight: screen.height / rows.children.length,
    lastBottom: rows.lastElementChild.getBoundingClientRect().bottom,
    hostBottom: box.bottom,
    room: host.clientHeight - top,
    left: screen.left,
    right: screen.right,
  };
}"""

PIXELS = """async ([png, points]) => {
  const image = new Image();
  image.src = 'data:image/png;base64,' + png;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  const g = canvas.getContext('2d');
  g.drawImage(image, 0, 0);
  return points.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3)));
}"""


def test_no_strip_of_another_colour_under_the_last_row(
    server: RunningServer, new_page: Callable[..., Any]
) -> None:
    """The rows rarely fill the terminal's height: the strip left under the last one has the
    terminal's own background, and the last row is shown whole (none is cut off)."""
    page = new_page(viewport={"width": 900, "height": 600})
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    page.keyboard.type(" ")  # this tab now sets the size: the terminal fits its window
    page_wait(page, lambda: page.locator(".term-host.watching").count() == 0, 5 * UNIT, "fit")
    first = page.evaluate(GEOMETRY)
    # Make the strip as tall as it gets but 2 px: the height where counting the host's 4 px
    # of padding as room would add a row it cannot show.
    row = round(first["rowHeight"])
    grow = (row - 2 - round(first["room"]) % row) % row
    page.set_viewport_size({"width": 900, "height": 600 + grow})
    page_wait(
        page,
        lambda: (
            (g := page.evaluate(GEOMETRY))["room"] == first["room"] + grow
            and g["rows"] == int(g["room"] // g["rowHeight"])
        ),
        5 * UNIT,
        "the terminal fitted to its new height",
    )
    g = page.evaluate(GEOMETRY)
    assert g["lastBottom"] <= g["hostBottom"]  # the last row whole
    strip = range(math.ceil(g["lastBottom"]), math.floor(g["hostBottom"]))
    assert len(strip) >= row - 3
    xs = [round(g["left"] + f * (g["right"] - g["left"] - 1)) for f in (0.0, 0.3, 0.7, 1.0)]
    # The terminal's background: an empty cell of the row above the last one.
    inside = (xs[2], math.floor(g["lastBottom"] - 1.5 * g["rowHeight"]))
    png = base64.b64encode(page.screenshot(animations="disabled")).decode()
    colours = page.evaluate(PIXELS, [png, [inside] + [[x, y] for x in xs for y in strip]])
    background, under = colours[0], colours[1:]
    assert all(c == background for c in under), (background, under)
