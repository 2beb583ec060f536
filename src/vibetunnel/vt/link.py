"""vt's link to the local server: find it, register, stream, and come back after a drop.

The server says where it listens in `<home>/server.json` ({"url", "pid"}). No file, a pid
that does not hold `<home>/server.lock` (a dead server's) or a refused connection all mean
"no server": the link then tries again every `retry`
seconds, forever, in the background. Only the very first failure is reported (one line);
later reconnections are silent. Output produced while unlinked is not lost: it is in the
screen snapshot sent at the next registration (as output frames right after the register
message), and in the recording vt writes itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from vibetunnel.aio import race
from vibetunnel.auth.secret import SecretError, load_or_create_secret
from vibetunnel.auth.tokens import TokenService
from vibetunnel.config import SERVER_FILE, SERVER_LOCK
from vibetunnel.errors import ProtocolError
from vibetunnel.files import lock_holder
from vibetunnel.protocol import frames
from vibetunnel.protocol import host as messages
from vibetunnel.protocol.close import Close, reason
from vibetunnel.protocol.frames import MAX_FRAME
from vibetunnel.protocol.messages import exit_message
from vibetunnel.protocol.values import is_int

log = logging.getLogger("vibetunnel.vt")

NOT_SHARED = (
    "vt: no VibeTunnel server running: this session is recorded but not shared "
    "(it will appear when the server starts)"
)
RETRY = 1.0
"""Seconds between attempts to reach the server."""
TOKEN_TTL = 3600.0
REFUSED = (Close.UNSUPPORTED, Close.POLICY)
"""Close codes of a server that will not take this session (bad token, bad message)."""
OPEN_TIMEOUT = 5.0
FINISH_TIMEOUT = 3.0
"""Seconds vt waits, at exit, to hand its last output and exit code to the server."""


class ServerInfo(NamedTuple):
    url: str
    pid: int
    cert: str | None
    """The certificate it serves HTTPS with: the one a local client trusts (pinned)."""
    max_recording: int | None = None
    """Its `--max-recording-size`: where vt, started while it runs, ends its recording."""


def server_info(home: Path) -> ServerInfo | None:
    """The live server of `home`, or None (no server.json, or its pid is dead)."""
    try:
        info = json.loads((home / SERVER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    url, pid = info.get("url"), info.get("pid")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return None
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return None
    # The server only if that pid holds the home's lock now: a killed server's file names a
    # pid (and a port) that may since be anyone's, who would be sent our token.
    try:
        if lock_holder(home / SERVER_LOCK) != pid:
            return None
    except OSError:
        return None
    cert = info.get("cert")
    limit = info.get("maxRecordingSize")
    return ServerInfo(
        url.rstrip("/"),
        pid,
        cert if isinstance(cert, str) else None,
        limit if is_int(limit) and limit > 0 else None,
    )


def find_server(home: Path) -> str | None:
    """The URL of the live server of `home`, or None."""
    info = server_info(home)
    return None if info is None else info.url


def pinned_context(home: Path) -> ssl.SSLContext | None:
    """For an HTTPS server of `home`: a TLS context that trusts exactly its certificate (a
    self-signed one included); whatever name it was made for, the link is to loopback."""
    info = server_info(home)
    if info is None or not info.url.startswith("https:") or info.cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cafile=info.cert)
    return context


def token(home: Path) -> str | None:
    """A fresh token signed with the local secret (ignored by a --no-auth server)."""
    try:
        return TokenService(load_or_create_secret(home)).issue("vt", ttl=TOKEN_TTL)
    except (OSError, SecretError, ValueError) as exc:
        log.debug("no token: %s", exc)
        return None


def host_url(server_url: str, tok: str | None) -> str:
    """The host WebSocket URL of a server's http(s) URL."""
    scheme, rest = server_url.split("://", 1)
    url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}{messages.HOST_PATH}"
    return f"{url}?token={quote(tok, safe='')}" if tok else url


