"""`vibetunnel recordings`: list the recorded sessions."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from vibetunnel.cli import home as homes
from vibetunnel.config import home_dir, recordings_dir
from vibetunnel.protocol.times import unix
from vibetunnel.recording.index import RecordingIndex

HELP = "list recorded sessions (newest first)"

_COLUMNS = ("ID", "NAME", "COMMAND", "STARTED", "DURATION", "EXIT")
_WIDEST = 40


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("--json", action="store_true", help="print the index as JSON")


def _clip(text: str) -> str:
    text = " ".join(text.split())  # no tabs or newlines in a table cell
    return text if len(text) <= _WIDEST else text[: _WIDEST - 1] + "…"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{seconds:.1f}s"


def _row(entry: dict[str, Any]) -> tuple[str, ...]:
    started = datetime.fromtimestamp(unix(entry["startedAt"])).strftime("%Y-%m-%d %H:%M:%S")
    if entry["endedAt"] is None:
        duration, exit_code = "running", "-"
    else:
        duration = _duration(entry["duration"])
        exit_code = "-" if entry["exitCode"] is None else str(entry["exitCode"])
    return (
        entry["id"],
        _clip(entry["name"]),
        _clip(entry["command"]),
        started,
        duration,
        exit_code,
    )


def format_table(entries: list[dict[str, Any]]) -> str:
    """The entries as an aligned text table with a header row."""
    rows = [_COLUMNS, *(_row(e) for e in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """List the index of `<home>/recordings`, without changing anything on disk."""
    if code := homes.refused(home_dir(), "vibetunnel recordings"):
        return code
    index = RecordingIndex(recordings_dir(home_dir()))
    # A server may be writing: read only, never repair from here.
    index.load(repair=False)
    entries = index.list()
    if args.json:
        sys.stdout.write(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    elif not entries:
        sys.stdout.write("No recordings.\n")
    else:
        sys.stdout.write(format_table(entries))
    return 0
