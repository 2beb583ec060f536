"""asyncio helpers shared by the socket glue (browser sockets, vt's link on both ends)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def race(*coros: Coroutine[Any, Any, Any]) -> tuple[int, asyncio.Task[Any]]:
    """Run `coros` until the first one ends; cancel and await the others.

    Returns the index and the task of the one that ended (its result or exception is the
    caller's to read). A sender and a receiver of one socket end together this way.
    """
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = next(t for t in tasks if t in done)
    return tasks.index(first), first
