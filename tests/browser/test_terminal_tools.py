"""The terminal page's tools: search, copy, text size, the program's title, notifications,
full screen."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import (
    MS,
    create_session,
    expect,
    open_terminal,
    screenshot,
    terminal,
    type_line,
)
from tests.conftest import RunningServer

# Observes the page's notifications: each one the app makes is counted, then shown as usual.
COUNT_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notifications = [];
  const Counted = function (title, options) {
    window.__notifications.push({ title, body: (options && options.body) || "" });
    return new Real(title, options);
  };
  Counted.prototype = Real.prototype;
  Object.defineProperty(Counted, "permission", { get: () => Real.permission });
  Counted.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Counted;
})();
"""


def tool(page: Any, name: str) -> Any:
    return page.get_by_role("toolbar", name="Terminal tools").get_by_role("button", name=name)


def font_px(page: Any) -> float:
    size: str = page.evaluate("getComputedStyle(document.querySelector('.xterm-rows')).fontSize")
    return float(size.removesuffix("px"))


def test_search_the_scrollback(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "seq 1 200; echo needle-$((6*7)); seq 1000 1300; echo done-$((1+1))")
    expect(terminal(page)).to_contain_text("done-2")
    expect(terminal(page)).not_to_contain_text("needle-42")  # scrolled far away

    page.keyboard.press("Control+Shift+F")
    box = page.get_by_role("searchbox", name="Search the terminal")
    expect(box).to_be_focused()
    box.fill("needle-42")
    counter = page.locator(".search-count")
    expect(counter).to_have_text("1 of 1")
    expect(terminal(page)).to_contain_text("needle-42")  # scrolled to the match
    screenshot(page, "terminal-search")
    box.fill("no-such-text")
    expect(counter).to_have_text("No matches")
    box.press("Escape")
    expect(box).to_be_hidden()
    expect(page.locator(".xterm-helper-textarea")).to_be_focused()
    # The toolbar's button opens it too; Enter walks up through the matches.
    tool(page, "Search (Ctrl+Shift+F)").click()
    expect(box).to_be_focused()
    box.fill("1299")
    box.press("Enter")
    expect(counter).to_have_text(re.compile(r"^\d+ of \d+$"))


def test_copy_the_selection_or_the_screen(
    server: RunningServer, new_page: Callable[..., Any]
) -> None:
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "echo copy-$((8*8)) other-$((1+2))")
    row = page.locator(".xterm-rows > div", has_text=re.compile(r"^copy-64 other-3"))
    expect(row).to_be_visible()
    # A double click selects a word; Copy puts it on the clipboard.
    box = row.bounding_box()
    assert box is not None
    page.mouse.dblclick(box["x"] + 10, box["y"] + box["height"] / 2)
    tool(page, "Copy the selection, or the screen").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "copy-64"
    # Ctrl+Shift+C copies the selection too (Ctrl+C stays the terminal's interrupt).
    page.mouse.dblclick(box["x"] + 80, box["y"] + box["height"] / 2)
    page.keyboard.press("Control+Shift+C")
    page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'other-3'")
    # With nothing selected, Copy takes the whole screen (what a phone can hardly select).
    page.mouse.click(box["x"] + 400, box["y"] + 200)
    tool(page, "Copy the selection, or the screen").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_have_text("Copied the screen")
    copied: str = page.evaluate("navigator.clipboard.readText()")
    assert "echo copy-$((8*8))" in copied and "copy-64 other-3" in copied


