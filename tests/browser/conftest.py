"""Browser fixtures: Debian's Chromium driven by Playwright (sync API, plain `def` tests).

Playwright's own browser download is not used: tests run against /usr/bin/chromium, or the
browser named by $VIBETUNNEL_CHROMIUM, and fail when there is none.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import playwright.sync_api as playwright_sync
import pytest

from tests.conftest import UNIT, RunningServer, start_server

Browser = playwright_sync.Browser
Page = playwright_sync.Page
expect = playwright_sync.expect

CHROMIUM = os.environ.get("VIBETUNNEL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WEB_INDEX = Path(__file__).resolve().parents[2] / "src" / "vibetunnel" / "web" / "index.html"

# Playwright takes milliseconds; every deadline is a multiple of the shared test unit.
MS = 1000 * UNIT


# Module scope: Playwright's sync API keeps its event loop running while it is open, which
# would break the asyncio tests of other modules run after it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Failures, not skips: scripts/test.sh installs both, so a missing one is a broken setup.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    if not WEB_INDEX.exists():
        pytest.fail("the web app is not built: pip install -e . (or npm run build in frontend/)")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Make pages in fresh contexts (own sessionStorage); all closed after the test."""
    contexts: list[Any] = []

    def make(**context_options: Any) -> Any:
        options: dict[str, Any] = {"viewport": {"width": 1100, "height": 700}, **context_options}
        context = browser.new_context(**options)
        context.set_default_timeout(10 * MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()


def screenshot(page: Any, name: str, full_page: bool = False) -> None:
    """Save a screenshot for the docs (docs/screenshots/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled"
    )


def terminal(page: Any) -> Any:
    """The terminal's rendered rows (xterm's DOM renderer)."""
    return page.locator(".xterm-rows")


def status(page: Any) -> Any:
    return page.locator(".term-header [role=status]")


def open_terminal(page: Any, server: RunningServer, session_id: str, query: str = "") -> None:
    """Open a session's page and wait until its socket is up and the shell is drawn."""
    page.goto(f"{server.url}/sessions/{session_id}{query}")
    expect(status(page)).to_have_text("Connected", timeout=10 * MS)
    page.locator(".xterm-helper-textarea").focus()


def type_line(page: Any, line: str) -> None:
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def create_session(client: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("command", "/bin/sh")
    r = client.post("/api/sessions", json=body)
    assert r.status_code == 201, r.text
    session: dict[str, Any] = r.json()
    return session


def text_pattern(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text))


def page_wait(page: Any, check: Callable[[], object], timeout: float, what: str) -> None:
    """wait_until for what Playwright's events change (routes, sockets, frames): its sync API
    delivers them only while the test is inside one of its calls, so poll with the page's own
    wait instead of sleeping."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout:.1f}s waiting for {what}"
        page.wait_for_timeout(10)


PASSWORD = "correct horse"
"""The password of `auth_server`."""


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server with auth on and `PASSWORD` set."""
    srv = start_server(tmp_path / "home", env={"VIBETUNNEL_PASSWORD": PASSWORD})
    try:
        yield srv
    finally:
        srv.stop()


def access_token(srv: RunningServer) -> str:
    with srv.client() as client:
        r = client.post("/api/auth/login", json={"password": PASSWORD})
        assert r.status_code == 200, r.text
        token: str = r.json()["accessToken"]
        return token


def share_link(srv: RunningServer, session_id: str, *extra: str) -> str:
    """The whole share link `vibetunnel token --session` prints (more options in `extra`)."""
    env = {**os.environ, "VIBETUNNEL_HOME": str(srv.home)}
    out = subprocess.run(
        [sys.executable, "-m", "vibetunnel", "token", "--session", session_id, *extra],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=20 * UNIT,
    )
    link = out.stdout.strip().splitlines()[-1]
    assert link.startswith(f"{srv.url}/sessions/{session_id}?token=")
    return link
