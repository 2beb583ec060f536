"""The code under test: "after" is this working tree, "before" a git worktree of another
revision (or any checkout). Servers of a version run with `PYTHONPATH=<tree>/src`, which wins
over the editable install.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
            sys.exit(
                f"bench: {self.label}: vibetunnel does not import from {self.src}: "
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
        sys.exit(f"bench: git {' '.join(args)}: {out.stderr.strip()}")
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
        sys.exit(f"bench: no vibetunnel package under {path} or {path}/src")
    tree = src.parent
    about = _describe(tree) if (tree / ".git").exists() else str(tree)
    return Version(label, src, about)


def from_rev(label: str, rev: str) -> Version:
    """A git worktree of `rev` at /tmp/vt-bench-<short sha>, added if missing."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    short = git("rev-parse", "--short", sha)
    path = Path(f"/tmp/vt-bench-{short}")
    if not path.exists():
        print(f"bench: git worktree add --detach {path} {short}", file=sys.stderr)
        git("worktree", "add", "--detach", str(path), sha)
    elif git("rev-parse", "HEAD", cwd=path) != sha:
        sys.exit(f"bench: {path} exists but is not at {short}: remove it or use --before PATH")
    return from_path(label, path)


def add_before_options(ap: argparse.ArgumentParser, required: bool = False) -> None:
    """--compare REV or --before PATH: the "before" code of a side-by-side run."""
    which = ap.add_mutually_exclusive_group(required=required)
    which.add_argument("--compare", metavar="REV", help="before: git worktree of REV")
    which.add_argument("--before", metavar="PATH", type=Path, help="before: checkout at PATH")


def before(args: argparse.Namespace) -> Version | None:
    """The "before" version `add_before_options` asked for, or None."""
    if args.compare:
        return from_rev("before", args.compare)
    if args.before:
        return from_path("before", args.before)
    return None
