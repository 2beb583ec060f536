"""The terminal's socket when the connection drops while the session lives on.

Playwright sits between the page and the server (route_web_socket), so the test can drop the
connection while the real server keeps the session alive. (Broken frames and the close-code
policy are unit-tested in frontend/test/.)
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
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
from tests.conftest import UNIT, RunningServer

SOCKET = re.compile(r"/api/sessions/[^/]+/ws(\?|$)")


def proxied(page: Any) -> list[Any]:
    """Route the page's sockets through Playwright; returns the routes, newest last."""
    routes: list[Any] = []

    def handler(route: Any) -> None:
        route.connect_to_server()  # forward both ways, unchanged
        routes.append(route)

    page.route_web_socket(SOCKET, handler)
    return routes


def test_reconnects_after_a_dropped_connection(server: RunningServer, page: Any) -> None:
    routes = proxied(page)
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "echo before-$((1+1))")
    expect(terminal(page)).to_contain_text("before-2")

    routes[-1].close(code=1011, reason="test: server fault")
    expect(status(page)).to_contain_text("reconnecting")
    expect(status(page)).to_have_text("Connected")
    assert len(routes) == 2
    # The server replays the screen, and the page reset the terminal first: no duplicates.
    expect(terminal(page)).to_contain_text("before-2")
    page.locator(".xterm-helper-textarea").focus()
    type_line(page, "echo after-$((2+2))")
    expect(terminal(page)).to_contain_text("after-4")
    assert terminal(page).inner_text().count("before-2") == 1


def test_tab_reconnects_by_itself_after_a_server_restart(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "V=kept-$((20+1)); echo $V")
    expect(terminal(page)).to_contain_text("kept-21")
    server.restart(signal.SIGKILL)  # a crash: the session lives on in the keeper
    expect(status(page)).to_have_text("Connected", timeout=20_000)
    expect(terminal(page)).to_contain_text("kept-21")  # the screen, replayed
    page.locator(".xterm-helper-textarea").focus()
    type_line(page, "echo again-$V")
    expect(terminal(page)).to_contain_text("again-kept-21")


def test_composed_text_reaches_the_program(server: RunningServer, page: Any) -> None:
    # What phone keyboards, IMEs, dictation and emoji pickers send: `insertText`, not keys.
    script = "read line; printf '%s' \"$line\" | od -An -tx1 | tr -d ' \\n'; echo; exec cat"
    with server.client() as api:
        session = create_session(api, args=["-c", script])
    open_terminal(page, server, session["id"])
    page.keyboard.insert_text("echo 你好 🎉 é")
    page.keyboard.press("Enter")
    expected = "echo 你好 🎉 é".encode().hex()
    expect(terminal(page)).to_contain_text(expected)


def test_a_big_paste_arrives_whole_in_messages_under_the_limit(
    server: RunningServer, page: Any, tmp_path: Path
) -> None:
    # The server closes a message over 1 MiB (1009): the page cuts a paste into several.
    sent: list[int] = []

    def handler(route: Any) -> None:
        upstream = route.connect_to_server()

        def to_server(message: str | bytes) -> None:
            sent.append(len(message.encode() if isinstance(message, str) else message))
            upstream.send(message)

        route.on_message(to_server)

    page.route_web_socket(SOCKET, handler)
    unit = "abcdefghij-é-🚀-"  # one- to four-byte characters, a surrogate pair in UTF-16
    repeats = 200_000
    pasted = (unit * repeats).encode()  # 3.8 MB
    out = tmp_path / "pasted.txt"
    with server.client() as api:
        script = f"stty raw -echo; head -c {len(pasted)} > {out}; echo; echo pasted-whole"
        session = create_session(api, args=["-c", script])
    open_terminal(page, server, session["id"])
    page.evaluate(
        """([unit, repeats]) => {
            const data = new DataTransfer();
            data.setData("text/plain", unit.repeat(repeats));
            const paste = new ClipboardEvent("paste", { clipboardData: data, bubbles: true });
            document.querySelector(".xterm-helper-textarea").dispatchEvent(paste);
        }""",
        [unit, repeats],
    )
    expect(terminal(page)).to_contain_text("pasted-whole", timeout=30 * MS)
    assert out.read_bytes() == pasted  # whole, in order
    big = [n for n in sent if n > 1024]
    assert len(big) >= 4 and max(big) <= 1024 * 1024, big


