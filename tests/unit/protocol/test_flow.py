"""The window accounting of one client (protocol/flow.py) and the ack message."""

from __future__ import annotations

import pytest

from vibetunnel.errors import ProtocolError
from vibetunnel.protocol import messages
from vibetunnel.protocol.flow import WINDOW, AckWindow


def test_a_client_that_never_acked_has_no_limit() -> None:
    w = AckWindow()
    w.on_sent(10 * WINDOW)
    assert not w.acking
    assert w.room() is None


def test_the_window_applies_from_the_first_ack_on() -> None:
    w = AckWindow(window=100)
    w.ack(0)
    assert w.room() == 100
    w.on_sent(60)
    assert (w.in_flight, w.room()) == (60, 40)
    w.on_sent(50)
    assert w.room() == 0  # never negative, though 110 are in flight
    w.ack(30)
    assert (w.in_flight, w.room()) == (80, 20)
    w.ack(110)
    assert w.room() == 100


def test_an_ack_of_what_was_already_acked_is_fine() -> None:
    w = AckWindow(window=100)
    w.on_sent(10)
    w.ack(10)
    w.ack(10)
    assert w.acked == 10


@pytest.mark.parametrize(
    ("sent", "first", "second", "words"),
    [
        (10, 8, 7, "went back"),
        (10, 11, None, "but 10 were sent"),
        (0, 1, None, "but 0 were sent"),
    ],
)
def test_bad_acks_raise_and_change_nothing(
    sent: int, first: int, second: int | None, words: str
) -> None:
    w = AckWindow(window=100)
    w.on_sent(sent)
    with pytest.raises(ProtocolError, match=words):
        if second is None:
            w.ack(first)
        else:
            w.ack(first)
            w.ack(second)
    assert w.acked == (first if second is not None else 0)
    assert w.acking is (second is not None)


def test_ack_message_parses() -> None:
    assert messages.parse('{"type":"ack","bytes":0}') == messages.Ack(0)
    assert messages.parse('{"type":"ack","bytes":123456789012}') == messages.Ack(123456789012)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"ack"}',
        '{"type":"ack","bytes":-1}',
        '{"type":"ack","bytes":1.5}',
        '{"type":"ack","bytes":10.0}',
        '{"type":"ack","bytes":"10"}',
        '{"type":"ack","bytes":true}',
        '{"type":"ack","bytes":null}',
    ],
)
def test_bad_ack_messages_are_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError, match="ack bytes must be a non-negative integer"):
        messages.parse(text)
