"""asciicast v2 encode/parse: pure, no I/O."""

from __future__ import annotations

import json

import pytest

from vibetunnel.recording.asciicast import (
    CastFormatError,
    event_bytes,
    event_line,
    header_line,
    parse,
    parse_event,
    parse_header,
    resize_data,
    valid_prefix_length,
)

ENV = {"SHELL": "/bin/bash", "TERM": "xterm-256color"}
HEADER = header_line(80, 24, 1704067200, ENV, "bash -l", "my session")

TRICKY = [
    "",
    "plain",
    'say "hi"',
    "back\\slash \\n not a newline",
    "line\nbreak\r\ncrlf\rcr",
    "\x1b[1;31mred\x1b[0m\x1b]0;title\x07",
    "".join(chr(c) for c in range(32)) + "\x7f",
    "emoji 😀👍🏽 family 👨‍👩‍👧",
    "CJK 漢字かなカナ 한국어",
    "combining e\u0301 a\u0308 Z\u0336",
    "separators \u2028 \u2029 \x85 nel",
    'json-ish [1, "o", "x"]\n{"version": 2}',
    "x" * 100_000,
]


def test_header_line_is_one_json_line_with_version_2() -> None:
    assert HEADER.endswith("\n") and HEADER.count("\n") == 1
    header = json.loads(HEADER)
    assert header == {
        "version": 2,
        "width": 80,
        "height": 24,
        "timestamp": 1704067200,
        "env": ENV,
        "command": "bash -l",
        "title": "my session",
    }


def test_header_timestamp_is_an_integer() -> None:
    assert json.loads(header_line(1, 1, 1704067200.987, {}, "", ""))["timestamp"] == 1704067200


@pytest.mark.parametrize("text", TRICKY)
def test_header_strings_round_trip(text: str) -> None:
    line = header_line(10, 5, 0, {"X": text}, text, text)
    assert line.count("\n") == 1 and "\r" not in line
    header = parse_header(line)
    assert header["command"] == header["title"] == header["env"]["X"] == text


@pytest.mark.parametrize(("width", "height"), [(0, 24), (80, 0), (-1, 24), (True, 24)])
def test_header_rejects_bad_size(width: int, height: int) -> None:
    with pytest.raises(ValueError):
        header_line(width, height, 0, {}, "", "")


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("kind", ["o", "i", "r"])
def test_event_line_round_trips_without_raw_line_breaks(text: str, kind: str) -> None:
    line = event_line(1.5, kind, text)
    assert line.endswith("\n")
    body = line[:-1]
    # No character any reader could take for a line break.
    assert body.splitlines() == [body]
    assert parse_event(line) == (1.5, kind, text)
    assert json.loads(line) == [1.5, kind, text]


def test_event_line_keeps_unicode_readable() -> None:
    assert "😀" in event_line(0, "o", "😀") and "漢" in event_line(0, "o", "漢")


def test_event_line_replaces_lone_surrogates() -> None:
    line = event_line(0, "o", "a\ud800b\udfffc")
    line.encode("utf-8")  # would raise with a raw surrogate
    assert parse_event(line)[2] == "a\ufffdb\ufffdc"


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (0, "0"),
        (0.1234564, "0.123456"),
        (0.1234566, "0.123457"),
        (1.0, "1.0"),
        (12345.000001, "12345.000001"),
        (3.0000004, "3.0"),
    ],
)
def test_event_time_is_rounded_to_microseconds(t: float, text: str) -> None:
    assert event_line(t, "o", "x") == f'[{text}, "o", "x"]\n'


@pytest.mark.parametrize("t", [-0.5, float("nan"), float("inf")])
def test_event_line_rejects_bad_times(t: float) -> None:
    with pytest.raises(ValueError):
        event_line(t, "o", "x")


def test_event_line_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        event_line(0, "x", "data")


def test_resize_data() -> None:
    assert resize_data(120, 40) == "120x40"
    with pytest.raises(ValueError):
        resize_data(0, 40)
    with pytest.raises(ValueError):
        resize_data(80, -1)


def make_cast(events: list[tuple[float, str, str]]) -> str:
    return HEADER + "".join(event_line(*e) for e in events)


EVENTS = [(0.0, "o", "$ ls\r\n"), (0.25, "i", "l"), (0.5, "r", "100x30"), (1.0, "o", "é😀\n")]


def test_parse_round_trip() -> None:
    header, events = parse(make_cast(EVENTS))
    assert header["width"] == 80 and header["command"] == "bash -l"
    assert events == EVENTS


def test_parse_header_only() -> None:
    assert parse(HEADER) == (json.loads(HEADER), [])
    assert parse(HEADER.rstrip("\n"))[1] == []


def test_parse_keeps_an_unterminated_but_whole_last_line() -> None:
    text = make_cast(EVENTS).rstrip("\n")
    assert parse(text)[1] == EVENTS


