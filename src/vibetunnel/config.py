"""One Config, resolved once at start from the command line and the environment."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

HOME_ENV = "VIBETUNNEL_HOME"
SESSION_ENV = "VIBETUNNEL_SESSION_ID"
"""Set to the session's id in every program a session runs: a nested `vt` sees it, refuses."""
TERM = "xterm-256color"
"""The terminal every session's program is told it runs in (xterm.js emulates it)."""
NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A cluster node's name: it is part of Redis keys and of the web app's pages."""
SERVER_FILE = "server.json"
"""`<home>/server.json`: `{url, pid, cert, maxRecordingSize}` of the running server: how `vt`
finds it, and where vt ends its recording."""
SERVER_LOCK = "server.lock"
"""`<home>/server.lock`: locked (flock) by the running server for its lifetime; holds its pid.
Its holder (files.lock_holder) is the server: `stop` and `vt` trust that, not a pid on file."""


KIB = 1024
UNITS = {"": 1, "K": KIB, "M": KIB**2, "G": KIB**3, "T": KIB**4}
"""A SIZE's suffixes: powers of 1024 (K is KiB), as `ls -h` and `du -h` count."""
_SIZE = re.compile(r"(\d+(?:\.\d+)?)(?:([KMGT])(?:iB)?)?", re.IGNORECASE | re.ASCII)
MAX_RECORDING = KIB**3
"""Bytes of one recording at most (`serve --max-recording-size`, and `vt`'s own)."""
RECORDINGS_BUDGET = 20 * KIB**3
"""Bytes of all recordings together, past which finished ones go (`--recordings-budget`)."""
MIN_SIZE = 4 * KIB
"""The least either recording limit may be: room for a header and a few lines."""


def parse_size(text: str) -> int:
    """Bytes of a SIZE: a number of bytes (`1048576`), or a number with K, M, G or T, powers
    of 1024 (`100K`, `500M`, `1.5G`, `2T`; `GiB` and lower case too), rounded down to whole
    bytes. Raises ValueError, saying what a SIZE is, on anything else."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or (match.group(2) is None and "." in match.group(1)):
        raise ValueError(
            f"{text!r} is not a size: give whole bytes, or a number with K, M, G or T "
            "(powers of 1024), such as 500M or 1.5G"
        )
    number, unit = match.group(1), UNITS[(match.group(2) or "").upper()]
    if "." in number:
        return int(float(number) * unit)
    return int(number) * unit


def format_size(size: int) -> str:
    """`size` bytes for a person: `1 GiB`, `64 KiB`, `1.5 GiB`, `100 B`."""
    for unit in ("T", "G", "M", "K"):
        if size >= UNITS[unit]:
            value = f"{size / UNITS[unit]:.2f}".rstrip("0").rstrip(".")
            return f"{value} {unit}iB"
    return f"{size} B"


def home_dir() -> Path:
    """`$VIBETUNNEL_HOME`, else `~/.vibetunnel`."""
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path.home() / ".vibetunnel"


def recordings_dir(home: Path) -> Path:
    """`<home>/recordings`: one `<session id>.cast` per session, and metadata.json."""
    return home / "recordings"


@dataclass
class Config:
    """Every setting of one server. The defaults here are `vibetunnel serve`'s defaults."""

    host: str = "127.0.0.1"
    """Loopback by default: a shell is exposed to the network only when asked (--host)."""
    port: int = 4020
    auth: bool = True
    rate_limit: int = 100
    """Requests per minute per client (token subject, else address)."""
    record: bool = True
    """Write an asciicast recording of every session."""
    record_input: bool = False
    home: Path = field(default_factory=home_dir)
    max_sessions: int = 100
    """Running sessions at once; one more is answered with 429."""
    keep_recordings_days: float | None = None
    max_recording_size: int = MAX_RECORDING
    """Bytes of one recording at most: it ends there (its session says so)."""
    recordings_budget: int = RECORDINGS_BUDGET
    """Bytes of all recordings together; past it, finished ones are deleted, oldest first."""
    ws_idle_timeout: float = 60.0
    """Seconds without any client message before the server closes with 1001."""
    tls_cert: Path | None = None
    """Serve HTTPS with this certificate (PEM) and `tls_key`; None: plain HTTP."""
    tls_key: Path | None = None
    trusted_proxies: list[str] = field(default_factory=list)
    """Networks whose `X-Forwarded-For` names the client; from anyone else it is ignored."""
    header_timeout: float = 10.0
    """Seconds a request's headers have to arrive (slow or silent clients are cut off)."""
    max_connections_per_address: int = 256
    """Open connections per client address (every loopback address is one)."""
    redis_url: str | None = None
    """Join the cluster of servers sharing this Redis (docs/cluster.md); None: one machine.
    It may hold a password: never log it (cluster/link.py has `redacted`)."""
    node: str = field(default_factory=socket.gethostname)
    """This server's name in the cluster (the host name unless told)."""
    cluster_ttl: float = 15.0
    """Seconds a node stays `online` after its last heartbeat (sent every third of this)."""

    @property
    def recordings_dir(self) -> Path:
        return recordings_dir(self.home)
