"""One time format on the wire and in the index; one check of JSON numbers."""

from __future__ import annotations

import pytest

from vibetunnel.protocol.times import EARLIEST, LATEST, formattable, is_stamp, iso, unix
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


@pytest.mark.parametrize(
    ("t", "ok"),
    [
        (T0, True),
        (0, True),
        (EARLIEST, True),
        (LATEST, True),
        (LATEST + 1, False),
        (EARLIEST - 1, False),
        (1e20, False),
        (float("nan"), False),
        (float("inf"), False),
        (True, False),
        ("1704067200", False),
        (None, False),
    ],
)
def test_formattable_says_whether_iso_can_write_it(t: object, ok: bool) -> None:
    assert formattable(t) is ok
    if ok:
        assert isinstance(iso(t), str)  # type: ignore[arg-type]
    elif isinstance(t, float):
        with pytest.raises((ValueError, OverflowError, OSError)):
            iso(t)


@pytest.mark.parametrize(
    ("stamp", "ok"),
    [
        ("2024-01-01T00:00:00.000Z", True),
        ("0001-01-01T00:00:00", True),
        ("0001-01-01T00:00:00+05:00", False),  # before year 1 in UTC
        ("9999-12-31T23:59:59-05:00", False),  # after year 9999 in UTC
        ("yesterday", False),
        ("", False),
        (1704067200, False),
        (None, False),
    ],
)
def test_is_stamp_is_a_time_read_and_written_again(stamp: object, ok: bool) -> None:
    assert is_stamp(stamp) is ok
    if ok:
        assert isinstance(iso(unix(stamp)), str)  # type: ignore[arg-type]
