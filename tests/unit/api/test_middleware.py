"""The edge's pure checks: the client version, the query string in the access log."""

from __future__ import annotations

import pytest

from vibetunnel.api.middleware import check_client_version
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
