"""The edge's pure checks: the client version, the body limit (the access log's redaction:
tests/unit/test_redact.py)."""

from __future__ import annotations

import logging
import time

import pytest
from starlette.datastructures import Headers
from starlette.types import Message

from vibetunnel.api.middleware import (
    MAX_BODY,
    _Gone,
    _log_access,
    bounded_body,
    check_client_version,
)
from vibetunnel.errors import PayloadTooLarge, UnsupportedClient


@pytest.mark.parametrize("value", [None, "1", "1.4.2", "v1.0", " V1.2-beta ", "1."])
def test_versions_spoken(value: str | None) -> None:
    check_client_version(value)


@pytest.mark.parametrize(
    "value", ["2.0.0", "0.9", "", "v", "1abc", "²", "١", "9" * 5000, "1" + "0" * 5000, "x1"]
)
def test_versions_refused_with_a_400(value: str) -> None:
    with pytest.raises(UnsupportedClient) as caught:
        check_client_version(value)
    assert "1.x" in caught.value.message
    assert len(caught.value.message) < 200  # the value is quoted cut short


# -- the body limit ------------------------------------------------------------------------------


class Feed:
    """A fake ASGI `receive` that hands out `messages` in order and counts the calls."""

    def __init__(self, *messages: Message) -> None:
        self.messages = list(messages)
        self.calls = 0

    async def __call__(self) -> Message:
        self.calls += 1
        return self.messages.pop(0)


def chunk(body: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


def heads(**values: str) -> Headers:
    return Headers({k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize("length", [str(MAX_BODY + 1), "9" * 5000, "1e3", "-1", "²"])
async def test_a_declared_length_over_the_limit_is_refused_unread(length: str) -> None:
    feed = Feed()
    with pytest.raises(PayloadTooLarge):
        await bounded_body(heads(content_length=length), feed)
    assert feed.calls == 0


async def test_a_declared_length_within_the_limit_is_left_to_the_app() -> None:
    feed = Feed()
    assert await bounded_body(heads(content_length=str(MAX_BODY)), feed) is feed
    assert await bounded_body(heads(), feed) is feed  # no body at all
    assert feed.calls == 0


async def test_a_chunked_body_is_read_no_further_than_the_limit() -> None:
    half = b"x" * (MAX_BODY // 2)
    feed = Feed(chunk(half), chunk(half), chunk(b"y"), chunk(b"never read"))
    with pytest.raises(PayloadTooLarge):
        await bounded_body(heads(transfer_encoding="chunked"), feed)
    assert feed.calls == 3


async def test_a_chunked_body_within_the_limit_reaches_the_app_whole() -> None:
    later: Message = {"type": "http.disconnect"}
    feed = Feed(chunk(b'{"data":'), chunk(b'"x"}', more=False), later)
    receive = await bounded_body(heads(transfer_encoding="chunked"), feed)
    assert await receive() == chunk(b'{"data":"x"}', more=False)
    assert await receive() == later  # then what the server says next


async def test_a_client_that_leaves_mid_body() -> None:
    feed = Feed(chunk(b"{"), {"type": "http.disconnect"})
    with pytest.raises(_Gone):
        await bounded_body(heads(transfer_encoding="chunked"), feed)


# -- the access log ------------------------------------------------------------------------------


def test_the_access_log_record_itself_holds_no_token(caplog: pytest.LogCaptureFixture) -> None:
    # Whatever handler gets it (pytest's here, with no redacting formatter).
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/sessions",
        "query_string": b"a=1&tok%65n=SECRET",
        "client": ("127.0.0.1", 5000),
    }
    with caplog.at_level(logging.INFO, logger="vibetunnel.access"):
        _log_access(scope, 200, time.perf_counter())
    [record] = caplog.records
    assert '"GET /api/sessions?a=1&token=[redacted]" 200' in record.getMessage()
    assert "SECRET" not in record.getMessage()
