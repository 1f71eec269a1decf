"""Plain functions the config tests load as agent tools (``python: module:function``)."""

from __future__ import annotations

import asyncio

WEATHER = "18C, sunny"
TIME = "12:00"


def get_weather(city: str) -> str:
    """Weather now.

    Args:
        city: The city to look up.
    """
    return f"{WEATHER} in {city}"


async def get_time() -> str:
    """Local time."""
    await asyncio.sleep(0)
    return TIME


def explode(reason: str = "boom") -> str:
    """A tool that always fails."""
    raise RuntimeError(f"exploded: {reason}")
