"""What the fuzz sends: hypothesis strategies for client messages, host-link messages, frames
and HTTP requests. Pure: no I/O. Near-valid values dominate, so most examples get past the
first check and reach the code behind it.

Nothing generated may run a command of its own choosing: session bodies name only SAFE
commands (the fuzz server's $SHELL is a script that reads its input and drops it), since a
fuzzer that types random text into a root shell is a hazard, not a test.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

# -- JSON ----------------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
"""Text a client can send (a lone surrogate cannot be encoded as UTF-8 at all)."""
ANY_TEXT = st.text(max_size=40)
"""Text with lone surrogates too: JSON escapes carry them (`\\ud800`)."""

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.integers(-3, 1003)
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def dumps(value: Any) -> str:
    """JSON text, ASCII only (so lone surrogates travel as escapes)."""
    return json.dumps(value)


# -- browser messages --------------------------------------------------------------------------

SIZES = st.integers(1, 1000) | st.integers(-2, 1003) | json_values
KINDS = st.sampled_from(["input", "resize", "ping", "ack", "pong", "exit", "register", "", "Input"])

valid_messages = st.one_of(
    st.just({"type": "ping"}),
    st.builds(lambda d: {"type": "input", "data": d}, TEXT | st.text(max_size=3000)),
    st.builds(
        lambda c, r: {"type": "resize", "cols": c, "rows": r},
        st.integers(1, 1000),
        st.integers(1, 1000),
    ),
)
near_messages = st.fixed_dictionaries(
    {"type": KINDS | json_values},
    optional={"data": ANY_TEXT | json_values, "cols": SIZES, "rows": SIZES, "x": json_values},
)

client_messages: st.SearchStrategy[str | bytes] = st.one_of(
    valid_messages.map(dumps),
    valid_messages.map(dumps),
    valid_messages.map(dumps),
    near_messages.map(dumps),
    json_values.map(dumps),
    TEXT,
    st.binary(max_size=64),
)
"""One WebSocket message of a browser: mostly JSON text, some plain text, some binary."""

ws_batches = st.lists(client_messages, min_size=1, max_size=24)

# -- the host link (vt) ------------------------------------------------------------------------


def register(session_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "type": "register",
        "id": session_id,
        "name": "fuzz",
        "command": "/nonexistent/fuzz",
        "args": [],
        "cwd": "/",
        "cols": 80,
        "rows": 24,
        "pid": 424242,
        "createdAt": 1_700_000_000.0,
        "screen": "",
        **changes,
    }


register_changes = st.dictionaries(
    st.sampled_from(
        ["id", "name", "command", "args", "cwd", "cols", "rows", "pid", "createdAt", "screen", "x"]
    ),
    json_values,
    max_size=2,
)


def _frame(data: bytes) -> bytes:
    return b"\xbf" + len(data).to_bytes(4, "big") + data


host_messages: st.SearchStrategy[str | bytes] = st.one_of(
    TEXT.map(lambda t: _frame(t.encode())),
    TEXT.map(lambda t: _frame(t.encode())),
    st.binary(max_size=64).map(_frame),
    st.binary(max_size=64),
    st.builds(lambda c, r: dumps({"type": "resize", "cols": c, "rows": r}), SIZES, SIZES),
    near_messages.map(dumps),
    TEXT,
)
"""What vt sends after its register message: frames, resizes, junk."""


@dataclass
class HostBatch:
    register: str | bytes
    messages: list[str | bytes]


@st.composite
def host_batches(draw: st.DrawFn) -> HostBatch:
    sid = draw(st.uuids()).hex
    first: str | bytes = draw(
        st.one_of(
            st.just(dumps(register(sid))),
            st.just(dumps(register(sid))),
            register_changes.map(lambda ch: dumps(register(sid, **ch))),
            client_messages,
        )
    )
    return HostBatch(first, draw(st.lists(host_messages, max_size=12)))


# -- HTTP ------------------------------------------------------------------------------------


SAFE_COMMANDS = ["/nonexistent/fuzz", "", "relative/fuzz"]
"""Commands a generated session body may name, besides the default ($SHELL: the fuzz
server's safe script, given by the driver)."""

ROUTES = [
    "/api/health",
    "/api/sessions",
    "/api/sessions/{id}",
    "/api/sessions/{id}/input",
    "/api/sessions/{id}/resize",
    "/api/sessions/{id}/ws",
    "/api/recordings",
    "/api/recordings/{id}",
    "/api/auth/login",
    "/api/auth/refresh",
    "/api/auth/logout",
    "/api/auth/exchange",
    "/api/auth/nonce",
    "/api/auth/config",
    "/api/openapi.json",
    "/api/host",
    "/",
    "/login",
    "/sessions/{id}",
    "/recordings",
    "/assets/{id}",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
HEADER_NAME = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=20)
HEADER_VALUE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=60,
).map(str.strip)


