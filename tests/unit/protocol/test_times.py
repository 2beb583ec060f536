"""One time format on the wire and in the index; one check of JSON numbers."""

from __future__ import annotations

import pytest

from vibetunnel.protocol.times import iso, unix
from vibetunnel.protocol.values import is_int, is_number

T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def test_iso_is_utc_with_milliseconds_like_javascript() -> None:
    assert iso(T0) == "2024-01-01T00:00:00.000Z"
    assert iso(T0 + 0.1234567) == "2024-01-01T00:00:00.123Z"
    assert iso(None) is None


def test_unix_reads_iso_back() -> None:
    assert unix(iso(T0 + 1.5)) == T0 + 1.5
    assert unix("2024-01-01T00:00:00") == T0  # naive: UTC
    with pytest.raises(ValueError):
        unix("yesterday")


@pytest.mark.parametrize(
    ("value", "integer", "number"),
    [
        (1, True, True),
        (1.5, False, True),
        (True, False, False),
        ("1", False, False),
        (None, False, False),
    ],
)
def test_json_value_checks(value: object, integer: bool, number: bool) -> None:
    assert is_int(value) is integer
    assert is_number(value) is number
