"""The keeper's wire format: length-prefixed JSON objects with a type, bytes in, messages out."""

from __future__ import annotations

import json

import pytest

from vibetunnel.keeper.wire import LENGTH, MAX_FDS, MAX_MESSAGE, Decoder, WireError, encode


def raw(body: bytes) -> bytes:
    """A frame around any body, well-formed or not."""
    return LENGTH.pack(len(body)) + body


def test_round_trip() -> None:
    message = {"type": "spawn", "argv": ["sh", "-c", "echo €"], "cols": 80, "fds": 1}
    data = encode(message)
    assert data[:4] == len(data[4:]).to_bytes(4, "big")
    assert "€".encode() in data  # not escaped: the body is UTF-8 JSON
    assert Decoder().feed(data) == [message]


def test_bytes_one_at_a_time() -> None:
    first, second = {"type": "hello", "pid": 42}, {"type": "screen", "data": "a\r\nb😀"}
    data = encode(first) + encode(second)
    decoder = Decoder()
    got = []
    for i in range(len(data)):
        out = decoder.feed(data[i : i + 1])
        if i < len(encode(first)) - 1:
            assert out == [], f"a message before its last byte, at byte {i}"
        got.extend(out)
    assert got == [first, second]


def test_several_messages_in_one_chunk_and_a_partial_one() -> None:
    messages = [{"type": "exited", "id": str(n), "code": n} for n in range(5)]
    tail = encode({"type": "ready"})
    decoder = Decoder()
    assert decoder.feed(b"".join(map(encode, messages)) + tail[:3]) == messages
    assert decoder.feed(tail[3:]) == [{"type": "ready"}]
    assert decoder.feed(b"") == []


def test_over_size_length_is_refused_before_its_body() -> None:
    with pytest.raises(WireError, match="over"):
        Decoder().feed(LENGTH.pack(MAX_MESSAGE + 1))
    assert Decoder().feed(LENGTH.pack(MAX_MESSAGE)) == []  # at the limit: waits for the body


def test_encode_refuses_an_over_size_message() -> None:
    with pytest.raises(WireError, match="over"):
        encode({"type": "screen", "data": "x" * MAX_MESSAGE})


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b'{"type": "a"'],
    ids=["not-json", "not-utf8", "cut-short"],
)
def test_not_json(body: bytes) -> None:
    with pytest.raises(WireError, match="not JSON"):
        Decoder().feed(raw(body))


@pytest.mark.parametrize(
    "value",
    [[1, 2], "hello", 7, None, {}, {"type": 3}, {"kind": "hello"}, {"type": None}],
)
def test_an_object_with_a_string_type(value: object) -> None:
    with pytest.raises(WireError, match="object with a type"):
        Decoder().feed(raw(json.dumps(value).encode()))


@pytest.mark.parametrize("fds", [-1, MAX_FDS + 1, "1", 1.0, True, None, [1]])
def test_bad_fds_count(fds: object) -> None:
    with pytest.raises(WireError, match="fds"):
        Decoder().feed(raw(json.dumps({"type": "session", "fds": fds}).encode()))


@pytest.mark.parametrize("fds", [0, 1, MAX_FDS])
def test_good_fds_count(fds: int) -> None:
    assert Decoder().feed(encode({"type": "session", "fds": fds})) == [
        {"type": "session", "fds": fds}
    ]