class Link:
    """The background connection of one vt session to the server, re-made after every drop."""

    def __init__(
        self,
        home: Path,
        register: Callable[[], messages.Register],
        handle: Callable[[messages.FromServer], None],
        notice: Callable[[str], None],
        *,
        retry: float = RETRY,
    ) -> None:
        self.home = home
        self._register = register
        self._handle = handle
        self._notice = notice
        self.retry = retry
        self.connected = False
        """True while registered with a server (output is then streamed)."""
        self.registrations = 0
        self._ws: ClientConnection | None = None
        self._pending = bytearray()
        self._texts: list[str] = []
        self._wakeup = asyncio.Event()
        self._exit_code: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    # -- from the relay ---------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Whole UTF-8 output of the program: streamed when linked, else dropped (it is in the
        screen snapshot the next registration sends)."""
        if self.connected and data:
            self._pending += data
            self._wakeup.set()

    def resized(self, cols: int, rows: int) -> None:
        """The PTY has a new size: tell the server, so it lists the right one."""
        if self.connected:
            self._texts.append(messages.resize_message(cols, rows))
            self._wakeup.set()

    def recording_failed(self, error: str) -> None:
        """vt's recording failed or stopped: tell the server (a later registration says it
        in its register message)."""
        if self.connected:
            self._texts.append(messages.recording_message(error))
            self._wakeup.set()

    async def finish(self, code: int, timeout: float = FINISH_TIMEOUT) -> None:
        """The program ended: send what is pending and the exit code, then close the link."""
        task, self._task = self._task, None
        if task is None:
            return
        self._exit_code = code
        self._wakeup.set()
        if self.connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await asyncio.shield(task)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # -- the connection loop ----------------------------------------------------------------

    async def _run(self) -> None:
        first = True
        refused = False
        while self._exit_code is None:
            ws = await self._connect()
            if ws is None:
                if first:
                    self._notice(NOT_SHARED)
            else:
                try:
                    await self._serve(ws)
                except (OSError, ConnectionClosed, WebSocketException) as exc:
                    log.debug("link dropped: %s", exc)
                except Exception:
                    log.exception("vt: server link failed; trying again")
                finally:
                    self.connected = False
                    self._pending.clear()
                    self._texts.clear()
                    await ws.close()
                if ws.close_code in REFUSED and not refused:
                    refused = True  # say it once: the retries are silent
                    self._notice(
                        f"vt: the server refused this session ({ws.close_reason or ws.close_code})"
                        ": it is recorded but not shared"
                    )
            first = False
            if self._exit_code is None:
                await asyncio.sleep(self.retry)

    async def _connect(self) -> ClientConnection | None:
        url = find_server(self.home)
        if url is None:
            return None
        try:
            return await connect(
                host_url(url, token(self.home)),
                ssl=pinned_context(self.home) if url.startswith("https:") else None,
                max_size=16 * 1024 * 1024,
                open_timeout=OPEN_TIMEOUT,
                close_timeout=1.0,
                proxy=None,
                compression=None,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.debug("cannot reach %s: %s", url, exc)
            return None

    async def _serve(self, ws: ClientConnection) -> None:
        # Snapshot and start collecting in one step: no output is both in the snapshot and
        # streamed, and none falls between.
        register = self._register()
        self._pending.clear()
        self._texts.clear()
        # The screen follows as output frames, which the server takes as it takes the screen
        # of the register message: escape sequences, JSON-escaped, could take one message
        # past the server's 1 MiB limit.
        self._pending += register.screen.encode("utf-8")
        self.connected = True
        self.registrations += 1
        await ws.send(dataclasses.replace(register, screen="").encode())
        _, task = await race(self._send(ws), self._receive(ws))
        exc = None if task.cancelled() else task.exception()
        if isinstance(exc, ProtocolError):
            await ws.close(Close.UNSUPPORTED, reason(exc.message))
        elif exc is not None:
            raise exc

    async def _send(self, ws: ClientConnection) -> None:
        while True:
            while self._texts:
                await ws.send(self._texts.pop(0))
            if self._pending:
                await ws.send(frames.take(self._pending, MAX_FRAME))
                continue
            if self._exit_code is not None:
                await ws.send(exit_message(self._exit_code))
                await ws.wait_closed()  # the server answers with close 1000
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _receive(self, ws: ClientConnection) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                raise ProtocolError("the server sent a binary message")
            self._handle(messages.parse_from_server(message))


def describe(sessions: Any) -> list[str]:
    """Rows of `vt --list`: a header, then one line per session of GET /api/sessions."""
    rows = [("ID", "NAME", "STATUS", "CLIENTS", "COMMAND")]
    for s in sessions if isinstance(sessions, list) else []:
        if not isinstance(s, dict):
            continue
        status = str(s.get("status", "?"))
        if status == "exited" and s.get("exitCode") is not None:
            status = f"exited ({s['exitCode']})"
        args = s.get("args")
        words = [s.get("command", ""), *(args if isinstance(args, list) else [])]
        command = " ".join(str(a) for a in words)
        clients = str(s.get("clients", 0))
        rows.append((str(s.get("id", "")), str(s.get("name", "")), status, clients, command))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    ]
