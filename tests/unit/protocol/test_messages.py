"""Client JSON messages: every valid shape, every bad one is a ProtocolError naming the problem."""

from __future__ import annotations

import json

import pytest

from vibetunnel.errors import ProtocolError, VibeTunnelError
from vibetunnel.protocol import messages
from vibetunnel.protocol.messages import Input, Ping, Resize, parse


def bad(text: str, match: str) -> ProtocolError:
    with pytest.raises(ProtocolError, match=match) as info:
        parse(text)
    assert info.value.close_code == 1003
    assert isinstance(info.value, VibeTunnelError)
    return info.value


# -- valid messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["", "ls\r", "é€😀", "\x03", "\x1b[A", "x" * 100_000, "\x00"])
def test_input(data: str) -> None:
    assert parse(json.dumps({"type": "input", "data": data})) == Input(data)


def test_input_with_extra_fields_and_whitespace() -> None:
    assert parse(' { "data" : "a", "type" : "input", "extra": [1] } \n') == Input("a")


@pytest.mark.parametrize("cols,rows", [(1, 1), (80, 24), (1000, 1000), (1, 1000), (1000, 1)])
def test_resize(cols: int, rows: int) -> None:
    msg = parse(json.dumps({"type": "resize", "cols": cols, "rows": rows}))
    assert msg == Resize(cols, rows)
    assert type(msg.cols) is int and type(msg.rows) is int  # type: ignore[union-attr]


def test_ping() -> None:
    assert parse('{"type":"ping"}') == Ping()
    assert parse('{"type":"ping","t":123}') == Ping()


def test_messages_are_frozen() -> None:
    msg = Input("a")
    with pytest.raises(AttributeError):
        msg.data = "b"  # type: ignore[misc]


# -- bad messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "not json", "{", '{"type":"input",}', "{'type':'ping'}", "\x00"]
)
def test_not_json(text: str) -> None:
    err = bad(text, "not valid JSON")
    assert isinstance(err.__cause__, ValueError)


@pytest.mark.parametrize("text", ["[]", '["ping"]', '"ping"', "42", "1.5", "null", "true"])
def test_not_an_object(text: str) -> None:
    bad(text, "must be a JSON object")


@pytest.mark.parametrize("text", ["{}", '{"data":"x"}', '{"Type":"ping"}'])
def test_missing_type(text: str) -> None:
    bad(text, "type must be a string")


@pytest.mark.parametrize("kind", ["null", "1", "true", "[]", '["input"]', '{"a":1}'])
def test_type_not_a_string(kind: str) -> None:
    bad(f'{{"type":{kind}}}', "type must be a string")


@pytest.mark.parametrize("kind", ["pong", "exit", "", "INPUT", "Input", "ping "])
def test_unknown_type(kind: str) -> None:
    err = bad(json.dumps({"type": kind}), "unknown message type")
    assert repr(kind) in err.message


def test_unknown_type_name_is_truncated() -> None:
    err = bad(json.dumps({"type": "x" * 10_000}), "unknown message type")
    assert len(err.message) < 100


@pytest.mark.parametrize(
    "body", [{}, {"data": None}, {"data": 1}, {"data": ["a"]}, {"data": {"a": 1}}, {"data": True}]
)
def test_input_data_not_a_string(body: dict[str, object]) -> None:
    bad(json.dumps({"type": "input", **body}), "input data must be a string")


@pytest.mark.parametrize("field", ["cols", "rows"])
@pytest.mark.parametrize("value", [None, "80", 80.0, 80.5, True, False, [80], {"n": 80}])
def test_resize_not_an_integer(field: str, value: object) -> None:
    body: dict[str, object] = {"type": "resize", "cols": 80, "rows": 24, field: value}
    bad(json.dumps(body), f"^{field} must be an integer$")


@pytest.mark.parametrize("field", ["cols", "rows"])
def test_resize_missing_field(field: str) -> None:
    body: dict[str, object] = {"type": "resize", "cols": 80, "rows": 24}
    del body[field]
    bad(json.dumps(body), f"^{field} must be an integer$")


@pytest.mark.parametrize("field", ["cols", "rows"])
@pytest.mark.parametrize("value", [0, 1001, -1, -80, 10**12])
def test_resize_out_of_range(field: str, value: int) -> None:
    body = {"type": "resize", "cols": 80, "rows": 24, field: value}
    bad(json.dumps(body), f"^{field} must be between 1 and 1000, got {value}$")


def test_resize_cols_checked_before_rows() -> None:
    bad('{"type":"resize","cols":0,"rows":0}', "^cols")


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
@pytest.mark.parametrize("open_,close", [("[", "]"), ('{"a":', "}")])
def test_huge_nesting(depth: int, open_: str, close: str) -> None:
    bad(open_ * depth + close * depth, "not valid JSON")


def test_huge_nesting_inside_a_message() -> None:
    bad('{"type":"input","data":' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON")


def test_huge_integer_is_an_error_not_a_crash() -> None:
    with pytest.raises(ProtocolError):
        parse('{"type":"resize","cols":' + "9" * 5000 + ',"rows":24}')


def test_check_size_directly() -> None:
    assert messages.check_size("cols", 1) == 1
    with pytest.raises(ProtocolError, match="x must be an integer"):
        messages.check_size("x", True)


def test_input_with_lone_surrogate_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse('{"type":"input","data":"a\\ud800b"}')


# -- server messages ---------------------------------------------------------------------------


def test_pong() -> None:
    assert json.loads(messages.PONG) == {"type": "pong"}
    assert messages.PONG == '{"type":"pong"}'


@pytest.mark.parametrize("code", [0, 1, 127, 130, 137, 255])
def test_exit_message(code: int) -> None:
    assert json.loads(messages.exit_message(code)) == {"type": "exit", "code": code}
