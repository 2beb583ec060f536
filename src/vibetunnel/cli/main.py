"""`vibetunnel COMMAND`: dispatch to the command modules."""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from vibetunnel import __version__

COMMANDS = ("serve", "stop", "token", "login-link", "passwd", "recordings", "play")


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"vibetunnel.cli.{name.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name == f"vibetunnel.cli.{name.replace('-', '_')}":
            return None
        raise


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="vibetunnel", description="Real terminals in the browser.")
    top.add_argument("--version", action="version", version=f"vibetunnel {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(cmd)
        cmd.set_defaults(run=module.run)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