def test_disconnected_terminal_says_so_and_refuses_keys(server: RunningServer, page: Any) -> None:
    down = [False]
    attempts: list[Any] = []

    def handler(route: Any) -> None:
        attempts.append(route)
        if down[0]:
            route.close(code=1001, reason="test: server still away")
        else:
            route.connect_to_server()

    page.route_web_socket(SOCKET, handler)
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "echo before-$((1+1))")
    expect(terminal(page)).to_contain_text("before-2")

    down[0] = True
    attempts[-1].close(code=1001, reason="test: server going away")
    overlay = page.locator(".term-overlay")
    expect(overlay).to_be_visible()
    expect(overlay).to_contain_text("Disconnected")
    expect(overlay).to_contain_text("Reconnecting in")
    # Keys typed now are refused, and the page says so over the terminal.
    page.keyboard.type("zzz")
    expect(page.get_by_role("alert")).to_contain_text("Not sent")
    screenshot(page, "terminal-disconnected")

    # Retries come at most a second apart: the socket is back within a second of the server.
    count = len(attempts)
    page_wait(page, lambda: len(attempts) >= count + 2, 5 * UNIT, "two more attempts")
    down[0] = False
    back = time.monotonic()
    expect(status(page)).to_have_text("Connected", timeout=5 * MS)
    assert time.monotonic() - back < 1.5 * UNIT
    expect(overlay).to_be_hidden()
    page.locator(".xterm-helper-textarea").focus()
    type_line(page, "echo after-$((2+2))")
    expect(terminal(page)).to_contain_text("after-4")
    assert "zzz" not in terminal(page).inner_text()  # never queued and sent late


def test_a_server_that_comes_back_is_reached_within_a_second(
    server: RunningServer, page: Any
) -> None:
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    with server.client() as api:
        session = create_session(api)
    open_terminal(page, server, session["id"])
    type_line(page, "echo kept-$((3*3))")
    expect(terminal(page)).to_contain_text("kept-9")

    server.stop(keep_sessions=True)
    expect(page.locator(".term-overlay")).to_be_visible()
    # Let the retries reach their longest wait (0.5 s, then 1 s each).
    count = len(sockets)
    page_wait(page, lambda: len(sockets) >= count + 3, 10 * UNIT, "the page's retries")
    server.start()
    back = time.monotonic()
    expect(status(page)).to_have_text("Connected", timeout=5 * MS)
    assert time.monotonic() - back < 1.5 * UNIT
    expect(page.locator(".term-overlay")).to_be_hidden()
    expect(terminal(page)).to_contain_text("kept-9")


def test_a_late_joiner_after_a_full_screen_program_quit_sees_the_shell(
    server: RunningServer, page: Any
) -> None:
    # As vim does: the alternate screen with its own clear, then back to the shell's screen.
    enter = r"shell-line-one\n\033[?1049h\033[?1h\033[H\033[2Jfull-screen-frame"
    leave = r"\033[?1l\033[?1049lback-at-the-prompt"
    script = f"printf '{enter}'; read x; printf '{leave}'; exec cat"
    with server.client() as api:
        session = create_session(api, args=["-c", script])
        api.post(f"/api/sessions/{session['id']}/input", json={"data": "\n"})  # quit it
    open_terminal(page, server, session["id"])  # a tab that joins afterwards
    expect(terminal(page)).to_contain_text("back-at-the-prompt")
    expect(terminal(page)).to_contain_text("shell-line-one")
    expect(terminal(page)).not_to_contain_text("full-screen-frame")
    # The program's last frame is not drawn over the shell: line one is the shell's.
    first_row = page.locator(".xterm-rows > div").first
    expect(first_row).to_contain_text("shell-line-one")


def test_a_late_joiner_after_vim_quit_sees_the_shell(server: RunningServer, page: Any) -> None:
    with server.client() as api:
        session = create_session(
            api, command="/bin/bash", args=["--norc", "--noprofile"], env={"PS1": "prompt$ "}
        )
    open_terminal(page, server, session["id"])
    type_line(page, "echo before-vim")
    type_line(page, "vim -u NONE -N")
    expect(terminal(page)).to_contain_text("~")  # vim's empty lines, on the alternate screen
    page.keyboard.type(":q")
    page.keyboard.press("Enter")
    expect(terminal(page)).not_to_contain_text("~")
    late = page.context.new_page()
    open_terminal(late, server, session["id"])
    expect(terminal(late)).to_contain_text("before-vim")
    expect(terminal(late)).not_to_contain_text("~")  # nothing of vim's last frame
    expect(late.locator(".xterm-rows > div").first).to_contain_text("prompt$ echo before-vim")
    late.close()
