"""The front-end's own unit tests (framing, close-code policy, keys, routes): `npm test`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import UNIT

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def test_frontend_unit_tests() -> None:
    npm = shutil.which("npm")
    if npm is None or not (FRONTEND / "node_modules").is_dir():
        pytest.skip("needs npm and frontend/node_modules (npm ci in frontend/)")
    run = subprocess.run(
        [npm, "test", "--silent"], cwd=FRONTEND, capture_output=True, text=True, timeout=120 * UNIT
    )
    assert run.returncode == 0, run.stdout + run.stderr
