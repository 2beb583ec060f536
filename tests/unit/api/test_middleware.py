"""The edge's pure checks: the client version, the query string in the access log."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibetunnel.api.middleware import check_client_version, redact_query
from vibetunnel.errors import UnsupportedClient


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


@pytest.mark.parametrize(
    "query, logged",
    [
        ("token=abc", "token=[redacted]"),
        ("a=1&token=abc&b=2", "a=1&token=[redacted]&b=2"),
        ("tok%65n=abc", "token=[redacted]"),
        ("%74%6F%6B%65%6E=abc", "token=[redacted]"),
        ("TOKEN=abc&Login=xyz", "TOKEN=[redacted]&Login=[redacted]"),
        ("token=a&token=b", "token=[redacted]&token=[redacted]"),
        ("tokens=abc&my_token=x", "tokens=abc&my_token=x"),
        ("", ""),
    ],
)
def test_token_values_never_reach_the_log(query: str, logged: str) -> None:
    assert redact_query(query) == logged


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4), st.text(min_size=1))
def test_whatever_the_query_the_server_reads_no_token_from_the_log(
    params: dict[str, str], secret: str
) -> None:
    query = urlencode({**params, "token": secret})
    assert parse_qs(redact_query(query)).get("token") == ["[redacted]"]
