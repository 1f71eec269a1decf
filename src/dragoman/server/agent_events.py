"""Agent events → named SSE frames, interleaved with the dialect's own frames.

``event: dragoman.step`` ``{index}``, ``event: dragoman.tool_call_start`` ``{id, name,
args}``, ``event: dragoman.tool_call_result`` ``{id, name, result, is_error}``; every payload
also says its ``type`` (Responses-style clients dispatch on it and skip unknown ones).

One dialect needs more: the openai SDK does not filter Chat Completions frames by event name
— every frame reaches the caller's loop as a ``ChatCompletionChunk``. So toward Chat clients
the payload also carries a no-op choice (index 0, empty delta, no finish reason), the shape
of a chunk that says nothing; code written for OpenAI's own streams (which contain such
chunks) handles it, and the SDK's ``.stream()`` helper accumulates nothing from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import AgentToolCall, AgentToolResult, StepStart, StreamEvent
from ..dialects.base import sse

AGENT_EVENTS = (StepStart, AgentToolCall, AgentToolResult)

_NOOP_CHOICES = [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}]


def _payload(ev: StreamEvent) -> tuple[str, dict[str, Any]]:
    if isinstance(ev, StepStart):
        return "dragoman.step", {"type": "dragoman.step", "index": ev.index}
    if isinstance(ev, AgentToolCall):
        return "dragoman.tool_call_start", {"type": "dragoman.tool_call_start", "id": ev.id,
                                            "name": ev.name, "args": ev.args}
    if isinstance(ev, AgentToolResult):
        return "dragoman.tool_call_result", {
            "type": "dragoman.tool_call_result", "id": ev.id, "name": ev.name,
            "result": ev.result, "is_error": ev.is_error}
    raise TypeError(f"not an agent event: {type(ev).__name__}")


def agent_frame(ev: StreamEvent) -> bytes:
    name, payload = _payload(ev)
    return sse(name, payload)


def chat_agent_frame(ev: StreamEvent) -> bytes:
    name, payload = _payload(ev)
    payload["choices"] = _NOOP_CHOICES
    return sse(name, payload)


def agent_framer(dialect_name: str) -> Callable[[StreamEvent], bytes]:
    """How agent events are framed for a client of ``dialect_name``."""
    return chat_agent_frame if dialect_name == "openai_chat" else agent_frame
