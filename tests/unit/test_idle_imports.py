"""What an idle server loads: the serve path, the app built and a login token issued (as
`vibetunnel serve` does before it listens) must not import what only some requests or some
options need. Each of these is a few MB of an idle server's memory (docs/perf/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NOT_AT_IDLE = {
    "cryptography": "TLS certificates only (network.py, with --tls or a LAN address)",
    "redis": "only with --redis",
    "vibetunnel.cluster": "only with --redis",
    "segno": "the QR code, only for a server other devices reach",
}

SERVE_PATH = """
import json, pathlib, sys
import vibetunnel.cli.serve
from vibetunnel.api.app import create_app
from vibetunnel.auth import LOGIN_TOKEN_TTL
from vibetunnel.config import Config

app = create_app(Config(home=pathlib.Path(sys.argv[1])), keep_sessions=True)
app.state.tokens.issue("someone", LOGIN_TOKEN_TTL, kind="login")
print(json.dumps(sorted(sys.modules)))
"""


def test_an_idle_server_loads_nothing_it_does_not_need(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVE_PATH, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "fastapi" in loaded and "vibetunnel.api.app" in loaded  # the check checks something
    assert "jwt" in loaded  # PyJWT signs the tokens, without cryptography (auth/tokens.py)
    wrong = {
        name: why
        for name, why in NOT_AT_IDLE.items()
        if any(m == name or m.startswith(name + ".") for m in loaded)
    }
    assert wrong == {}, f"loaded by an idle server: {wrong}"


KEEPER_IMPORTS = """
import json, runpy, sys
sys.argv = ["keeper"]  # no home: it says how to call it, and returns
try:
    runpy.run_module("vibetunnel.keeper", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if sys.modules[m] is not None)))
"""


def test_the_keeper_loads_no_tls() -> None:
    # It starts with a server's first session: ssl (libssl, libcrypto) is 25 ms and 4 MB.
    done = subprocess.run(
        [sys.executable, "-c", KEEPER_IMPORTS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    loaded = json.loads(done.stdout)
    assert "vibetunnel.keeper.daemon" in loaded and "asyncio" in loaded
    assert not {"ssl", "_ssl"} & set(loaded)
