"""The fuzz against a live server: each generated batch is sent, and the server's answer
checked against what the protocol says it must be.

- **session WebSocket**: the server closes with 1003 exactly when a message is one the
  protocol refuses (`messages.parse` says which, and the reason is its message), else it
  answers a last ping; with auth, a missing or bad token is 1008. Never 1011, never silence.
- **host link** (vt): a bad register or message is 1003 with parse's reason; an exit is a
  1000; a good link stays up.
- **HTTP**: never a 5xx, always an answer; an /api error has the error body.

Every check has a deadline: a server that stops answering fails the batch ("no hang").
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fuzz.gen import HostBatch, Request
from vibetunnel.errors import ProtocolError
from vibetunnel.protocol import close as reasons
from vibetunnel.protocol import host, messages

DEADLINE = 10.0
"""Seconds one batch may take before the server counts as hung."""
SAFE_SCRIPT = "#!/bin/sh\n/bin/stty raw -echo 2>/dev/null\nexec /bin/cat >/dev/null\n"
"""The fuzz server's $SHELL: every default session reads its input and drops it."""
BAD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA"
NOT_BUILT = "The web app is not built"
"""The 503 of a page in a checkout without the built web app (api/app.py)."""
UVICORN_400 = "Invalid HTTP request received."


@dataclass
class Target:
    """A live server to fuzz: its URL, sessions it may use, tokens by name."""

    url: str
    sessions: list[str]
    tokens: dict[str, str] = field(default_factory=dict)
    """By name: "valid", "share" and "readonly" (share links to the first session); none
    without auth."""

    @property
    def auth(self) -> bool:
        return bool(self.tokens)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)


@dataclass
class Stats:
    """What a run sent and what came back."""

    ws_messages: int = 0
    host_messages: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    closes: Counter[int] = field(default_factory=Counter)
    """WebSocket close codes; 0 counts sockets still open at the end, as they should be."""
    not_built: int = 0
    """Pages answered 503 because the web app is not built (a checkout, not an install)."""

    @property
    def sent(self) -> int:
        return self.ws_messages + self.host_messages + self.requests

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def safe_shell(folder: Path) -> Path:
    """Write SAFE_SCRIPT (executable) into `folder`; its path."""
    path = folder / "fuzz-shell"
    path.write_text(SAFE_SCRIPT)
    path.chmod(0o755)
    return path


# -- the session WebSocket -------------------------------------------------------------------


def expected_refusal(batch: list[str | bytes]) -> str | None:
    """The 1003 reason the server must close with, or None if every message is allowed."""
    for message in batch:
        if isinstance(message, bytes):
            return "binary messages are not accepted; send JSON text"
        try:
            messages.parse(message)
        except ProtocolError as exc:
            return exc.message
    return None


