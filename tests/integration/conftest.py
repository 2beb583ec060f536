from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.wsclient import OPEN


@pytest.fixture(autouse=True)
async def close_term_clients() -> AsyncIterator[None]:
    yield
    while OPEN:
        await OPEN.pop().close()
