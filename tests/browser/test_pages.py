"""Every page: the not-found page, the favicon, and an accessibility check (axe-core) of each
page in the states a user sees it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    create_session,
    expect,
    open_terminal,
    screenshot,
    status,
    type_line,
)
from tests.browser.test_phone import PHONE
from tests.conftest import RunningServer, wait_until

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Any) -> list[str]:
    """Run axe-core's rules (WCAG A and AA, and its best practices) on the page as it is."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: npm ci in frontend/")
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, { resultTypes: ['violations'] })).violations"
        ".map(v => ({ id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) }))"
    )
    return [f"{v['id']} ({v['impact']}): {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in found]


def assert_accessible(page: Any, where: str) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe on {where}:\n" + "\n".join(violations)


def test_unknown_pages_are_404_with_the_apps_page(server: RunningServer, page: Any) -> None:
    response = page.goto(f"{server.url}/nope/not/here")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page).to_have_title("Page not found · VibeTunnel")
    expect(page.locator("main")).to_contain_text("/nope/not/here")
    screenshot(page, "not-found")
    assert_accessible(page, "the not-found page")
    page.get_by_role("link", name="Back to the sessions").click()
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()

    # The API and the assets keep their JSON errors; other methods too.
    with server.client() as api:
        for method, path in [("GET", "/api/nope"), ("GET", "/assets/nope.js"), ("POST", "/nope")]:
            r = api.request(method, path)
            assert r.status_code == 404, path
            assert r.json()["error"]["code"] == "not_found", path


def test_the_app_has_a_favicon(server: RunningServer, page: Any) -> None:
    page.goto(server.url)
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href is not None
    with server.client() as api:
        r = api.get(href)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content


def test_sign_in_page_is_accessible(
    auth_server: RunningServer, new_page: Callable[..., Any]
) -> None:
    for options in ({}, PHONE):
        page = new_page(**options)
        page.goto(auth_server.url)
        expect(page.get_by_label("Password")).to_be_visible()
        assert_accessible(page, f"the sign-in page {options.get('viewport', '')}")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_be_visible()
        assert_accessible(page, "the sign-in page with its error")


def test_sessions_page_is_accessible(server: RunningServer, new_page: Callable[..., Any]) -> None:
    with server.client() as api:
        create_session(api, name="running one", args=["-c", "sleep 300"])
        done = create_session(api, name="done", args=["-c", "exit 2"])
        wait_until(lambda: api.get(f"/api/sessions/{done['id']}").json()["status"] == "exited")
    for name, options in (("desktop", {}), ("phone", PHONE)):
        page = new_page(**options)
        page.goto(server.url)
        expect(page.locator("li.card", has_text="done")).to_contain_text("exited (code 2)")
        assert_accessible(page, f"the sessions page ({name})")
        page.get_by_role("button", name="New session").click()
        page.locator("li.card", has_text="running one").get_by_role("button", name="Kill").click()
        expect(page.get_by_role("group", name="Confirm kill")).to_be_visible()
        assert_accessible(page, f"the sessions page with its form and a confirmation ({name})")
        if name == "phone":
            screenshot(page, "phone-sessions", full_page=True)


def test_terminal_page_is_accessible(server: RunningServer, new_page: Callable[..., Any]) -> None:
    with server.client() as api:
        session = create_session(api, name="a11y")
    for name, options in (("desktop", {}), ("phone", PHONE)):
        page = new_page(**options)
        open_terminal(page, server, session["id"])
        type_line(page, "printf '\\033[31mred \\033[34mblue \\033[2mdim\\033[0m\\n'; ls -la /")
        expect(page.locator(".xterm-rows")).to_contain_text("red blue dim")
        assert_accessible(page, f"the terminal page ({name})")
        page.keyboard.press("Control+Shift+F")
        page.get_by_role("searchbox", name="Search the terminal").fill("blue")
        assert_accessible(page, f"the terminal page searching ({name})")
    page.goto(f"{server.url}/sessions/00000000-0000-4000-8000-000000000000")
    expect(status(page)).to_contain_text("Session not found")
    assert_accessible(page, "the terminal page of a missing session")


def test_recordings_page_is_accessible(server: RunningServer, new_page: Callable[..., Any]) -> None:
    with server.client() as api:
        s = create_session(api, name="played", args=["-c", "echo played-$((2+5)); sleep 0.2"])
        wait_until(lambda: api.get(f"/api/sessions/{s['id']}").json()["status"] == "exited")
        wait_until(lambda: any(r["id"] == s["id"] for r in api.get("/api/recordings").json()))
    for name, options in (("desktop", {}), ("phone", PHONE)):
        page = new_page(**options)
        page.goto(f"{server.url}/recordings")
        card = page.locator(f"li[data-id='{s['id']}']")
        expect(card).to_be_visible()
        assert_accessible(page, f"the recordings page ({name})")
        card.get_by_role("button", name="Play").click()
        player = page.get_by_role("region", name="Player")
        expect(player).to_contain_text("played-7")
        # The player fits the window: as wide as the page and no taller than the screen.
        box = player.locator(".ap-player").bounding_box()
        viewport = page.viewport_size
        assert box is not None and viewport is not None
        assert box["width"] <= viewport["width"] and box["height"] <= viewport["height"]
        assert_accessible(page, f"the recordings page playing ({name})")
        if name == "phone":
            screenshot(page, "phone-recordings")
