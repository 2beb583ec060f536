"""The one fake clock of the tests: what every `clock=` parameter gets instead of time.time."""

from __future__ import annotations

T0 = 1_700_000_000.0
"""A fixed moment (2023-11-14T22:13:20Z): tests start here unless they say otherwise."""


class FakeClock:
    """A callable that returns `now`, which only the test moves."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
