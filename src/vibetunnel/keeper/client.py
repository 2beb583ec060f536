"""The server's side of the keeper: find or start it, attach, spawn, and hear of exits.

`claim` runs first at start: one server per home. `find` (blocking, before the server
listens) attaches to a keeper that runs from before and receives every session with its PTY
master; no keeper is started then. `KeeperLink` carries the connection on the event loop and,
at the first spawn with none attached, starts the keeper and attaches (`attach`): an idle
server with no session has no keeper beside it.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibetunnel.config import SERVER_LOCK
from vibetunnel.errors import VibeTunnelError
from vibetunnel.files import private_dir
from vibetunnel.keeper import table
from vibetunnel.keeper.channel import (
    Channel,
    Inbox,
    Message,
    peer_uid,
    recv_messages,
    send_message,
)
from vibetunnel.keeper.daemon import INFO, SOCKET
from vibetunnel.keeper.wire import PROTOCOL, WireError
from vibetunnel.protocol.close import Close
from vibetunnel.protocol.sessions import MAX_EXIT
from vibetunnel.protocol.times import formattable
from vibetunnel.protocol.values import is_int
from vibetunnel.pty.manager import SECRET_ENV
from vibetunnel.pty.process import PtyProcess

START_TIMEOUT = 10.0
ANSWER_TIMEOUT = 30.0
LOG = "keeper.log"


class KeeperError(VibeTunnelError):
    """The keeper cannot be reached, or will not take this server."""

    status = 503
    code = "keeper_unavailable"
    close_code = Close.INTERNAL


def keeper_pid(home: Path) -> int | None:
    """The pid in `<home>/keeper.json` if that process is alive."""
    try:
        pid = json.loads((home / INFO).read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(pid, int) or pid <= 0:
        return None
    return pid if alive(pid) else None


def connect(home: Path) -> socket.socket | None:
    """A connection to the running keeper of `home`, or None when none listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(home / SOCKET))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        raise KeeperError(f"cannot reach the session keeper: {exc.strerror}") from None
    if peer_uid(sock) != os.getuid():
        sock.close()
        raise KeeperError(f"{home / SOCKET} belongs to another user")
    return sock


