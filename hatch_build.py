"""Build the web app into the package, so installing a checkout yields the UI.

The front-end lives in frontend/ (TypeScript, bundled by esbuild). Its output goes to
src/vibetunnel/web/, which git ignores: no built third-party JavaScript is committed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class FrontendBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        frontend = root / "frontend"
        if os.environ.get("VIBETUNNEL_SKIP_FRONTEND") or not (frontend / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to build the web app (frontend/)")
        install = "ci" if (frontend / "package-lock.json").exists() else "install"
        subprocess.run([npm, install, "--no-audit", "--no-fund"], cwd=frontend, check=True)
        subprocess.run([npm, "run", "build"], cwd=frontend, check=True)
