"""Callables the Python-provider tests load by import path (``tests.providers.pyfuncs:…``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

from dragoman.core import (
    ChatRequest,
    ChatResponse,
    Finish,
    RateLimited,
    StopReason,
    StreamEvent,
    Text,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

SECRET = "internal-detail-do-not-leak"


def last_text(req: ChatRequest) -> str:
    return req.messages[-1].text() if req.messages else ""


def shout(req: ChatRequest) -> str:
    """Plain function returning text."""
    text = last_text(req)
    if "boom" in text:
        raise RuntimeError(SECRET)
    if "ratelimit" in text:
        raise RateLimited("slow down", retry_after=3)
    return text.upper()


async def answer(req: ChatRequest) -> ChatResponse:
    """Async function returning a full response, with a tool call when tools are offered."""
    await asyncio.sleep(0)
    if req.tools and not any(m.role == "tool" for m in req.messages):
        return ChatResponse(id="", model=req.model, content=[
            Text(text="Calling."), ToolCall(id="call_py1", name=req.tools[0].name,
                                            arguments='{"city":"Paris"}')],
            stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=10, output_tokens=4))
    return ChatResponse(id="", model=req.model, content=[Text(text=f"echo: {last_text(req)}")],
                        usage=Usage(input_tokens=10, output_tokens=4))


async def words(req: ChatRequest) -> AsyncIterator[StreamEvent | str | Usage]:
    """Async generator: str deltas, a usage, no explicit Finish."""
    text = last_text(req)
    for w in text.split():
        yield w + " "
        await asyncio.sleep(0)
        if w == "fail":
            raise RuntimeError(SECRET)
        if w == "ratelimit":
            raise RateLimited("slow down", retry_after=3)
    if req.tools and not any(m.role == "tool" for m in req.messages):
        yield ToolCallStart(id="call_py2", name=req.tools[0].name)
        yield ToolCallDelta(id="call_py2", arguments='{"city":')
        yield ToolCallDelta(id="call_py2", arguments='"Paris"}')
        yield ToolCallEnd(id="call_py2")
        yield Usage(input_tokens=3, output_tokens=len(text.split()))
        yield Finish(stop_reason=StopReason.TOOL_USE)
        yield "never seen"
        return
    yield Usage(input_tokens=3, output_tokens=len(text.split()))


def sync_words(req: ChatRequest) -> Iterator[str]:
    """A plain generator also streams."""
    yield from ("sync ", "stream")


async def fails_before_first(req: ChatRequest) -> AsyncIterator[str]:
    raise RuntimeError(SECRET)
    yield "unreachable"  # pragma: no cover


def wrong_type(req: ChatRequest) -> int:
    return 42


not_callable = 7