def start(home: Path) -> None:
    """Start a keeper for `home`: in its own session (no terminal's Ctrl-C reaches it), and
    not our child (it forks away at once), so it outlives this server."""
    private_dir(home)
    log = os.open(home / LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        first = subprocess.run(
            [sys.executable, "-m", "vibetunnel.keeper", "--fork", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            cwd="/",
            env={k: v for k, v in os.environ.items() if k not in SECRET_ENV},
            timeout=START_TIMEOUT,
        )
    finally:
        os.close(log)
    if first.returncode != 0:
        raise KeeperError(f"the session keeper failed to start (see {home / LOG})")


def connect_or_start(home: Path, timeout: float = START_TIMEOUT) -> socket.socket:
    sock = connect(home)
    if sock is not None:
        return sock
    start(home)
    deadline = time.monotonic() + timeout
    while True:
        sock = connect(home)
        if sock is not None:
            return sock
        if time.monotonic() > deadline:
            raise KeeperError(f"the session keeper did not start within {timeout:g} s")
        time.sleep(0.01)


@dataclass
class Attachment:
    """What a server gets on attaching: the connection, and every session with its master."""

    sock: socket.socket
    keeper_pid: int
    sessions: list[tuple[Message, int | None]] = field(default_factory=list)
    later: list[tuple[Message, list[int]]] = field(default_factory=list)
    """What the keeper sent after `ready` in the same read (an exit, say)."""
    inbox: Inbox = field(default_factory=Inbox)
    """Bytes of a message still on its way, for the Channel to carry on from."""

    def close(self) -> None:
        for _, fd in self.sessions:
            if fd is not None:
                os.close(fd)
        for _, fds in self.later:
            for fd in fds:
                os.close(fd)
        self.sessions.clear()
        self.later.clear()
        self.inbox.close()
        self.sock.close()


def claim(home: Path) -> int:
    """Make this process the one server of `home` for as long as it lives (or until the
    returned fd is closed). Raises KeeperError naming the server that holds it.

    The keeper refuses a second server too, but it may not run yet (it starts with the first
    session), so the home itself is locked. The kernel drops the lock when the process dies.
    """
    private_dir(home)
    fd = os.open(home / SERVER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            pid = int(os.pread(fd, 32, 0).decode() or 0)
        except ValueError:
            pid = 0
        os.close(fd)
        raise KeeperError(f"another server (pid {pid}) is running with this home") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def find(
    home: Path, timeout: float = ANSWER_TIMEOUT, max_recording: int | None = None
) -> Attachment | None:
    """Attach to the keeper of `home` if one runs, or start one if the last keeper left
    sessions in its table (programs that ended while no server ran, or ran under a killed
    keeper): the sessions of earlier servers come back. None if there are none: no keeper
    is started. Raises KeeperError."""
    sock = connect(home)
    if sock is None and table.left(home):
        return attach(home, timeout, max_recording)
    return None if sock is None else _hello(sock, timeout, max_recording)


def attach(
    home: Path, timeout: float = ANSWER_TIMEOUT, max_recording: int | None = None
) -> Attachment:
    """Attach this process as the server of `home`'s keeper, starting the keeper if none
    runs. `max_recording`: the bytes at which the keeper ends a recording it carries on
    while no server runs (None: the default, config.MAX_RECORDING). Raises KeeperError."""
    return _hello(connect_or_start(home), timeout, max_recording)


def _hello(sock: socket.socket, timeout: float, max_recording: int | None) -> Attachment:
    inbox = Inbox()
    hello = {"type": "hello", "protocol": PROTOCOL, "pid": os.getpid()}
    if max_recording is not None:
        hello["maxRecording"] = max_recording
    try:
        send_message(sock, hello)
        got = recv_messages(sock, lambda m: m["type"] in ("ready", "refused"), timeout, inbox)
    except (OSError, TimeoutError, WireError) as exc:
        sock.close()
        raise KeeperError(f"the session keeper did not answer: {exc}") from None
    first, _ = got[0]
    if first["type"] == "refused":
        sock.close()
        raise KeeperError(str(first.get("why")))
    attachment = Attachment(sock, int(first.get("pid", 0)), inbox=inbox)
    ready = False
    for message, fds in got[1:]:
        if ready:
            attachment.later.append((message, fds))
        elif message["type"] == "session":
            attachment.sessions.append((message, fds[0] if fds else None))
        else:
            ready = message["type"] == "ready"
            for fd in fds:
                os.close(fd)
    return attachment


def stop(home: Path, sessions: bool, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any] | None:
    """Ask the keeper to stop (ending every program with `sessions`); None if none runs.

    Returns its answer {ended, running} once it is done, and, if it exits, once it has.
    """
    sock = connect(home)
    if sock is None:
        return None
    pid = keeper_pid(home)
    with sock:
        send_message(sock, {"type": "stop", "sessions": sessions})
        try:
            got = recv_messages(sock, lambda m: m["type"] == "stopped", timeout)
        except ConnectionError:
            return {"ended": 0, "running": 0}
    answer = got[-1][0]
    if pid is not None and (sessions or not answer.get("running")):
        gone(pid, timeout)
    return answer


def gone(pid: int, timeout: float) -> bool:
    """Wait until process `pid` has ended (at most `timeout` seconds); whether it has."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that does not reap."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != b"Z"


class KeeperLink:
    """The attached connection on the running loop."""

    def __init__(
        self,
        home: Path,
        on_exit: Callable[[str, int | None, float], None],
        on_lost: Callable[[str], None],
        on_kept: Callable[[list[tuple[Message, int | None]]], None],
        max_recording: int | None = None,
    ) -> None:
        self.home = home
        self.max_recording = max_recording
        """Told to the keeper at each hello: where it ends the recordings it carries on."""
        self._on_exit = on_exit
        self._on_lost = on_lost
        self._on_kept = on_kept
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[int, int]]] = {}
        self._leaving = False
        self.keeper_pid = 0
        self.channel: Channel | None = None
        self._attaching = asyncio.Lock()

    def take(self, attachment: Attachment) -> None:
        """Carry `attachment` on the loop; hand its sessions to `on_kept`."""
        self.keeper_pid = attachment.keeper_pid
        self.channel = Channel(attachment.sock, self._message, self._closed, attachment.inbox)
        sessions, attachment.sessions = attachment.sessions, []
        later, attachment.later = attachment.later, []
        self._on_kept(sessions)
        for message, fds in later:
            self._message(message, fds)

    async def _ensure(self) -> Channel:
        # No keeper yet (none ran when this server started), or one that was killed: a new
        # one is started at the next spawn. One attach at a time: the keeper would refuse
        # this same server's second hello.
        async with self._attaching:
            if self.channel is None or self.channel.closed:
                self.take(
                    await asyncio.to_thread(attach, self.home, max_recording=self.max_recording)
                )
        assert self.channel is not None
        return self.channel

    async def spawn(self, request: dict[str, Any]) -> PtyProcess:
        """A new program. Raises OSError as a spawn would, or KeeperError."""
        pid, fd = await self._spawn(request)
        os.set_blocking(fd, False)
        return PtyProcess(fd, pid)

    async def _spawn(self, request: dict[str, Any]) -> tuple[int, int]:
        channel = await self._ensure()
        req = next(self._ids)
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._waiting[req] = future
        channel.send({"type": "spawn", "req": req, **request})
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                return await future
        except TimeoutError:
            # Not an OSError of the spawn (TimeoutError is one): the keeper is at fault.
            why = f"the session keeper did not answer within {ANSWER_TIMEOUT:g} s"
            raise KeeperError(why) from None
        finally:
            self._waiting.pop(req, None)

    def renamed(self, session_id: str, name: str) -> None:
        if self.channel is not None:
            self.channel.send({"type": "renamed", "id": session_id, "name": name})

    def forget(self, session_id: str) -> None:
        if self.channel is not None:
            self.channel.send({"type": "forget", "id": session_id})

    async def leave(self, screens: list[tuple[str, bytes, bytes]]) -> None:
        """A clean stop: hand each running session's screen over, then say bye."""
        self._leaving = True
        channel = self.channel
        if channel is None or channel.closed:
            return
        for session_id, screen, held in screens:
            channel.send(
                {"type": "screen", "id": session_id, "data": screen.decode(), "held": held.hex()}
            )
        channel.send({"type": "bye"})
        await channel.drain(5.0)
        channel.close()

    def _message(self, message: Message, fds: list[int]) -> None:
        kind = message["type"]
        if kind == "exited":
            code = message.get("code")
            at = message.get("at")
            self._on_exit(
                str(message.get("id")),
                code if is_int(code) and 0 <= code <= MAX_EXIT else None,
                float(at) if formattable(at) else time.time(),
            )
        elif kind in ("spawned", "failed"):
            req = message.get("req")
            future = self._waiting.get(req) if is_int(req) else None
            if kind == "spawned" and future is not None and not future.done():
                pid = message.get("pid")
                if len(fds) == 1 and is_int(pid) and pid > 0:
                    future.set_result((pid, fds[0]))
                    return
                message = {"why": "the session keeper's answer was malformed"}
            for fd in fds:
                os.close(fd)
            if future is not None and not future.done():
                why = str(message.get("why") or "cannot start")[:200]
                errno = message.get("errno")
                future.set_exception(
                    OSError(errno, why) if is_int(errno) and errno else KeeperError(why)
                )
        else:
            for fd in fds:
                os.close(fd)

    def _closed(self) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(KeeperError("the session keeper is gone"))
        if not self._leaving:
            self._on_lost(f"the session keeper (pid {self.keeper_pid}) was killed or crashed")
