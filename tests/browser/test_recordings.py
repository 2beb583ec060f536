"""The recordings page: every session is recorded, and plays back in the page."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import create_session, expect, screenshot
from tests.conftest import RunningServer, wait_until


def test_play_a_recording(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(
            api, args=["-c", "printf 'recorded-%s\\n' $((3*3)); sleep 0.2"], name="recorded demo"
        )
        sid = session["id"]
        wait_until(lambda: api.get(f"/api/sessions/{sid}").json()["status"] == "exited")
        wait_until(lambda: any(r["id"] == sid for r in api.get("/api/recordings").json()))

    page.goto(server.url)
    page.get_by_role("link", name="Recordings").click()
    expect(page.get_by_role("heading", name="Recordings")).to_be_visible()
    card = page.locator(f"li[data-id='{sid}']")
    expect(card).to_be_visible()
    card.get_by_role("button", name="Play").click()

    player = page.get_by_role("region", name="Player")
    expect(player.locator(".ap-player")).to_be_visible()
    expect(player).to_contain_text("recorded-9")
    screenshot(page, "recordings", full_page=True)

    player.get_by_role("button", name="Close player").click()
    expect(player).to_be_hidden()
