"""Times on the wire and in the index: ISO 8601 UTC with milliseconds, one format everywhere.

`2024-01-01T00:00:00.123Z` is what JavaScript's `Date.prototype.toISOString()` writes and
`Date.parse` reads; every time in the HTTP API and in metadata.json has this form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeGuard, overload

from vibetunnel.protocol.values import is_number

EARLIEST = datetime(1, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
"""The Unix times `iso` can write: the years 1 to 9999 (those of `datetime`, and of the
four-digit years JavaScript's Date reads in this format)."""


def formattable(t: object) -> TypeGuard[int | float]:
    """Whether `t` is a Unix time `iso` can write: a number (not a bool), finite, within
    EARLIEST..LATEST. A time read back from a file or from Redis is checked with this."""
    return is_number(t) and EARLIEST <= t <= LATEST


@overload
def iso(t: float) -> str: ...
@overload
def iso(t: None) -> None: ...
def iso(t: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC with milliseconds; None stays None (not ended yet)."""
    if t is None:
        return None
    stamp = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def unix(stamp: str) -> float:
    """An ISO 8601 time (a naive one is taken as UTC) as a Unix time. Raises ValueError."""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def is_stamp(value: object) -> bool:
    """Whether `value` is an ISO 8601 time that `unix` reads and whose Unix time `iso` can
    write again (an offset may push a year-1 or year-9999 stamp out of range)."""
    if not isinstance(value, str) or len(value) > 64:
        return False
    try:
        return formattable(unix(value))
    except (ValueError, OverflowError):
        return False
