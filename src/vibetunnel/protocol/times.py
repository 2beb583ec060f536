"""Times on the wire and in the index: ISO 8601 UTC with milliseconds, one format everywhere.

`2024-01-01T00:00:00.123Z` is what JavaScript's `Date.prototype.toISOString()` writes and
`Date.parse` reads; every time in the HTTP API and in metadata.json has this form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


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
