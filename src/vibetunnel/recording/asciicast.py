"""asciicast v2, encoded and parsed: pure functions, no I/O.

A v2 file is one JSON object per line (the header), then one JSON array per line
(`[time, code, data]`, time in seconds since the start). Every line we produce is
whole JSON, ends with exactly one "\\n" and holds no other line break, so a file
cut at any byte is a valid prefix of whole lines plus at most one torn line.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

import orjson

from vibetunnel.errors import CastFormatError as CastFormatError  # raised here; importable here

VERSION = 2
EVENT_KINDS = frozenset({"o", "i", "r", "m"})
"""The event codes we write: output, input, resize, and a marker (the last line of a recording
that reached its size limit, saying so: players show it, `asciinema cat` skips it)."""

Event = tuple[float, str, str]

# json.dumps(ensure_ascii=False) escapes every C0 control but leaves these raw.
# Lone surrogates cannot be encoded as UTF-8 (the write would fail), and U+0085,
# U+2028 and U+2029 count as line breaks for str.splitlines() and some readers.
_UNSAFE = re.compile("[\ud800-\udfff\x85\u2028\u2029]")


def _safe(match: re.Match[str]) -> str:
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    return f"\\u{ord(char):04x}"


def _needs_escape(line: str) -> bool:
    # Fast paths first: this runs on every recorded chunk, and a regex scan of the whole
    # line cost more than the JSON encoding itself.
    if line.isascii():
        return False
    if "\x85" in line or "\u2028" in line or "\u2029" in line:
        return True
    try:
        line.encode("utf-8")  # fails only on a lone surrogate
    except UnicodeEncodeError:
        return True
    return False


def _dumps(obj: object) -> str:
    line = json.dumps(obj, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)
    if _needs_escape(line):
        line = _UNSAFE.sub(_safe, line)
    return line + "\n"


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def header_line(
    width: int,
    height: int,
    timestamp: float,
    env: dict[str, str],
    command: str,
    title: str,
) -> str:
    """The header line of a v2 file, ending with "\\n".

    `timestamp` is the Unix time of the start; v2 stores it as an integer.
    """
    header = {
        "version": VERSION,
        "width": _positive_int(width, "width"),
        "height": _positive_int(height, "height"),
        "timestamp": int(timestamp),
        "env": dict(env),
        "command": command,
        "title": title,
    }
    return _dumps(header)


def event_line(t: float, kind: str, data: str) -> str:
    """One event line `[t, kind, data]`, t rounded to microseconds, ending with "\\n"."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"event time must be a finite number >= 0, not {t!r}")
    return _dumps([round(t, 6), kind, data])


# orjson writes these as raw UTF-8; we escape them, as _dumps does.
_LINE_BREAKS = (
    (b"\xc2\x85", b"\\u0085"),
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
)


def event_bytes(t: float, kind: str, data: str) -> bytes:
    """`event_line` as UTF-8 bytes, 4-5 times faster: the writer thread's hot path.

    orjson encodes ~1 GB/s against json's ~230 MB/s, and the writer holds the GIL while it
    encodes; text it cannot take (a lone surrogate) goes the slow, careful way.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"event time must be a finite number >= 0, not {t!r}")
    try:
        line = orjson.dumps([round(t, 6), kind, data])
    except TypeError:  # str is not valid UTF-8
        return event_line(t, kind, data).encode("utf-8")
    if not line.isascii():
        for raw, escaped in _LINE_BREAKS:
            line = line.replace(raw, escaped)
    return line + b"\n"


def resize_data(cols: int, rows: int) -> str:
    """The data of an "r" event: "COLSxROWS"."""
    return f"{_positive_int(cols, 'cols')}x{_positive_int(rows, 'rows')}"


def parse_header(line: str) -> dict[str, Any]:
    """Check and decode a header line (a trailing newline is allowed)."""
    try:
        header = json.loads(line)
    except ValueError as e:
        raise CastFormatError(f"not an asciicast file: the header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise CastFormatError("not an asciicast file: the header is not a JSON object")
    version = header.get("version")
    if version != VERSION or isinstance(version, bool):
        raise CastFormatError(f"unsupported asciicast version {version!r}: only v2 is read")
    for key in ("width", "height"):
        value = header.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CastFormatError(f"bad asciicast header: {key!r} must be a positive integer")
    return header


def parse_event(line: str) -> Event:
    """Check and decode an event line (a trailing newline is allowed)."""
    try:
        event = json.loads(line)
    except ValueError as e:
        raise CastFormatError(f"event is not JSON ({e})") from e
    if not isinstance(event, list) or len(event) != 3:
        raise CastFormatError("event is not a [time, code, data] array")
    t, kind, data = event
    if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t) or t < 0:
        raise CastFormatError(f"event time {t!r} is not a number >= 0")
    if not isinstance(kind, str) or not isinstance(data, str):
        raise CastFormatError("event code and data must be strings")
    return float(t), kind, data


def parse(text: str) -> tuple[dict[str, Any], list[Event]]:
    """Decode a whole v2 file into its header and its events.

    A last line without its newline that does not decode (a write cut short by a
    crash) is dropped. A bad header, or a bad line anywhere else, raises
    `CastFormatError`. Unknown event codes are kept: players skip them.
    """
    lines = text.split("\n")
    # After a final "\n", split() leaves "": no line there. Otherwise the last
    # piece is unterminated and may be torn.
    tail = lines.pop()
    if not lines:
        if not tail:
            raise CastFormatError("not an asciicast file: it is empty")
        lines, tail = [tail], ""
    header = parse_header(lines[0])
    events: list[Event] = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            events.append(parse_event(line))
        except CastFormatError as e:
            raise CastFormatError(f"line {number}: {e}") from e
    if tail:
        # Torn by a crash: the reader tolerates it, the index repairs it.
        with contextlib.suppress(CastFormatError):
            events.append(parse_event(tail))
    return header, events


def _valid_line(line: bytes, *, header: bool) -> bool:
    try:
        text = line.decode("utf-8")
        if header:
            parse_header(text)
        else:
            parse_event(text)
    except (UnicodeDecodeError, CastFormatError):
        return False
    return True


def valid_prefix_length(data: bytes, *, header: bool = True) -> int:
    """Length of the longest prefix of `data` made of whole valid lines.

    A whole line ends with "\\n"; an unterminated last line counts only if it
    decodes (it then lacks nothing but its newline). With `header=False`, `data`
    starts at a line boundary after the header and holds events only. Truncating
    a file to this length repairs a torn last line.
    """
    pos = 0
    expect_header = header
    size = len(data)
    while pos < size:
        end = data.find(b"\n", pos)
        stop = size if end < 0 else end + 1
        if not _valid_line(data[pos:stop], header=expect_header):
            break
        pos = stop
        expect_header = False
    return pos
