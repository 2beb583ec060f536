"""`vibetunnel play ID`: replay a recording to this terminal."""

from __future__ import annotations

import argparse
import sys
import time

from vibetunnel.cli import home as homes
from vibetunnel.config import home_dir, recordings_dir
from vibetunnel.errors import RecordingNotFound
from vibetunnel.recording.asciicast import CastFormatError, parse
from vibetunnel.recording.index import RecordingIndex

HELP = "replay a recording to the terminal"

sleep = time.sleep
"""How play waits between events (tests replace it)."""


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("id", metavar="ID", help="the recording id (see `vibetunnel recordings`)")
    parser.add_argument(
        "--speed", type=_positive, default=1.0, help="playback speed factor (default 1)"
    )
    parser.add_argument(
        "--max-wait",
        type=_non_negative,
        default=None,
        metavar="S",
        help="never pause more than S seconds between events",
    )


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.write(text.encode(encoding, "replace").decode(encoding))
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    """Write the recording's output events to stdout, keeping (scaled) time."""
    # What a recording holds goes to this terminal as it is: only from a home of ours.
    if code := homes.refused(home_dir(), "vibetunnel play"):
        return code
    try:
        with RecordingIndex(recordings_dir(home_dir())).open(args.id) as f:
            raw = f.read()
        # "replace": a torn multi-byte character in the last line must not stop us.
        _, events = parse(raw.decode("utf-8", "replace"))
    except RecordingNotFound:
        print(f"vibetunnel play: no recording {args.id!r}", file=sys.stderr)
        return 1
    except (OSError, CastFormatError) as e:
        print(f"vibetunnel play: cannot read recording {args.id!r}: {e}", file=sys.stderr)
        return 1
    previous = 0.0
    try:
        for t, kind, data in events:
            if kind != "o":
                continue
            wait = (t - previous) / args.speed
            if args.max_wait is not None:
                wait = min(wait, args.max_wait)
            if wait > 0:
                sleep(wait)
            previous = t
            _write(data)
    except KeyboardInterrupt:
        return 130
    return 0
