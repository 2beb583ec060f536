"""The cluster's pure pieces: errors carried between nodes."""

from __future__ import annotations

import pytest

from vibetunnel.cluster.gateway import raise_or_return
from vibetunnel.cluster.owner import error_json
from vibetunnel.errors import (
    BadRequest,
    NodeUnavailable,
    SessionNotFound,
    TooManyRequests,
    VibeTunnelError,
)


@pytest.mark.parametrize(
    "error",
    [
        SessionNotFound(),
        BadRequest("cols: must be 1..1000"),
        TooManyRequests("slow down", retry_after=7),
        NodeUnavailable("node x is offline"),
    ],
)
def test_an_error_comes_back_as_it_was_raised(error: VibeTunnelError) -> None:
    with pytest.raises(type(error)) as caught:
        raise_or_return({"error": error_json(error)})
    assert (caught.value.status, caught.value.code) == (error.status, error.code)
    assert caught.value.message == error.message
    if isinstance(error, TooManyRequests):
        assert isinstance(caught.value, TooManyRequests) and caught.value.retry_after == 7


def test_an_unknown_error_keeps_its_status() -> None:
    with pytest.raises(VibeTunnelError) as caught:
        raise_or_return({"error": {"code": "new_kind", "status": 418, "message": "teapot"}})
    assert (caught.value.status, caught.value.code) == (418, "new_kind")


def test_an_answer_without_error_is_its_result() -> None:
    assert raise_or_return({"ok": {"id": "x"}}) == {"id": "x"}
    assert raise_or_return({"ok": None}) is None
