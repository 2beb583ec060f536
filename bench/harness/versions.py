"""The code under test: "after" is this working tree (or the checkout --after names), "before"
a git worktree of another revision (--compare REV) or any checkout (--before PATH). Servers of a
version run with `PYTHONPATH=<tree>/src`, which wins over the editable install.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .report import fail, progress

ROOT = Path(__file__).resolve().parents[2]
"""The checkout this bench belongs to."""


@dataclass(frozen=True)
class Version:
    """One code tree to run servers from."""

    label: str
    src: Path
    about: str

    @property
    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.src)}

    def check(self) -> None:
        """Fail now, not mid-run, if `vibetunnel` would not import from `src` with our env."""
        found = subprocess.run(
            [sys.executable, "-c", "import vibetunnel; print(vibetunnel.__file__)"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
        )
        expected = self.src / "vibetunnel" / "__init__.py"
        if found.returncode or Path(found.stdout.strip()) != expected:
            fail(
                f"{self.label}: vibetunnel does not import from {self.src}: "
                f"{found.stdout.strip() or found.stderr.strip()}"
            )
        # Bytecode, as an install makes it (pip compiles every module): with
        # PYTHONDONTWRITEBYTECODE set, every server and keeper would compile the package
        # from source at its start, some 50 ms of a first session's wait.
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(self.src / "vibetunnel")], check=True
        )


def git(*args: str, cwd: Path = ROOT) -> str:
    out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)
    if out.returncode:
        fail(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def _describe(tree: Path) -> str:
    head = git("rev-parse", "--short", "HEAD", cwd=tree)
    changed = git("status", "--porcelain", "--", "src", cwd=tree).splitlines()
    return f"{tree} at {head}" + (f" + {len(changed)} changed under src/" if changed else "")


def working_tree(label: str) -> Version:
    return Version(label, ROOT / "src", _describe(ROOT))


def from_path(label: str, path: Path) -> Version:
    """A checkout (or its src/ folder) given by path."""
    path = path.resolve()
    src = path / "src" if (path / "src" / "vibetunnel").is_dir() else path
    if not (src / "vibetunnel" / "__init__.py").is_file():
        fail(f"no vibetunnel package under {path} or {path}/src")
    tree = src.parent
    about = _describe(tree) if (tree / ".git").exists() else str(tree)
    return Version(label, src, about)


def from_rev(label: str, rev: str) -> Version:
    """A git worktree of `rev` at /tmp/vt-bench-<short sha>, added if missing."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    short = git("rev-parse", "--short", sha)
    path = Path(f"/tmp/vt-bench-{short}")
    if not path.exists():
        progress(f"git worktree add --detach {path} {short}")
        git("worktree", "add", "--detach", str(path), sha)
    elif git("rev-parse", "HEAD", cwd=path) != sha:
        fail(f"{path} exists but is not at {short}: remove it or use --before PATH")
    return from_path(label, path)


def chosen(
    args: argparse.Namespace, after: str = "after", alone: str | None = None
) -> tuple[Version | None, Version]:
    """The code the options of harness.options.add_versions name, checked: (before, or None
    without --compare and --before; the code under test, labelled `after`, or `alone` when
    there is no before)."""
    before: Version | None = None
    if getattr(args, "compare", None):
        before = from_rev("before", args.compare)
    elif getattr(args, "before", None):
        before = from_path("before", args.before)
    label = after if before is not None or alone is None else alone
    under_test = from_path(label, args.after) if args.after else working_tree(label)
    for version in (before, under_test):
        if version is not None:
            version.check()
    return before, under_test
