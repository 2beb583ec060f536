"""A flood in the browser: the page acks what it has painted (docs/protocol.md, "Flow
control"), so a Ctrl-C during `yes` brings back a prompt that works."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import (
    MS,
    create_session,
    expect,
    open_terminal,
    page_wait,
    status,
    terminal,
    type_line,
)
from tests.conftest import RunningServer

ROWS_OF_Y = """() => [...document.querySelectorAll('.xterm-rows > div')]
    .filter((row) => row.textContent.trim() === 'y').length"""


def test_ctrl_c_during_yes_brings_a_working_prompt(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(
            api, command="/bin/bash", args=["--norc", "--noprofile"], env={"PS1": "ready$ "}
        )
    open_terminal(page, server, session["id"])
    expect(terminal(page)).to_contain_text("ready$")
    type_line(page, "yes")
    page_wait(page, lambda: page.evaluate(ROWS_OF_Y) > 10, 20 * MS / 1000, "a screen of y")
    page.keyboard.press("Control+c")
    type_line(page, "echo after-$((6*7))")
    expect(terminal(page)).to_contain_text("after-42", timeout=30 * MS)
    expect(status(page)).to_have_text("Connected")
