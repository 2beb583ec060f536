"""redact: no token, sign-in link, bearer header or JWT survives a log line; nothing else is
touched. RedactingFormatter: the whole of a line goes through it, arguments and traceback."""

from __future__ import annotations

import io
import logging
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibetunnel.auth import TokenService
from vibetunnel.redact import _SECRET, RedactingFormatter, _blank, redact

TOKENS = TokenService(b"k" * 32)
JWT = TOKENS.issue("me", 600)
LOGIN = TOKENS.issue("me", 60, kind="login")


@pytest.mark.parametrize(
    "query, logged",
    [
        ("token=abc", "token=[redacted]"),
        ("a=1&token=abc&b=2", "a=1&token=[redacted]&b=2"),
        ("a=1&b=2&token=abc", "a=1&b=2&token=[redacted]"),
        ("tok%65n=abc", "token=[redacted]"),
        ("%74%6F%6B%65%6E=abc", "token=[redacted]"),
        ("%74%6f%6b%65%6e=abc", "token=[redacted]"),
        ("TOKEN=abc&Login=xyz", "TOKEN=[redacted]&Login=[redacted]"),
        ("token=a&token=b", "token=[redacted]&token=[redacted]"),
        ("token=", "token=[redacted]"),
        ("tokens=abc&my_token=x&xtoken=y", "tokens=abc&my_token=x&xtoken=y"),
        ("a=%26token=abc", "a=%26token=abc"),  # the server reads `a`, not a token
        ("", ""),
    ],
)
def test_a_query_s_token_values_are_blanked(query: str, logged: str) -> None:
    assert redact(query) == logged


@pytest.mark.parametrize("at", ["start", "middle", "end"])
def test_a_token_anywhere_in_a_url_anywhere_in_a_line(at: str) -> None:
    pairs = {"start": ["token=SECRET", "a=1", "b=2"], "middle": ["a=1", "token=SECRET", "b=2"]}
    query = "&".join(pairs.get(at, ["a=1", "b=2", "token=SECRET"]))
    line = f'127.0.0.1:5000 - "WebSocket /api/sessions/x/ws?{query}" [accepted]'
    logged = redact(line)
    assert "SECRET" not in logged
    assert logged == line.replace("token=SECRET", "token=[redacted]")


def test_a_url_inside_another_pair_is_still_read() -> None:
    assert redact("next=http://h/p?token=SECRET&x=1") == "next=http://h/p?token=[redacted]&x=1"


def test_a_sign_in_link() -> None:
    link = f"https://host:4020/?login={LOGIN}"
    assert redact(f"open {link} now") == "open https://host:4020/?login=[redacted] now"


@pytest.mark.parametrize(
    "line",
    [
        f"Authorization: Bearer {JWT}",
        f"authorization: bearer {JWT}",
        f"[(b'authorization', b'Bearer {JWT}')]",
        "Authorization: Bearer opaque-not-a-jwt",
    ],
)
def test_a_bearer_header(line: str) -> None:
    logged = redact(line)
    assert JWT not in logged and "opaque" not in logged
    assert "[redacted]" in logged


@pytest.mark.parametrize(
    "line",
    [
        f"token {JWT} refused",
        f"({JWT!r},)",
        f"/api/x/{JWT}",
        f'{{"loginToken": "{LOGIN}"}}',
        JWT.replace(".", "%2E"),  # a JWT in a URL, its dots encoded
    ],
)
def test_a_bare_jwt(line: str) -> None:
    logged = redact(line)
    assert "[redacted]" in logged
    for part in JWT.split(".") + LOGIN.split("."):
        assert part not in logged


def test_secret_fields_of_a_body() -> None:
    body = '{"refreshToken": "r3fr3sh", "password": \'hunter2\', "name": "build"}'
    assert redact(body) == (
        '{"refreshToken": "[redacted]", "password": \'[redacted]\', "name": "build"}'
    )
    assert redact("Cookie: a=b; vibetunnel_refresh=r3fr3sh; c=d") == (
        "Cookie: a=b; vibetunnel_refresh=[redacted]; c=d"
    )


@pytest.mark.parametrize(
    "line",
    [
        'INFO uvicorn.error: 127.0.0.1:40000 - "WebSocket /api/sessions/ab12/ws" [accepted]',
        '127.0.0.1 "GET /api/sessions?a=1&b=two" 200 1.2ms',
        "recording /home/me/.vibetunnel/recordings/x.cast: torn last line removed",
        "keyJson.load heyJude.mp3 eyJ alone, e.yJ",
        "a tokenizer=3 and my_login=x",
        "Redis at 127.0.0.1:6379 unreachable (Connection refused)",
        "",
    ],
)
def test_text_without_secrets_is_unchanged(line: str) -> None:
    assert redact(line) == line


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4), st.text(min_size=1))
def test_whatever_the_query_the_server_reads_no_token_from_the_log(
    params: dict[str, str], secret: str
) -> None:
    query = urlencode({**params, "token": secret})
    assert parse_qs(redact(query)).get("token") == ["[redacted]"]
    logged = redact(f'"GET /x?{query}" 200').split("?", 1)[1].rsplit('"', 1)[0]
    assert parse_qs(logged).get("token") == ["[redacted]"]


@given(st.text())
def test_redacting_twice_is_redacting_once(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_the_formatter_redacts_arguments_and_tracebacks() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("test_redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning('"WebSocket %s" [accepted]', f"/api/sessions/x/ws?token={JWT}")
        try:
            raise ValueError(f"cannot open https://h/?login={LOGIN}")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    logged = out.getvalue()
    assert '"WebSocket /api/sessions/x/ws?token=[redacted]" [accepted]' in logged
    assert "ValueError: cannot open https://h/?login=[redacted]" in logged
    for part in JWT.split(".") + LOGIN.split("."):
        assert part not in logged


@given(st.text(alphabet=st.sampled_from(list("tokenlgiTOKENpasswdBearer eyJ.=&\"':%65_-x"))))
def test_the_quick_check_skips_only_lines_without_secrets(text: str) -> None:
    assert redact(text) == _SECRET.sub(_blank, text)
