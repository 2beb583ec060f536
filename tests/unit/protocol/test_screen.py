"""Replay for late joiners: output since the last clear, at most `limit` bytes, whole chars."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibetunnel.protocol.screen import (
    CLEAR_SEQUENCES,
    REPLAY_LIMIT,
    ScreenBuffer,
    char_start,
    last_clear,
)

NAMES = {b"\x1b[2J": "ED2", b"\x1b[3J": "ED3", b"\x1bc": "RIS"}


def test_the_clear_sequences() -> None:
    assert set(CLEAR_SEQUENCES) == set(NAMES)
    assert REPLAY_LIMIT == 1024 * 1024


@pytest.mark.parametrize("seq", CLEAR_SEQUENCES, ids=NAMES.get)
def test_last_clear_finds_each_sequence(seq: bytes) -> None:
    assert last_clear(seq) == 0
    assert last_clear(b"abc" + seq) == 3
    assert last_clear(b"abc" + seq + b"def") == 3
    assert last_clear(b"abc" + seq + b"de" + seq + b"f") == 5 + len(seq)


@pytest.mark.parametrize("seq", CLEAR_SEQUENCES, ids=NAMES.get)
def test_last_clear_respects_start(seq: bytes) -> None:
    buf = b"ab" + seq + b"cd"
    assert last_clear(buf, 2) == 2
    assert last_clear(buf, 3) == -1
    assert last_clear(bytearray(buf), 0) == 2


def test_last_clear_picks_the_latest_of_different_sequences() -> None:
    buf = b"x\x1bcz\x1b[2J\x1b[3Jw"
    assert last_clear(buf) == buf.index(b"\x1b[3J")
    assert last_clear(b"\x1b[3J..\x1b[2J") == 6


@pytest.mark.parametrize(
    "buf",
    [b"", b"plain", b"\x1b[2K", b"\x1b[J", b"\x1b[1J", b"\x1b[?1049l", b"\x1b[2", b"\x1b", b"c"],
)
def test_last_clear_none(buf: bytes) -> None:
    assert last_clear(buf) == -1


def test_char_start() -> None:
    data = "a€b".encode()  # a, e2 82 ac, b
    assert [char_start(data, i) for i in range(len(data) + 1)] == [0, 1, 4, 4, 4, 5]
    assert char_start(b"\x80\x80", 0) == 2


# -- ScreenBuffer ------------------------------------------------------------------------------


def test_empty() -> None:
    s = ScreenBuffer()
    assert s.snapshot() == b""
    assert len(s) == 0
    assert s.limit == REPLAY_LIMIT


def test_accumulates_without_clear() -> None:
    s = ScreenBuffer()
    for part in (b"one ", "twö ".encode(), b"three"):
        s.append(part)
    assert s.snapshot() == "one twö three".encode()
    assert len(s) == len(s.snapshot())


@pytest.mark.parametrize("seq", CLEAR_SEQUENCES, ids=NAMES.get)
def test_drops_text_before_a_clear(seq: bytes) -> None:
    s = ScreenBuffer()
    s.append(b"old screen\r\n")
    s.append(b"more old" + seq + b"new")
    assert s.snapshot() == seq + b"new"
    s.append(b" and more")
    assert s.snapshot() == seq + b"new and more"


@pytest.mark.parametrize("seq", CLEAR_SEQUENCES, ids=NAMES.get)
def test_clear_at_the_very_start(seq: bytes) -> None:
    s = ScreenBuffer()
    s.append(seq + b"x")
    assert s.snapshot() == seq + b"x"


def test_clear_command_output_keeps_from_the_last_sequence() -> None:
    # `clear` writes ESC[H ESC[2J ESC[3J: the replay starts at the last of them.
    s = ScreenBuffer()
    s.append(b"junk\x1b[H\x1b[2J\x1b[3J$ ")
    assert s.snapshot() == b"\x1b[3J$ "


@pytest.mark.parametrize("seq", CLEAR_SEQUENCES, ids=NAMES.get)
@pytest.mark.parametrize("prefix", [b"", b"x", b"old output " * 50])
def test_clear_split_across_two_appends(seq: bytes, prefix: bytes) -> None:
    for i in range(1, len(seq)):
        s = ScreenBuffer()
        s.append(prefix + seq[:i])
        s.append(seq[i:] + b"after")
        assert s.snapshot() == seq + b"after", i


@pytest.mark.parametrize("seq", CLEAR_SEQUENCES, ids=NAMES.get)
def test_clear_split_one_byte_per_append(seq: bytes) -> None:
    s = ScreenBuffer()
    s.append(b"old stuff")
    for b in seq + b"after":
        s.append(bytes([b]))
    assert s.snapshot() == seq + b"after"


def test_limit_snapshot_keeps_the_last_limit_bytes() -> None:
    s = ScreenBuffer(limit=100)
    data = bytes(range(48, 48 + 70)) * 2  # ASCII, 140 bytes
    s.append(data)
    assert s.snapshot() == data[-100:]


def test_limit_trims_the_buffer_when_it_grows_too_big() -> None:
    s = ScreenBuffer(limit=100)
    for _ in range(100):
        s.append(b"0123456789")
    assert len(s) <= 2 * 100
    assert s.snapshot() == b"0123456789" * 10


@pytest.mark.parametrize("limit", range(90, 110))
def test_limit_trimming_at_a_char_boundary(limit: int) -> None:
    text = "a€😀é中" * 200
    data = text.encode()
    s = ScreenBuffer(limit=limit)
    for i in range(0, len(data), 37):
        # Feed whole characters only, as the session does.
        s.append(data[i : i + 37])
    snap = s.snapshot()
    assert len(snap) <= limit
    assert len(snap) > limit - 4  # at most one character short of the limit
    assert data.endswith(snap)
    snap.decode("utf-8")
    assert len(s) <= 2 * limit + 37


@given(st.text(max_size=400), st.integers(1, 60), st.lists(st.integers(1, 50), max_size=30))
def test_snapshot_never_starts_with_a_continuation_byte(
    text: str, limit: int, sizes: list[int]
) -> None:
    data = text.encode("utf-8", "surrogatepass")
    s = ScreenBuffer(limit=limit)
    pos = 0
    for n in [*sizes, len(data)]:
        s.append(data[pos : pos + n])
        pos += n
        snap = s.snapshot()
        assert not snap or (snap[0] & 0xC0) != 0x80
        assert len(snap) <= limit
        assert data[:pos].endswith(snap)


@given(
    st.lists(
        st.one_of(st.text(max_size=20).map(str.encode), st.sampled_from(CLEAR_SEQUENCES)),
        max_size=20,
    ),
    st.lists(st.integers(1, 30), max_size=20),
)
def test_snapshot_is_output_since_the_last_clear(parts: list[bytes], sizes: list[int]) -> None:
    data = b"".join(parts)
    s = ScreenBuffer(limit=10_000)
    pos = 0
    for n in [*sizes, len(data)]:
        s.append(data[pos : pos + n])
        pos += n
    i = last_clear(data)
    assert s.snapshot() == (data if i < 0 else data[i:])


# -- screens and modes: what a late joiner needs besides the text ---------------------------

PROMPT = b"\x1b[?2004h$ "
VIM = (
    b"vim notes\r\n\x1b[?2004l\x1b[?1049h\x1b[22;0;0t\x1b[?1h\x1b=\x1b[H\x1b[2J"
    b"~ vim was here\x1b[?25l"
)
QUIT = b"\x1b[?25h\x1b[?1l\x1b>\x1b[?1049l\x1b[23;0;0t"


def test_a_late_joiner_of_vim_gets_the_alternate_screen_and_its_modes() -> None:
    s = ScreenBuffer()
    s.append(PROMPT + VIM)
    snap = s.snapshot()
    normal, alt = snap.split(b"\x1b[?1049h")
    assert normal.startswith(b"$ vim notes")  # the shell's screen, kept beneath
    assert alt.startswith(b"\x1b[2J~ vim was here")  # vim's, from its clear
    assert snap.endswith(b"\x1b[?2004l\x1b[?1h\x1b[?25l")  # the modes vim set, last


def test_after_vim_quits_a_late_joiner_gets_the_shell_not_vim() -> None:
    s = ScreenBuffer()
    s.append(PROMPT + VIM + QUIT + b"\r\n" + PROMPT)
    snap = s.snapshot()
    assert b"vim was here" not in snap and b"\x1b[?1049h" not in snap
    assert snap.startswith(b"$ vim notes")
    assert snap.endswith(b"$ \x1b[?2004h\x1b[?1l\x1b[?25h")


def test_full_reset_forgets_screens_and_modes() -> None:
    s = ScreenBuffer()
    s.append(PROMPT + VIM + b"\x1bcfresh")
    assert s.snapshot() == b"\x1bcfresh"


def test_modes_of_one_sequence_with_several_parameters() -> None:
    s = ScreenBuffer()
    s.append(b"a\x1b[?1049;1hb\x1b[?7;2004hc")
    assert s.snapshot() == b"a\x1b[?1049hb\x1b[?7hc\x1b[?1h\x1b[?2004h"


def test_unfinished_sequence_at_the_end_waits_and_is_sent_last() -> None:
    s = ScreenBuffer()
    s.append(b"abc\x1b[?10")
    assert s.snapshot() == b"abc\x1b[?10"  # the live stream completes it
    s.append(b"49hvim")
    assert s.snapshot() == b"abc\x1b[?1049hvim"


def test_a_snapshot_fed_to_a_new_buffer_gives_the_same_snapshot() -> None:
    # The keeper and a new server rebuild a screen from a snapshot this way.
    s = ScreenBuffer()
    s.append(PROMPT + VIM)
    again = ScreenBuffer()
    again.append(s.snapshot())
    assert again.snapshot() == s.snapshot()


CONTROLS = [
    b"\x1b[2J",
    b"\x1b[3J",
    b"\x1bc",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[?47h",
    b"\x1b[?1h",
    b"\x1b[?1l",
    b"\x1b[?2004h",
    b"\x1b[?25l",
    b"\x1b[?1;1049h",
    b"\x1b[1m",
]


@given(
    st.lists(
        st.one_of(st.text(max_size=12).map(str.encode), st.sampled_from(CONTROLS)), max_size=25
    ),
    st.lists(st.integers(1, 9), max_size=30),
)
def test_how_output_is_cut_into_reads_never_changes_the_snapshot(
    parts: list[bytes], sizes: list[int]
) -> None:
    data = b"".join(parts)
    whole = ScreenBuffer(limit=10_000)
    whole.append(data)
    cut = ScreenBuffer(limit=10_000)
    pos = 0
    for n in [*sizes, len(data)]:
        cut.append(data[pos : pos + n])
        pos += n
    assert cut.snapshot() == whole.snapshot()
    again = ScreenBuffer(limit=10_000)
    again.append(whole.snapshot())
    assert again.snapshot() == whole.snapshot()
