"""The error tree and its table of HTTP statuses and close codes."""

from __future__ import annotations

import inspect
import re

import pytest

from vibetunnel import errors
from vibetunnel.auth.secret import SecretError
from vibetunnel.protocol.close import MAX_REASON_BYTES, Close, reason
from vibetunnel.protocol.frames import FrameError
from vibetunnel.recording.asciicast import CastFormatError

TREE = errors.__doc__ or ""
CLASSES = [
    c
    for _, c in inspect.getmembers(errors, inspect.isclass)
    if issubclass(c, errors.VibeTunnelError)
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_drawn_in_the_tree(cls: type[errors.VibeTunnelError]) -> None:
    assert re.search(rf"\b{cls.__name__}\b", TREE)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_has_a_status_and_a_close_code(cls: type[errors.VibeTunnelError]) -> None:
    assert 400 <= cls.status <= 599
    assert isinstance(cls.close_code, Close)
    assert cls.code and cls.code.islower()


@pytest.mark.parametrize("cls", [FrameError, CastFormatError, SecretError])
def test_format_errors_joined_the_tree_and_stay_value_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, errors.VibeTunnelError)
    assert issubclass(cls, ValueError)
    assert cls.__module__ == "vibetunnel.errors"  # one home; the old names re-export it


def test_a_bad_frame_is_a_protocol_error() -> None:
    assert issubclass(FrameError, errors.ProtocolError)
    assert FrameError("x").close_code == Close.UNSUPPORTED


def test_close_codes_are_the_rfc_numbers() -> None:
    assert [int(c) for c in Close] == [1000, 1001, 1003, 1008, 1009, 1011]
    assert errors.SessionNotFound().close_code == Close.NORMAL
    assert errors.SessionNotFound().message == "session not found"
    assert errors.AuthError("x").close_code == errors.Forbidden("x").close_code == Close.POLICY
    assert errors.TooManyRequests("x").close_code == Close.INTERNAL


def test_reason_fits_a_close_frame_without_splitting_a_character() -> None:
    assert reason("short") == "short"
    cut = reason("é" * 100)
    assert len(cut.encode()) <= MAX_REASON_BYTES
    assert cut == "é" * (MAX_REASON_BYTES // 2)
