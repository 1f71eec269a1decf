"""Read an agent model's ``dragoman.*`` events from a streamed response, on the client side.

An agent model streams its final answer in the client's dialect, interleaved with named SSE
events that show its inner life::

    event: dragoman.step              data: {"type": "dragoman.step", "index": 0}
    event: dragoman.tool_call_start   data: {"type": …, "id": …, "name": …, "args": {…}}
    event: dragoman.tool_call_result  data: {"type": …, "id": …, "name": …, "result": "…",
                                             "is_error": false}

Vendor SDKs skip them (or see harmless no-op chunks). To act on them, feed the raw bytes of
the response to ``iter_events`` (or ``aiter_events``)::

    import httpx
    from dragoman.agents.client import iter_events, ToolCallStart

    with httpx.stream("POST", "http://127.0.0.1:8080/v1/chat/completions", json={
            "model": "coder", "stream": True,
            "messages": [{"role": "user", "content": "fix the failing test"}]}) as r:
        for ev in iter_events(r.iter_bytes()):
            if isinstance(ev, ToolCallStart):
                print("calling", ev.name, ev.args)

With the openai SDK, ``client.chat.completions.with_streaming_response.create(...,
stream=True)`` gives a raw response whose ``iter_bytes()`` works the same way.
``iter_sse`` yields every frame (``(event name or None, data text)``) for clients that also
want to parse the dialect's own frames. A source is an iterable of ``bytes`` or an object
with ``iter_bytes()`` (httpx, openai/anthropic raw responses) or ``iter_content()``
(requests); the async variants take an async iterable of ``bytes`` or an object with
``aiter_bytes()`` (httpx) or ``.content.iter_any()`` (aiohttp).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..net import SseDecoder

PREFIX = "dragoman."
STEP = "dragoman.step"
TOOL_CALL_START = "dragoman.tool_call_start"
TOOL_CALL_RESULT = "dragoman.tool_call_result"


@dataclass(frozen=True, slots=True)
class Step:
    """The agent starts model call number ``index`` (0-based)."""

    index: int


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """The agent runs one of its tools."""

    id: str
    name: str
    args: Any


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    """A tool finished; ``result`` is the text the model will read."""

    id: str
    name: str
    result: str
    is_error: bool


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A ``dragoman.*`` event this client version does not know."""

    type: str
    data: Any


AgentEvent = Step | ToolCallStart | ToolCallResult | OtherEvent


def parse_event(name: str, data: str) -> AgentEvent:
    """One ``dragoman.*`` frame → its typed event."""
    payload = json.loads(data) if data else {}
    if not isinstance(payload, dict):
        return OtherEvent(name, payload)
    try:
        if name == STEP:
            return Step(index=int(payload["index"]))
        if name == TOOL_CALL_START:
            return ToolCallStart(id=payload["id"], name=payload["name"],
                                 args=payload.get("args"))
        if name == TOOL_CALL_RESULT:
            return ToolCallResult(id=payload["id"], name=payload["name"],
                                  result=payload.get("result", ""),
                                  is_error=bool(payload.get("is_error", False)))
    except (KeyError, TypeError, ValueError):
        pass
    return OtherEvent(name, payload)


def _sync_chunks(source: Any) -> Iterable[bytes]:
    if isinstance(source, (bytes, bytearray)):
        return [bytes(source)]
    if hasattr(source, "iter_bytes"):
        return source.iter_bytes()
    if hasattr(source, "iter_content"):  # requests: chunk_size=None yields data as it comes
        return source.iter_content(chunk_size=None)
    return source


def _async_chunks(source: Any) -> AsyncIterable[bytes]:
    method = getattr(source, "aiter_bytes", None)
    if method is not None:
        return method()
    content = getattr(source, "content", None)
    if content is not None and hasattr(content, "iter_any"):
        return content.iter_any()
    return source


def iter_sse(source: Any) -> Iterator[tuple[str | None, str]]:
    """Every SSE frame of a byte stream, as ``(event name or None, data)``."""
    decoder = SseDecoder()
    for chunk in _sync_chunks(source):
        yield from decoder.feed(chunk)
    yield from decoder.close()


async def aiter_sse(source: Any) -> AsyncIterator[tuple[str | None, str]]:
    decoder = SseDecoder()
    async for chunk in _async_chunks(source):
        for frame in decoder.feed(chunk):
            yield frame
    for frame in decoder.close():
        yield frame


def iter_events(source: Any) -> Iterator[AgentEvent]:
    """The ``dragoman.*`` events of a streamed response, in order (other frames skipped)."""
    for name, data in iter_sse(source):
        if name is not None and name.startswith(PREFIX):
            yield parse_event(name, data)


async def aiter_events(source: Any) -> AsyncIterator[AgentEvent]:
    async for name, data in aiter_sse(source):
        if name is not None and name.startswith(PREFIX):
            yield parse_event(name, data)


__all__ = ["AgentEvent", "OtherEvent", "Step", "ToolCallResult", "ToolCallStart",
           "aiter_events", "aiter_sse", "iter_events", "iter_sse", "parse_event"]
