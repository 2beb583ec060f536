"""The terminal page on a phone-sized screen: no sideways scrolling, a usable keys bar."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import (
    create_session,
    expect,
    open_terminal,
    screenshot,
    terminal,
    type_line,
)
from tests.conftest import RunningServer

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
KEYS = ["Esc", "Tab", "Ctrl", "Up", "Down", "Left", "Right", "Ctrl-C"]
MORE_KEYS = ["Page Up", "Page Down", "Home", "End"]
SYMBOLS = {"Vertical bar": "|", "Slash": "/", "Tilde": "~", "Hyphen": "-", "Underscore": "_"}


def no_horizontal_scroll(page: Any) -> bool:
    result: bool = page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"
        " && document.body.scrollWidth <= window.innerWidth"
    )
    return result


def test_phone_layout_and_keys_bar(server: RunningServer, new_page: Callable[..., Any]) -> None:
    page = new_page(**PHONE)
    with server.client() as api:
        session = create_session(api, name="phone")
    open_terminal(page, server, session["id"])
    assert no_horizontal_scroll(page)
    for name in [*KEYS, *MORE_KEYS, *SYMBOLS]:
        button = page.get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        expect(button).to_be_in_viewport()

    # Tapping the terminal gives it the focus (which opens the phone's keyboard).
    page.locator(".xterm-helper-textarea").blur()
    page.locator(".term-host").tap()
    expect(page.locator(".xterm-helper-textarea")).to_be_focused()

    # Ctrl-C interrupts a running program: the next command runs at once.
    interrupts = page.locator(".xterm-rows > div", has_text=re.compile(r"^\^C\s*$"))
    type_line(page, "sleep 100")
    page.get_by_role("button", name="Ctrl-C", exact=True).tap()
    expect(interrupts).to_have_count(1)  # the shell is back: what comes next is a new line
    type_line(page, "echo done-$((2+3))")
    expect(terminal(page)).to_contain_text("done-5")

    # "Ctrl" is sticky: the next key typed goes out as its control character.
    type_line(page, "sleep 100")
    ctrl = page.get_by_role("button", name="Ctrl", exact=True)
    ctrl.tap()
    expect(ctrl).to_have_attribute("aria-pressed", "true")
    page.keyboard.type("c")
    expect(ctrl).to_have_attribute("aria-pressed", "false")
    expect(interrupts).to_have_count(2)
    type_line(page, "echo again-$((3+4))")
    expect(terminal(page)).to_contain_text("again-7")

    # Arrows reach the shell's line editor (bash, for readline): Left moves the cursor back.
    type_line(page, "exec bash --norc --noprofile")
    expect(terminal(page)).to_contain_text(re.compile(r"bash-[\d.]+[#$]"))
    type_line(page, "echo ready-$((5*5))")
    expect(terminal(page)).to_contain_text("ready-25")
    page.keyboard.type("echo ide-$((5*5))")
    for _ in range(len("ide-$((5*5))")):
        page.get_by_role("button", name="Left", exact=True).tap()
    page.keyboard.type("w")
    page.keyboard.press("Enter")
    expect(terminal(page)).to_contain_text("wide-25")

    # The symbols phone keyboards hide, and Home/End in the line editor.
    page.keyboard.type("echo x'")
    for name in SYMBOLS:
        page.get_by_role("button", name=name, exact=True).tap()
    page.keyboard.type("'y | rev")
    page.keyboard.press("Enter")
    expect(terminal(page)).to_contain_text("y_-~/|x")  # reversed: not the typed line
    page.keyboard.type("cho home-$((6*6))")
    page.get_by_role("button", name="Home", exact=True).tap()
    page.keyboard.type("e")
    page.get_by_role("button", name="End", exact=True).tap()
    page.keyboard.type("-end")
    page.keyboard.press("Enter")
    expect(terminal(page)).to_contain_text("home-36-end")
    assert no_horizontal_scroll(page)
    screenshot(page, "phone")


def test_keys_bar_is_for_touch_screens_only(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])  # a desktop page: mouse and keyboard
    expect(page.get_by_role("toolbar", name="Terminal keys")).to_be_hidden()


def test_phone_session_list_fits(server: RunningServer, new_page: Callable[..., Any]) -> None:
    page = new_page(**PHONE)
    with server.client() as api:
        create_session(api, name="a-rather-long-session-name-that-must-wrap-on-a-phone-screen")
    page.goto(server.url)
    expect(page.get_by_role("button", name="Kill")).to_be_visible()
    page.get_by_role("button", name="New session").tap()
    expect(page.get_by_label("Working directory")).to_be_visible()
    assert no_horizontal_scroll(page)
