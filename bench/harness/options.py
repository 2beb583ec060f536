"""The command line every bench shares: the same names mean the same thing in each.

- `--rounds N`: interleaved rounds, the cells their medians (min-max);
- `--compare REV` or `--before PATH`: the "before" code of a side-by-side run (a git worktree
  of REV, or a checkout); `--after PATH`: the code under test (default: this tree);
- `--json PATH`: the figures of the run, as JSON (default: $BENCH_JSON, else none);
- `--quick`: smaller defaults for a short run; what is given on the command line still wins;
- lists (`--servers`, `--loads`, `--targets`) are comma-separated, each name checked.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose --help shows the bench's docstring: its first line, then the rest."""
    head, _, rest = doc.strip().partition("\n")
    return argparse.ArgumentParser(
        description=head,
        epilog=rest.strip("\n") or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_rounds(ap: argparse.ArgumentParser, default: int, what: str = "interleaved rounds") -> None:
    ap.add_argument("--rounds", type=int, default=default, help=f"{what} (default {default})")


def add_versions(
    ap: argparse.ArgumentParser,
    before: bool = True,
    required: bool = False,
    after_aliases: Sequence[str] = (),
) -> None:
    """--compare REV | --before PATH (unless `before` is False), and --after PATH (with
    `after_aliases`, the names a bench called it by before)."""
    if before:
        which = ap.add_mutually_exclusive_group(required=required)
        which.add_argument("--compare", metavar="REV", help="before: a git worktree of REV")
        which.add_argument("--before", metavar="PATH", type=Path, help="before: checkout at PATH")
    ap.add_argument(
        "--after",
        *after_aliases,
        dest="after",
        metavar="PATH",
        type=Path,
        help="the code under test: checkout at PATH (default: this tree)",
    )


def add_json(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--json",
        metavar="PATH",
        type=Path,
        default=Path(os.environ["BENCH_JSON"]) if os.environ.get("BENCH_JSON") else None,
        help="write the figures there, as JSON (default: $BENCH_JSON)",
    )


def add_quick(
    ap: argparse.ArgumentParser, help: str, argv: Sequence[str] | None = None, **defaults: Any
) -> None:
    """--quick: `defaults` replace the parser's own, so an option given still wins."""
    ap.add_argument("--quick", action="store_true", help=help)
    if "--quick" in (sys.argv[1:] if argv is None else argv):
        ap.set_defaults(**defaults)


def names(ap: argparse.ArgumentParser, text: str, allowed: Sequence[str], what: str) -> list[str]:
    """A comma-separated list of names out of `allowed`; an unknown one is a usage error."""
    chosen = [name for name in text.split(",") if name]
    if bad := sorted(set(chosen) - set(allowed)):
        ap.error(f"unknown {what}: {', '.join(bad)} (of {','.join(allowed)})")
    return chosen


def at_least_one(ap: argparse.ArgumentParser, args: argparse.Namespace, *dests: str) -> None:
    """Each of these options is at least 1 (a count, a size): a usage error otherwise."""
    if any(getattr(args, dest) < 1 for dest in dests):
        flags = [f"--{dest.replace('_', '-')}" for dest in dests]
        listed = ", ".join(flags[:-1]) + f" and {flags[-1]}" if len(flags) > 1 else flags[0]
        ap.error(f"{listed} must be at least 1")
