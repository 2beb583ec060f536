"""Binary frames, the UTF-8 stream and the UTF-8-safe cut: pure, no I/O."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibetunnel.protocol import frames
from vibetunnel.protocol.frames import FrameError, Utf8Stream, decode, encode, split_utf8

SAMPLES = [
    b"",
    b"hello, world\r\n",
    "é€😀 ascii 中文".encode(),
    bytes(range(0x20, 0x7F)) * 10,
    ("a€😀é" * 6000).encode()[: 64 * 1024 - 3] + "€".encode(),  # exactly 64 KB
    b"x" * (64 * 1024),
]


# -- encode / decode ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: f"{len(d)}B")
def test_round_trip(data: bytes) -> None:
    frame = encode(data)
    assert frame[0] == 0xBF
    assert int.from_bytes(frame[1:5], "big") == len(data)
    assert len(frame) == frames.HEADER_SIZE + len(data) == 5 + len(data)
    assert decode(frame) == (data, b"")


def test_64kb_frame_has_exact_length() -> None:
    data = b"z" * 65536
    assert encode(data)[:5] == b"\xbf\x00\x01\x00\x00"


def test_empty_frame_bytes() -> None:
    assert encode(b"") == b"\xbf\x00\x00\x00\x00"


def test_decode_returns_the_rest() -> None:
    buf = encode(b"one") + encode("twö".encode()) + b"\xbf"
    first, rest = decode(buf)
    assert first == b"one"
    second, rest = decode(rest)
    assert second == "twö".encode()
    assert rest == b"\xbf"


@pytest.mark.parametrize("n", range(5))
def test_decode_too_short(n: int) -> None:
    with pytest.raises(FrameError, match="too short"):
        decode(encode(b"")[:n])


@pytest.mark.parametrize("magic", [0x00, 0xBE, 0xC0, 0xFF, ord("{")])
def test_decode_bad_magic(magic: int) -> None:
    frame = bytes([magic]) + encode(b"abc")[1:]
    with pytest.raises(FrameError, match=f"bad magic byte 0x{magic:02X}"):
        decode(frame)


@pytest.mark.parametrize("cut", [5, 6, 9])
def test_decode_truncated(cut: int) -> None:
    frame = encode(b"0123456789")
    with pytest.raises(FrameError, match=f"says 10 bytes, has {cut - 5}"):
        decode(frame[:cut])


def test_frame_error_is_value_error() -> None:
    assert issubclass(FrameError, ValueError)


@given(st.binary(max_size=300), st.binary(max_size=20))
def test_round_trip_any_bytes(data: bytes, tail: bytes) -> None:
    assert decode(encode(data) + tail) == (data, tail)


# -- Utf8Stream --------------------------------------------------------------------------------

CHARS = ["é", "€", "中", "😀", "\U0010ffff", "\u0800", "\u07ff", "\uffff"]


def feed_all(pieces: list[bytes]) -> list[bytes]:
    stream = Utf8Stream()
    out = [stream.feed(p) for p in pieces]
    out.append(stream.finish())
    return out


@pytest.mark.parametrize("char", CHARS)
def test_char_split_at_every_position(char: str) -> None:
    data = ("a" + char + "b").encode()
    for i in range(len(data) + 1):
        stream = Utf8Stream()
        first = stream.feed(data[:i])
        second = stream.feed(data[i:])
        assert first + second == data, i
        first.decode("utf-8")  # whole characters only
        second.decode("utf-8")
        assert stream.finish() == b""


def test_partial_character_is_held_back() -> None:
    stream = Utf8Stream()
    assert stream.feed(b"ab\xe2\x82") == b"ab"
    assert stream.feed(b"\xac") == "€".encode()


def test_emoji_split_three_ways() -> None:
    emoji = "😀".encode()
    assert len(emoji) == 4
    for i in range(1, 4):
        for j in range(i, 4):
            stream = Utf8Stream()
            parts = [stream.feed(emoji[:i]), stream.feed(emoji[i:j]), stream.feed(emoji[j:])]
            assert parts[:2] == [b"", b""], (i, j)
            assert parts[2] == emoji
            assert stream.finish() == b""


def test_emoji_one_byte_at_a_time() -> None:
    stream = Utf8Stream()
    assert [stream.feed(bytes([b])) for b in "😀".encode()] == [b"", b"", b"", "😀".encode()]


FFFD = "\ufffd".encode()


@pytest.mark.parametrize(
    "bad",
    [
        b"\xff",
        b"\xfe",
        b"\x80",  # lone continuation byte
        b"\xbf\x80",
        b"\xc0\x80",  # overlong NUL
        b"\xc1\xbf",  # overlong
        b"\xe0\x80\x80",  # overlong 3-byte
        b"\xf0\x80\x80\x80",  # overlong 4-byte
        b"\xed\xa0\x80",  # UTF-16 surrogate U+D800
        b"\xed\xbf\xbf",  # U+DFFF
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b"\xf5\x80\x80\x80",
        b"\xe2\x82a",  # truncated sequence followed by ASCII
    ],
)
def test_invalid_bytes_become_replacement(bad: bytes) -> None:
    data = b"<" + bad + b">"
    out = b"".join(feed_all([data]))
    assert out == data.decode("utf-8", "replace").encode()
    assert out.startswith(b"<" + FFFD) and out.endswith(b">")
    assert out.decode("utf-8").strip("<>").strip("\ufffd" + "a") == ""
    # Byte by byte gives the same answer.
    assert b"".join(feed_all([bytes([b]) for b in data])) == out


@pytest.mark.parametrize("partial", [b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98"])
def test_finish_mid_character(partial: bytes) -> None:
    stream = Utf8Stream()
    assert stream.feed(b"x" + partial) == b"x"
    assert stream.finish() == FFFD


def test_finish_when_clean() -> None:
    stream = Utf8Stream()
    assert stream.feed(b"abc") == b"abc"
    assert stream.finish() == b""


def test_empty_feed() -> None:
    assert Utf8Stream().feed(b"") == b""


@st.composite
def split_bytes(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    # Bytes biased towards UTF-8 (valid text, broken sequences and junk), cut at random points.
    parts = draw(
        st.lists(
            st.one_of(
                st.text().map(lambda s: s.encode("utf-8", "surrogatepass")),
                st.binary(max_size=6),
                st.sampled_from([b"\xf0\x9f", b"\x98\x80", b"\xe2", b"\x82\xac", b"\xc3", b"\xed"]),
            ),
            max_size=12,
        )
    )
    data = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=500)
@given(split_bytes())
def test_any_split_equals_whole_decode(case: tuple[bytes, list[bytes]]) -> None:
    data, pieces = case
    out = feed_all(pieces)
    assert b"".join(out) == data.decode("utf-8", "replace").encode()
    for piece in out:
        piece.decode("utf-8")  # each piece is whole, strict UTF-8


# -- split_utf8 --------------------------------------------------------------------------------


def is_boundary(data: bytes, i: int) -> bool:
    return i in (0, len(data)) or (data[i] & 0xC0) != 0x80


def test_split_whole_when_it_fits() -> None:
    data = "é€😀".encode()
    assert split_utf8(data, len(data)) == len(data)
    assert split_utf8(data, len(data) + 1) == len(data)
    assert split_utf8(b"", 0) == 0
    assert split_utf8(b"", 10) == 0


def test_split_steps_back_to_char_start() -> None:
    data = "ab😀".encode()  # 2 + 4 bytes
    for limit in (2, 3, 4, 5):
        assert split_utf8(data, limit) == 2
    assert split_utf8(data, 6) == 6


def test_split_ascii_is_exact() -> None:
    assert split_utf8(b"abcdef", 3) == 3


def test_every_cut_of_a_random_multibyte_string() -> None:
    rng = random.Random(1234)
    alphabet = "aé€中😀\U0010ffff\n"
    text = "".join(rng.choice(alphabet) for _ in range(400))
    data = text.encode()
    for limit in range(4, len(data) + 2):
        cut = split_utf8(data, limit)
        assert cut <= limit
        assert is_boundary(data, cut), limit
        assert limit - cut < 4  # the largest such cut: at most one character is held back
        data[:cut].decode("utf-8")
        data[cut:].decode("utf-8")


@given(st.text(min_size=1), st.integers(4, 200))
def test_split_property(text: str, limit: int) -> None:
    data = text.encode("utf-8", "surrogatepass")
    cut = split_utf8(data, limit)
    assert 0 < cut <= limit
    assert is_boundary(data, cut)
    # The largest boundary <= limit.
    assert all(not is_boundary(data, i) for i in range(cut + 1, min(limit, len(data)) + 1))


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_split_never_cuts_inside_first_char(limit: int) -> None:
    data = "😀x".encode()
    assert is_boundary(data, split_utf8(data, limit))


@settings(max_examples=500)
@given(split_bytes(), st.binary(max_size=3))
def test_whole_is_the_encoding_of_text(case: tuple[bytes, list[bytes]], held: bytes) -> None:
    # Whatever the reads, `whole` gives what `text` and its encoding give: the raw bytes are
    # passed through only when that is the same thing.
    _, chunks = case
    fast, slow = Utf8Stream(held), Utf8Stream(held)
    for chunk in chunks:
        assert fast.whole(chunk) == slow.text(chunk).encode("utf-8")
    assert fast.held() == slow.held()
    assert fast.finish() == slow.finish()


def test_whole_passes_whole_utf8_through_uncopied() -> None:
    stream = Utf8Stream()
    for chunk in (b"plain ascii", "é€😀".encode()):
        assert stream.whole(chunk) is chunk
    assert stream.whole(b"\xe2\x82") == b""  # a character cut across two reads
    assert stream.whole(b"\xac and on") == "€ and on".encode()
    assert stream.whole(b"\xe2") == b""
    assert stream.whole(b"ascii after a cut") == "\ufffdascii after a cut".encode()
    chunk = b"clean again"
    assert stream.whole(chunk) is chunk
