"""Ending a group of tasks that an orchestrator started in parallel (tool calls, workers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_unfinished(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel every task of ``tasks`` still running and wait until each has ended, so that
    none outlives the step that started it (a client that left, a failed sibling)."""
    unfinished = [t for t in tasks if not t.done()]
    for t in unfinished:
        t.cancel()
    if unfinished:
        await asyncio.wait(unfinished)
