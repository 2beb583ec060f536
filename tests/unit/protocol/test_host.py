"""The host link protocol: every message both ways, and every way to get one wrong."""

from __future__ import annotations

import dataclasses
import json
import signal
from typing import Any

import pytest

from vibetunnel.errors import ProtocolError
from vibetunnel.protocol import frames, host
from vibetunnel.protocol.host import Exit, RecordingError, Register, Signal
from vibetunnel.protocol.messages import Input, Resize, exit_message

REG = Register(
    id="0b7c6a1e-4f1d-4c3e-9d7a-1c2b3d4e5f60",
    name="build",
    command="make",
    args=["-j", "8"],
    cwd="/src",
    cols=120,
    rows=40,
    pid=4242,
    created_at=1700000000.25,
    screen="€ hello\r\n",
)


def reg_obj(**change: Any) -> str:
    obj = json.loads(REG.encode())
    obj.update(change)
    return json.dumps(obj)


def test_register_round_trip() -> None:
    assert host.parse_register(REG.encode()) == REG
    assert "recordingError" not in json.loads(REG.encode())  # what an older server reads
    stopped = dataclasses.replace(REG, recording_error="recording stopped at its size limit")
    assert host.parse_register(stopped.encode()) == stopped
    assert host.parse_register(reg_obj(recordingError=None)) == REG


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"type": "exit"}, "first message must be register"),
        ({"id": "../etc"}, "id must be"),
        ({"id": ""}, "id must not be empty"),
        ({"id": 5}, "id must be a string"),
        ({"name": None}, "name must be a string"),
        ({"command": ""}, "command must not be empty"),
        ({"args": "ls"}, "args must be a list"),
        ({"args": [1]}, "args must be a list"),
        ({"cwd": 1}, "cwd must be a string"),
        ({"cols": 0}, "cols must be between"),
        ({"rows": 1001}, "rows must be between"),
        ({"cols": True}, "cols must be an integer"),
        ({"pid": 0}, "pid must be between"),
        ({"pid": "1"}, "pid must be an integer"),
        ({"createdAt": "now"}, "createdAt must be a number"),
        ({"createdAt": -1}, "createdAt must be a Unix time"),
        ({"screen": None}, "screen must be a string"),
        ({"screen": "x" * (host.MAX_SCREEN + 1)}, "screen is longer"),
        ({"recordingError": 1}, "recordingError must be a string"),
        ({"recordingError": ""}, "recordingError must not be empty"),
        ({"recordingError": "x" * (host.MAX_TEXT + 1)}, "recordingError is longer"),
    ],
)
def test_register_rejects(change: dict[str, Any], why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        host.parse_register(reg_obj(**change))


@pytest.mark.parametrize(
    ("text", "why"),
    [("{", "not valid JSON"), ("[]", "JSON object"), ('{"type": 1}', "type must be a string")],
)
def test_not_an_object(text: str, why: str) -> None:
    for parse in (host.parse_register, host.parse_from_vt, host.parse_from_server):
        with pytest.raises(ProtocolError, match=why):
            parse(text)


def test_from_vt() -> None:
    assert host.parse_from_vt(host.resize_message(90, 20)) == Resize(90, 20)
    assert host.parse_from_vt(exit_message(130)) == Exit(130)
    assert host.parse_from_vt(host.recording_message("full")) == RecordingError("full")
    long = host.parse_from_vt(host.recording_message("y" * (2 * host.MAX_TEXT)))
    assert long == RecordingError("y" * host.MAX_TEXT), "cut to what the server takes"
    for bad, why in [
        ('{"type":"recording"}', "error must be a string"),
        ('{"type":"recording","error":""}', "error must not be empty"),
        ('{"type":"exit","code":-1}', "code must be between"),
        ('{"type":"exit","code":256}', "code must be between"),
        ('{"type":"exit"}', "code must be an integer"),
        ('{"type":"resize","cols":0,"rows":1}', "cols must be between"),
        (REG.encode(), "already registered"),
        ('{"type":"input","data":"x"}', "unknown message type"),
    ]:
        with pytest.raises(ProtocolError, match=why):
            host.parse_from_vt(bad)


def test_output_frames() -> None:
    data = "a€😀".encode()
    assert host.parse_output(frames.encode(data)) == data
    assert host.parse_output(frames.encode(b"")) == b""
    for bad, why in [
        (b"\xbf\x00", "too short"),
        (b"\x00\x00\x00\x00\x00", "bad magic"),
        (frames.encode(b"ab")[:-1], "says 2 bytes"),
        (frames.encode(b"a") + frames.encode(b"b"), "one frame per message"),
        (frames.encode("€".encode()[:2]), "not valid UTF-8"),
    ]:
        with pytest.raises(ProtocolError, match=why):
            host.parse_output(bad)


def test_from_server() -> None:
    assert host.parse_from_server(host.input_message("ls\r€")) == Input("ls\r€")
    assert host.parse_from_server(host.resize_message(1, 1000)) == Resize(1, 1000)
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL, signal.SIGINT):
        assert host.parse_from_server(host.signal_message(sig)) == Signal(sig)
    for bad, why in [
        ('{"type":"input","data":5}', "data must be a string"),
        ('{"type":"signal","signal":19}', "not one vt sends"),
        ('{"type":"signal","signal":"TERM"}', "signal must be an integer"),
        ('{"type":"signal","signal":0}', "signal must be between"),
        ('{"type":"resize","cols":80}', "rows must be an integer"),
        ('{"type":"exit","code":0}', "unknown message type"),
    ]:
        with pytest.raises(ProtocolError, match=why):
            host.parse_from_server(bad)
