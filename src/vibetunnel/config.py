"""One Config, resolved once at start from the command line and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4020


def home_dir() -> Path:
    """`$VIBETUNNEL_HOME`, else `~/.vibetunnel`."""
    env = os.environ.get("VIBETUNNEL_HOME")
    return Path(env) if env else Path.home() / ".vibetunnel"


@dataclass
class Config:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
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
    ws_idle_timeout: float = 60.0
    """Seconds without any client message before the server closes with 1001."""

    @property
    def recordings_dir(self) -> Path:
        return self.home / "recordings"
