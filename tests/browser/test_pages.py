"""Every page: the not-found page, the favicon, and an accessibility check (axe-core) of each
page in the states a user sees it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    expect,
    screenshot,
)
from tests.conftest import RunningServer, start_server

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "accessible"


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


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server(tmp_path / "home", env={"VIBETUNNEL_PASSWORD": PASSWORD})
    try:
        yield srv
    finally:
        srv.stop()


def test_unknown_pages_are_404_with_the_apps_page(server: RunningServer, page: Any) -> None:
    response = page.goto(f"{server.url}/nope/not/here")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page).to_have_title("Page not found · VibeTunnel")
    expect(page.locator("main")).to_contain_text("/nope/not/here")
    screenshot(page, "not-found")
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