def test_parse_keeps_unknown_event_codes() -> None:
    text = HEADER + '[0.5, "m", ""]\n'
    assert parse(text)[1] == [(0.5, "m", "")]


TORN = event_line(2.0, "o", 'torn "line" 😀 \x1b[0m')


@pytest.mark.parametrize("cut", range(1, len(TORN) - 1))
def test_parse_drops_a_torn_last_line(cut: int) -> None:
    header, events = parse(make_cast(EVENTS) + TORN[:cut])
    assert events == EVENTS


def test_parse_tolerates_nul_padding_at_the_end() -> None:
    assert parse(make_cast(EVENTS) + "\0" * 4096)[1] == EVENTS


def test_parse_reads_crlf_files() -> None:
    assert parse(make_cast(EVENTS).replace("\n", "\r\n"))[1] == EVENTS


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("\n", "not JSON"),
        ("not json\n", "not JSON"),
        ("[1, 2]\n", "not a JSON object"),
        ('{"version": 1, "width": 80, "height": 24}\n', "version 1"),
        ('{"width": 80, "height": 24}\n', "version None"),
        ('{"version": 2, "height": 24}\n', "'width'"),
        ('{"version": 2, "width": "80", "height": 24}\n', "'width'"),
        ('{"version": 2, "width": 80, "height": 0}\n', "'height'"),
        ('{"version": 2, "width": 80, "height": true}\n', "'height'"),
        ('{"version": 2, "width": 80, "hei', "not JSON"),
    ],
)
def test_parse_rejects_a_bad_header(text: str, words: str) -> None:
    with pytest.raises(CastFormatError, match=words) as info:
        parse(text)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "line",
    [
        "garbage",
        "{}",
        '[1, "o"]',
        '[1, "o", "x", 4]',
        '["1", "o", "x"]',
        '[true, "o", "x"]',
        '[-1, "o", "x"]',
        '[1, 2, "x"]',
        '[1, "o", 3]',
        "",
    ],
)
def test_parse_rejects_a_bad_line_in_the_middle(line: str) -> None:
    text = HEADER + event_line(0, "o", "a") + line + "\n" + event_line(1, "o", "b")
    with pytest.raises(CastFormatError, match="line 3"):
        parse(text)


def test_parse_event_rejects_non_finite_time() -> None:
    with pytest.raises(CastFormatError):
        parse_event('[NaN, "o", "x"]')
    with pytest.raises(CastFormatError):
        parse_event('[Infinity, "o", "x"]')


def test_valid_prefix_length_of_whole_files() -> None:
    data = make_cast(EVENTS).encode()
    assert valid_prefix_length(data) == len(data)
    assert valid_prefix_length(b"") == 0


LAST = event_line(2.0, "o", "torn é😀漢").encode()


@pytest.mark.parametrize("cut", range(0, len(LAST) + 1))
def test_valid_prefix_length_cuts_a_torn_last_line(cut: int) -> None:
    whole = make_cast(EVENTS).encode()
    last = LAST
    data = whole + last[:cut]
    expected = len(data) if cut in (len(last), len(last) - 1) else len(whole)
    assert valid_prefix_length(data) == expected
    # The repaired prefix parses, with every whole event.
    assert parse(data[:expected].decode())[1][: len(EVENTS)] == EVENTS


def test_valid_prefix_length_of_a_torn_header() -> None:
    for cut in range(len(HEADER) - 1):
        assert valid_prefix_length(HEADER.encode()[:cut]) == 0


def test_valid_prefix_length_stops_at_the_first_bad_line() -> None:
    good = HEADER + event_line(0, "o", "a")
    data = (good + "oops\n" + event_line(1, "o", "b")).encode()
    assert valid_prefix_length(data) == len(good.encode())


def test_valid_prefix_length_rejects_invalid_utf8() -> None:
    good = (HEADER + event_line(0, "o", "a")).encode()
    assert valid_prefix_length(good + b'[1, "o", "\xff"]\n') == len(good)


def test_valid_prefix_length_of_events_only() -> None:
    events = "".join(event_line(*e) for e in EVENTS).encode()
    assert valid_prefix_length(events, header=False) == len(events)
    assert valid_prefix_length(events + b"[3.0, ", header=False) == len(events)
    assert valid_prefix_length(events) == 0  # the first line is no header


@pytest.mark.parametrize(
    "data",
    [
        "plain",
        "tab\t\x1b[31mred\x1b[0m\r\n",
        'q"b\\',
        "é日本😀",
        "a\u2028b\u2029c\x85d",
        "\ud800x",
        "",
    ],
)
def test_event_bytes_is_event_line_as_json(data: str) -> None:
    # The fast encoder must mean exactly what the careful one means, on one line.
    fast = event_bytes(1.5, "o", data)
    assert fast.endswith(b"\n") and fast.count(b"\n") == 1
    assert json.loads(fast) == json.loads(event_line(1.5, "o", data))
    assert "\u2028" not in fast.decode("utf-8") and "\x85" not in fast.decode("utf-8")
