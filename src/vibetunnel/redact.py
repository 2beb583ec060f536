"""Secrets out of every log line: tokens in query strings, bearer headers, JWTs.

`redact` is the one function that blanks them; `RedactingFormatter` applies it to the whole
of every line a handler writes (the message with its arguments, a traceback, a stack), and
`log_to_stderr` installs it where a process configures its logging (`serve`, the keeper).
A guard on the handler rather than at each call site: uvicorn's own lines (`WebSocket
/api/sessions/ID/ws?token=...`) and any line written later are covered too.

What counts as a secret:
- a query (or cookie) pair whose name is one of SECRET_NAMES, the name compared decoded (as
  the server reads it: `tok%65n=` is `token=`) and case-insensitively, wherever it stands in
  the line; its value runs to the next `&`, space, `"` or `#`;
- a JSON or Python mapping's value under one of those names (`"refreshToken": "..."`);
- whatever follows `Bearer `;
- anything shaped like one of our JWTs (`eyJ...` segments joined by dots), wherever it is.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

SECRET_NAMES = (
    "token",
    "login",
    "loginToken",
    "refreshToken",
    "accessToken",
    "password",
    "vibetunnel_refresh",
)
"""Names whose values are secrets: query parameters (`?token=`, `?login=`), JSON fields,
the refresh cookie."""
REDACTED = "[redacted]"


def _spelled(name: str) -> str:
    """A pattern for `name` as a query may spell it: each character itself or %-encoded."""
    chars = []
    for char in name:
        spellings = {re.escape(char)} | {f"%{ord(c):02x}" for c in {char.lower(), char.upper()}}
        chars.append("(?:" + "|".join(sorted(spellings)) + ")")
    return "".join(chars)


_NAMES = "|".join(_spelled(name) for name in SECRET_NAMES)
_PLAIN_NAMES = "|".join(re.escape(name) for name in SECRET_NAMES)
_SECRET = re.compile(
    # A pair: the name not glued to a longer one (`my_token=` is not a token).
    rf"(?<![\w%.~+-])(?P<pair>{_NAMES})=[^&;\s\"#]*"
    # A mapping's value: "name": "value" or 'name': 'value'.
    rf"|(?P<key>([\"'])(?:{_PLAIN_NAMES})\3\s*:\s*([\"']))[^\"'\\]*"
    rf"|\b(?P<bearer>bearer\s+)[^\s\"',;]+"
    # A JWT: its header, base64url of '{"', begins "eyJ" (case matters here).
    r"|(?-i:\beyJ[A-Za-z0-9_=-]*(?:(?:\.|%2[eE])[A-Za-z0-9_=-]*){1,2})",
    re.IGNORECASE,
)


def _blank(match: re.Match[str]) -> str:
    if (name := match["pair"]) is not None:
        return f"{unquote_plus(name)}={REDACTED}"
    if (key := match["key"]) is not None:
        return key + REDACTED
    if (bearer := match["bearer"]) is not None:
        return bearer + REDACTED
    return REDACTED


_WORDS = ("bearer", *(name.lower() for name in SECRET_NAMES))


def redact(text: str) -> str:
    """`text` with every secret in it blanked (see the module); anything else unchanged."""
    # What every secret needs, first: most lines have none of it (a line with no `=`, no
    # "eyJ" and none of the words costs about 2 µs, the pattern some 45).
    if "=" not in text and "eyJ" not in text:
        lowered = text.lower()
        if not any(word in lowered for word in _WORDS):
            return text
    return _SECRET.sub(_blank, text)


class RedactingFormatter(logging.Formatter):
    """A Formatter whose every line goes through `redact`: the message, its arguments, and
    any traceback or stack printed with it."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_to_stderr(level: int, fmt: str) -> None:
    """The process's logging: one handler on stderr, every line redacted (replacing any
    handler configured before)."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)
