"""Helpers for tests that run on an event loop: asyncio's debug mode, and waiting for a
condition with a deadline (never for quiet)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.conftest import UNIT

DEADLINE = 5 * UNIT


@pytest.fixture(autouse=True)
async def debug_loop() -> None:
    """Import into a test module to run its loop in debug mode (slow callbacks, leaks)."""
    asyncio.get_running_loop().set_debug(True)


async def until(check: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """Let the loop run until `check()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
