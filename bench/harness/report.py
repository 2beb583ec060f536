"""What a bench prints: progress on stderr, figures as cells, tables, and the run's JSON.

Pure but for the printing: no server, no process table, so tests/unit checks it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

NAME = Path(sys.argv[0]).stem
"""The bench running (bench, peers, edge, ...): the prefix of its progress lines."""

Results = dict[str, dict[str, list[float]]]
"""figure -> target (a server, "bare", a version's label) -> one value per round (or sample)."""


def progress(text: str) -> None:
    """One line on stderr, so that stdout holds the figures alone."""
    print(f"{NAME}: {text}", file=sys.stderr, flush=True)


def fail(text: str) -> NoReturn:
    """End the bench before it starts anything, with `text`."""
    sys.exit(f"{NAME}: {text}")


def results() -> Results:
    """An empty Results, every figure and target an empty list until appended to."""
    return defaultdict(lambda: defaultdict(list))


def merge(into: Results, more: Results) -> None:
    """Append every figure of `more` to `into`."""
    for key, by_target in more.items():
        for target, values in by_target.items():
            into[key][target] += values


# -- figures ------------------------------------------------------------------------------------


def quantile(xs: Sequence[float], q: float) -> float:
    """The q-quantile of xs by rank (no interpolation): q=0.5 of 4 values is the 3rd."""
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def quantile_ms(seconds: Sequence[float], q: float) -> float:
    """`quantile` of durations in seconds, in ms."""
    return quantile(seconds, q) * 1000


def add_latency(out: Results, target: str, seconds: Sequence[float], p50: str, p99: str) -> None:
    """The median and the p99 of durations in seconds, in ms, under `p50` and `p99`."""
    out[p50][target].append(quantile_ms(seconds, 0.5))
    out[p99][target].append(quantile_ms(seconds, 0.99))


def cell(xs: Sequence[float], digits: int) -> str:
    """The median of the rounds, and their range where there are several: "12.3 (11.9-13.0)"."""
    if not xs:
        return "-"
    text = f"{statistics.median(xs):.{digits}f}"
    if len(xs) > 1:
        text += f" ({min(xs):.{digits}f}-{max(xs):.{digits}f})"
    return text


def ratio(before: Sequence[float], after: Sequence[float]) -> str:
    """after / before of the medians, "-" where either is missing or before is not positive."""
    if not before or not after or statistics.median(before) <= 0 or statistics.median(after) < 0:
        return "-"
    return f"{statistics.median(after) / statistics.median(before):.2f}"


# -- tables -------------------------------------------------------------------------------------


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell: the first to the left, the others to the right.
    A shorter row (a title of one cell) counts in the widths of the columns it has."""
    widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(max(len(r) for r in rows))]
    return [
        "  ".join(
            c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)
        ).rstrip()
        for r in rows
    ]


def markdown(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table: the head, a rule, the rows."""
    return ["| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows]]


# -- the run's context --------------------------------------------------------------------------


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg has them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def command_line() -> str:
    """When, and the command as it was typed: "2026-12-01 10:00: python bench/peers.py ..."."""
    args = " ".join(sys.argv[1:])
    return f"{datetime.datetime.now():%Y-%m-%d %H:%M}: python bench/{NAME}.py {args}".rstrip()


def machine() -> str:
    """The machine's name, its CPUs and Python's version."""
    return f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def write_json(path: Path | None, figures: Any) -> None:
    """With --json PATH: the command and the run's figures, as JSON (nothing without)."""
    if path is None:
        return
    data = {"command": command_line(), "machine": machine(), "figures": figures}
    path.write_text(json.dumps(data, indent=1, default=_plain) + "\n")
    progress(f"figures written to {path}")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)