def test_text_size_is_remembered(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    start = font_px(page)
    tool(page, "Larger text").click()
    tool(page, "Larger text").click()
    expect(page.locator(".xterm-rows")).to_have_css("font-size", f"{start + 2:g}px")
    assert page.evaluate("localStorage.getItem('vibetunnel.fontSize')") == f"{start + 2:g}"
    page.reload()
    expect(page.locator(".xterm-rows")).to_have_css("font-size", f"{start + 2:g}px")
    tool(page, "Smaller text").click()
    expect(page.locator(".xterm-rows")).to_have_css("font-size", f"{start + 1:g}px")


def test_the_programs_title_names_the_page(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api, name="titled")
    open_terminal(page, server, session["id"])
    expect(page).to_have_title("titled · VibeTunnel")
    type_line(page, "printf '\\033]2;%s\\007' build-$((3*3))")  # OSC 2: the window title
    expect(page).to_have_title("build-9 · VibeTunnel")
    expect(page.get_by_role("heading", level=1)).to_have_text("build-9")
    type_line(page, "printf '\\033]0;%s\\007' edit-$((2*2))")  # OSC 0: icon name and title
    expect(page).to_have_title("edit-4 · VibeTunnel")


def test_bell_and_exit_notify_when_the_tab_is_not_in_front(
    server: RunningServer, new_page: Callable[..., Any], browser: Any
) -> None:
    page = new_page(permissions=["notifications"])
    page.add_init_script(COUNT_NOTIFICATIONS)
    with server.client() as api:
        session = create_session(api, name="belly")
    sid = session["id"]
    open_terminal(page, server, sid)
    notify = tool(page, "Notify me of bells and exit")
    expect(notify).to_have_attribute("aria-pressed", "true")  # the browser allows them

    # In front: the bell flashes the terminal, and no notification interrupts the user.
    type_line(page, "printf '\\a'")
    expect(page.locator(".term-stage.bell")).to_have_count(1)
    assert page.evaluate("window.__notifications.length") == 0

    # Another tab in front: the bell and the exit are notified.
    other = page.context.new_page()
    other.bring_to_front()
    page.context.new_cdp_session(page).send(
        "Emulation.setFocusEmulationEnabled", {"enabled": False}
    )
    assert page.evaluate("document.hasFocus()") is False
    with server.client() as api:
        api.post(f"/api/sessions/{sid}/input", json={"data": "printf '\\a'\n"})
        page.wait_for_function("window.__notifications.length === 1")
        api.post(f"/api/sessions/{sid}/input", json={"data": "exit 5\n"})
        page.wait_for_function("window.__notifications.length === 2")
    notes = page.evaluate("window.__notifications")
    assert notes[0]["title"] == "Bell: belly"
    assert notes[1] == {"title": "belly ended", "body": "The session ended with exit code 5."}

    # The same button turns them off, and the choice is remembered.
    page.bring_to_front()
    notify.click()
    expect(notify).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("localStorage.getItem('vibetunnel.notify')") == "off"


def test_full_screen(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    button = tool(page, "Full screen")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("document.fullscreenElement === document.documentElement")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("document.fullscreenElement") is None


def test_emoji_take_two_cells_as_programs_expect(server: RunningServer, page: Any) -> None:
    # Unicode 11 widths (the unicode11 addon): an emoji is two cells wide, as wcwidth() says
    # in the program; with xterm's default (Unicode 6) tables it took one and lines drifted.
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "printf '\\360\\237\\216\\211\\360\\237\\216\\211|END\\n'")  # two 🎉
    # The command's echo holds "|END" too: wait for the output's row, not just the text.
    column: float = page.wait_for_function(
        """() => {
          const rows = document.querySelector('.xterm-rows');
          const walker = document.createTreeWalker(rows, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const at = node.textContent.indexOf('|END');
            if (at < 0 || node.parentElement.closest('div').textContent.startsWith('#')) continue;
            const range = document.createRange();
            range.setStart(node, at);
            range.setEnd(node, at + 1);
            const row = node.parentElement.closest('div').getBoundingClientRect();
            return range.getBoundingClientRect().left - row.left + 0.001;  // truthy at 0
          }
          return false;
        }""",
        timeout=10 * MS,
    ).json_value()
    cell_width: float = page.evaluate(
        "() => document.querySelector('.xterm-screen').getBoundingClientRect().width"
        " / Number(document.querySelector('.term-size').textContent.split('×')[0])"
    )
    assert abs(column / cell_width - 4) < 0.5, (column, cell_width)