@dataclass
class Request:
    """One HTTP request to send. `body` None: none; `token`: which token to put in."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    token: str = "none"


def session_bodies(known: list[str]) -> st.SearchStrategy[Any]:
    """Bodies for POST /api/sessions and friends: near-valid, never a command of its own."""
    fields = {
        "id": st.sampled_from(known) | st.uuids().map(str) | json_values,
        "name": TEXT | json_values,
        "cols": SIZES,
        "rows": SIZES,
        "cwd": st.sampled_from(["/", "/tmp", "/nonexistent"]) | json_values,
        "env": st.dictionaries(TEXT, TEXT, max_size=3) | json_values,
        "command": st.sampled_from(SAFE_COMMANDS),
        "args": st.lists(TEXT, max_size=3),
        "data": ANY_TEXT | json_values,
        "password": TEXT,
        "refreshToken": TEXT,
        "loginToken": TEXT,
        "x": json_values,
    }
    return st.fixed_dictionaries({}, optional=fields) | json_values


@st.composite
def requests(draw: st.DrawFn, known: list[str]) -> Request:
    """A request to a route of the server (or near one), with odd headers and bodies."""
    route = draw(st.sampled_from(ROUTES) | TEXT.map(lambda t: "/" + t))
    ident = draw(
        st.sampled_from(known or ["none"])
        | st.uuids().map(str)
        | st.sampled_from(["..", ".", "%2e%2e", "a" * 200, "events"])
        | TEXT
    )
    path = route.replace("{id}", quote(ident, safe=""))
    path = quote(path, safe="/%")
    if draw(st.booleans()):
        query = draw(st.dictionaries(HEADER_NAME, TEXT, max_size=3))
        path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    method = draw(st.sampled_from(METHODS) | HEADER_NAME.map(str.upper))
    headers = draw(st.dictionaries(HEADER_NAME, HEADER_VALUE, max_size=4))
    headers = {k: v for k, v in headers.items() if k.lower() not in FORBIDDEN_HEADERS}
    for name, values in ODD_HEADERS.items():
        if draw(st.integers(0, 5)) == 0:
            headers[name] = draw(st.sampled_from(values) | HEADER_VALUE)
    body: bytes | None = None
    kind = draw(st.sampled_from(["none", "json", "json", "json", "bytes"]))
    if kind == "json":
        body = dumps(draw(session_bodies(known))).encode()
        headers.setdefault("Content-Type", "application/json")
    elif kind == "bytes":
        body = draw(st.binary(max_size=256))
    token = draw(st.sampled_from(["none", "valid", "valid", "garbage", "share", "readonly"]))
    return Request(method, path, headers, body, token)


FORBIDDEN_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "authorization",
    "expect",
    "te",
    "trailer",
    "keep-alive",
}
"""Headers the client library owns (a wrong length would make the request itself invalid)."""
ODD_HEADERS = {
    "Content-Type": ["application/json", "text/plain", "application/json; charset=latin-1", ""],
    "X-Client-Version": ["1.0", "2.0", "v1", "1", "²", "1" * 5000, ""],
    "X-Request-ID": ["abc", "x" * 200, "a b", ""],
    "Origin": ["http://evil.example", "null", "http://127.0.0.1"],
    "X-Forwarded-For": ["10.0.0.1", "1.2.3.4, 5.6.7.8", "garbage"],
    "Forwarded": ["for=10.0.0.1", "for=[::1]", "garbage"],
    "X-Real-IP": ["10.0.0.1", "garbage"],
    "Accept": ["*/*", "text/event-stream", "application/json"],
    "Cookie": ["vibetunnel_refresh=garbage", "vibetunnel_refresh=", "a=b; vibetunnel_refresh=\x7f"],
    "X-Refresh-Nonce": ["garbage", "a.b.c", "n" * 5000, ""],
    "X-Refresh-Proof": ["garbage", "é", "p" * 5000, ""],
}
"""Headers the server reads, with values at and past their edges."""


# -- volume: seeded mutations of what hypothesis drew --------------------------------------------

SPLICES = [
    '"',
    "\\",
    "\\u0000",
    "\\ud800",
    "\\udfff",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "1e999",
    "-0",
    "99999999999999999999",
    "0.5",
    '"type"',
    '"input"',
    '"resize"',
    '"ping"',
    '"data"',
    '"cols"',
    '"rows"',
    "\x00",
    "\u2028",
    "é",
    "😀",
    " ",
    "\n",
]
"""Pieces a mutation splices in: JSON syntax, escapes, numbers at their edges, field names."""


def mutate(rng: random.Random, message: str | bytes) -> str | bytes:
    """One variant of `message`: a splice, a cut, a flip or a repeat, at a random place."""
    if isinstance(message, bytes):
        data = bytearray(message or b"\xbf")
        at = rng.randrange(len(data))
        how = rng.randrange(4)
        if how == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif how == 1:
            del data[at:]
        elif how == 2:
            data[at:at] = rng.randbytes(rng.randrange(1, 8))
        else:
            data += data[at:]
        return bytes(data)
    text = message or "{}"
    at = rng.randrange(len(text) + 1)
    how = rng.randrange(4)
    if how == 0:
        return text[:at] + rng.choice(SPLICES) + text[at:]
    if how == 1:
        return text[:at]
    if how == 2:
        return text[:at] + text[at + 1 :]
    return text[:at] + text[at : at + rng.randrange(1, 16)] * 2 + text[at:]


def expand(rng: random.Random, base: list[str | bytes], count: int) -> list[str | bytes]:
    """`base` and `count` variants of its messages, each mutated one to three times: a seeded
    mutator (hypothesis draws the seed) multiplies what hypothesis can draw per second by a
    hundred, with the structure hypothesis gave."""
    out = list(base)
    for _ in range(count if base else 0):
        message = rng.choice(base)
        for _ in range(rng.randrange(1, 4)):
            message = mutate(rng, message)
        out.append(message)
    return out


def _rng_text(rng: random.Random, size: int) -> str:
    """Text of `size` characters: ASCII, controls, and from the whole of Unicode (no
    surrogates, which no client can send)."""
    chars = []
    for _ in range(size):
        pick = rng.randrange(10)
        if pick < 6:
            chars.append(chr(rng.randrange(0x20, 0x7F)))
        elif pick < 8:
            chars.append(chr(rng.randrange(0x00, 0x20)))
        else:
            code = rng.randrange(0xA0, 0x110000)
            chars.append(chr(code) if not 0xD800 <= code < 0xE000 else "\ufffd")
    return "".join(chars)


def allowed_run(rng: random.Random, count: int) -> list[str | bytes]:
    """`count` messages a browser may send (input, resize, ping), made by `rng`: volume for a
    live socket, which closes at the first message it refuses."""
    out: list[str | bytes] = []
    for _ in range(count):
        pick = rng.randrange(8)
        if pick < 5:
            out.append(dumps({"type": "input", "data": _rng_text(rng, rng.randrange(0, 64))}))
        elif pick < 7:
            cols, rows = rng.randrange(1, 1001), rng.randrange(1, 1001)
            out.append(dumps({"type": "resize", "cols": cols, "rows": rows}))
        else:
            out.append(dumps({"type": "ping"}))
    return out


def output_run(rng: random.Random, count: int) -> list[str | bytes]:
    """`count` output frames of whole UTF-8, as vt sends them."""
    return [_frame(_rng_text(rng, rng.randrange(0, 256)).encode()) for _ in range(count)]


def request_variant(rng: random.Random, request: Request) -> Request:
    """`request` with its path, one header or its body mutated."""
    pick = rng.randrange(3)
    path, headers, body = request.path, dict(request.headers), request.body
    if pick == 0:
        path = "/" + quote(str(mutate(rng, path))[1:], safe="/%?&=")
    elif pick == 1 and headers:
        name = rng.choice(sorted(headers))
        value = str(mutate(rng, headers[name]))
        headers[name] = "".join(c for c in value if 0x20 <= ord(c) <= 0xFF and c != "\x7f").strip()
    elif body is not None:
        mutated = mutate(rng, body.decode("utf-8", "replace"))
        body = str(mutated).encode("utf-8", "surrogatepass")
    return Request(request.method, path, headers, body, request.token)