def _close_of(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; its code and reason."""
    try:
        while True:
            ws.recv(timeout=DEADLINE)
    except ConnectionClosed as exc:
        if exc.rcvd is None:
            return 1006, ""
        return exc.rcvd.code, exc.rcvd.reason
    except TimeoutError:
        raise AssertionError("no close within the deadline: the server hangs") from None


def _until_pong(ws: ClientConnection) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no pong within the deadline: the server hangs")
        try:
            message = ws.recv(timeout=left)
        except TimeoutError:
            continue
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            raise AssertionError(f"closed {code} after allowed messages") from None
        if isinstance(message, str) and json.loads(message) == {"type": "pong"}:
            return


def session_batch(target: Target, batch: list[str | bytes], token: str, stats: Stats) -> None:
    """Send `batch` on a session's WebSocket and check the answer."""
    url = f"{target.ws_url}/api/sessions/{target.sessions[0]}/ws"
    if target.auth and token != "none":
        url += f"?token={BAD_TOKEN if token == 'garbage' else target.tokens[token]}"
    with connect(url, open_timeout=DEADLINE, close_timeout=DEADLINE, max_size=None) as ws:
        for message in batch:
            try:
                ws.send(message)
            except ConnectionClosed:
                break  # refused meanwhile: the close says why
            stats.ws_messages += 1
        if target.auth and token in ("none", "garbage"):
            code, _ = _close_of(ws)
            stats.closes[code] += 1
            assert code == 1008, f"a bad token got close {code}, not 1008"
            return
        why = expected_refusal(batch)
        if why is None:
            ws.send(json.dumps({"type": "ping"}))
            _until_pong(ws)
            stats.closes[0] += 1  # 0: still open, as it should be
            return
        code, reason = _close_of(ws)
        stats.closes[code] += 1
        assert (code, reason) == (1003, reasons.reason(why)), (code, reason, why)


# -- the host link ---------------------------------------------------------------------------


def expected_host(batch: HostBatch) -> tuple[int, str] | None:
    """The close the server must send (code, reason), or None while the link stays up."""
    first = batch.register
    if isinstance(first, bytes):
        return 1003, "the first message must be a register text message"
    try:
        host.parse_register(first)
    except ProtocolError as exc:
        return 1003, exc.message
    for message in batch.messages:
        try:
            if isinstance(message, bytes):
                host.parse_output(message)
            elif isinstance(host.parse_from_vt(message), host.Exit):
                return 1000, reasons.SESSION_ENDED
        except ProtocolError as exc:
            return 1003, exc.message
    return None


def host_batch(target: Target, batch: HostBatch, stats: Stats) -> None:
    """Register (or fail to) on /api/host, send the rest, check the answer."""
    url = f"{target.ws_url}/api/host"
    if target.auth:
        url += f"?token={target.tokens['valid']}"
    with connect(url, open_timeout=DEADLINE, close_timeout=DEADLINE, max_size=None) as ws:
        for message in [batch.register, *batch.messages]:
            try:
                ws.send(message)
            except ConnectionClosed:
                break
            stats.host_messages += 1
        expected = expected_host(batch)
        if expected is None:
            ws.send(json.dumps({"type": "exit", "code": 0}))
            expected = (1000, reasons.SESSION_ENDED)
        code, reason = _close_of(ws)
        stats.closes[code] += 1
        assert (code, reason) == (expected[0], reasons.reason(expected[1])), (code, reason)


# -- HTTP ----------------------------------------------------------------------------------


def http_request(client: httpx.Client, target: Target, request: Request, stats: Stats) -> None:
    """Send one request; no 5xx, an answer within the deadline, /api errors in shape."""
    headers = {k: v.encode("latin-1") for k, v in request.headers.items()}
    if target.auth and request.token != "none":
        token = BAD_TOKEN if request.token == "garbage" else target.tokens[request.token]
        headers["Authorization"] = f"Bearer {token}".encode()
    method = request.method
    if request.path.split("?")[0] == "/api/sessions/events" and method == "GET":
        method = "HEAD"  # an endless stream: there would be no end to wait for
    try:
        response = client.request(method, request.path, headers=headers, content=request.body)
    except httpx.TimeoutException:
        raise AssertionError(f"no answer within the deadline: {request}") from None
    stats.requests += 1
    status = response.status_code
    if status == 503 and NOT_BUILT in response.text:
        stats.not_built += 1  # a checkout without the built web app says so: by design
        return
    stats.statuses[status] += 1
    assert status < 500, (request, status, response.text[:300])
    if request.path.startswith("/api/") and method != "HEAD" and status >= 400:
        if status == 400 and response.text == UVICORN_400:
            return  # not HTTP at all (an unknown method): refused before any app code
        error = response.json()["error"]
        assert set(error) == {"code", "message", "requestId"}, (request, response.text[:300])


def clean_up(client: httpx.Client, target: Target, victims: list[str]) -> None:
    """Delete the sessions the fuzz made and make its `victims` again (it may have deleted
    them), so a long run holds no more than a short one."""
    headers = {"Authorization": f"Bearer {target.tokens['valid']}"} if target.auth else {}
    listed = client.get("/api/sessions", headers=headers)
    assert listed.status_code == 200, listed.text
    present = {s["id"]: s["status"] for s in listed.json()}
    for sid, status in present.items():
        if sid not in target.sessions and (sid not in victims or status != "running"):
            client.delete(f"/api/sessions/{sid}", headers=headers)
    for sid in victims:
        if present.get(sid) != "running":
            made = client.post("/api/sessions", json={"id": sid}, headers=headers)
            assert made.status_code == 201, made.text


def check_reachable(url: str) -> None:
    """The server still answers /api/health at once."""
    try:
        response = httpx.get(f"{url}/api/health", timeout=DEADLINE)
    except httpx.HTTPError as exc:
        raise AssertionError(f"the server stopped answering: {exc!r}") from None
    assert response.status_code == 200
