"""Agent events → named SSE frames, interleaved with the dialect's own frames.

``event: dragoman.step`` ``{index}``, ``event: dragoman.tool_call_start`` ``{id, name,
args, step?}``, ``event: dragoman.tool_call_result`` ``{id, name, result, is_error,
step?}``, ``event: dragoman.verifier_score`` ``{step, branch, score, final}``,
``event: dragoman.recursion`` ``{depth, confidence}``, ``event: dragoman.candidate_delta``
``{step, branch, delta}``; every payload also says its ``type`` (Responses-style clients
dispatch on it and skip unknown ones).

With the server setting ``agents_events: tako`` the names and payloads are tako's instead,
so clients written against tako work unchanged: ``tako.tool_call_start {id, name, args}``,
``tako.tool_call_result {id, name, result, is_error}``, ``tako.verifier_score {step,
branch, score}``, ``tako.recursion {depth, confidence}`` (plus ``step`` where known).
tako has no frame for a step start nor for candidate text: those are not sent.

One dialect needs more: the openai SDK does not filter Chat Completions frames by event name
— every frame reaches the caller's loop as a ``ChatCompletionChunk``. So toward Chat clients
the payload also carries a no-op choice (index 0, empty delta, no finish reason), the shape
of a chunk that says nothing; code written for OpenAI's own streams (which contain such
chunks) handles it, and the SDK's ``.stream()`` helper accumulates nothing from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ..core import (
    AgentToolCall,
    AgentToolResult,
    CandidateDelta,
    Recursion,
    StepStart,
    StreamEvent,
    VerifierScore,
)
from ..dialects.framing import sse

AGENT_EVENTS = (StepStart, AgentToolCall, AgentToolResult, VerifierScore, Recursion,
                CandidateDelta)

#: Which names and payloads the agent events take on the wire (``server.agents_events``).
EventStyle = Literal["dragoman", "tako"]

_NOOP_CHOICES = [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": None}]


def _with_step(payload: dict[str, Any], step: int | None) -> dict[str, Any]:
    if step is not None:
        payload["step"] = step
    return payload


def _payload(ev: StreamEvent) -> tuple[str, dict[str, Any]]:
    """The event's ``dragoman.*`` name and payload (without its ``type``)."""
    if isinstance(ev, StepStart):
        return "step", {"index": ev.index}
    if isinstance(ev, AgentToolCall):
        return "tool_call_start", _with_step({"id": ev.id, "name": ev.name, "args": ev.args},
                                             ev.step)
    if isinstance(ev, AgentToolResult):
        return "tool_call_result", _with_step({"id": ev.id, "name": ev.name,
                                               "result": ev.result, "is_error": ev.is_error},
                                              ev.step)
    if isinstance(ev, VerifierScore):
        return "verifier_score", {"step": ev.step, "branch": ev.branch, "score": ev.score,
                                  "final": ev.final}
    if isinstance(ev, Recursion):
        return "recursion", {"depth": ev.depth, "confidence": ev.confidence}
    if isinstance(ev, CandidateDelta):
        return "candidate_delta", {"step": ev.step, "branch": ev.branch, "delta": ev.delta}
    raise TypeError(f"not an agent event: {type(ev).__name__}")


def _dragoman(ev: StreamEvent) -> tuple[str, dict[str, Any]] | None:
    short, payload = _payload(ev)
    name = "dragoman." + short
    return name, {"type": name, **payload}


def _tako(ev: StreamEvent) -> tuple[str, dict[str, Any]] | None:
    if isinstance(ev, (StepStart, CandidateDelta)):
        return None
    short, payload = _payload(ev)
    payload.pop("final", None)
    return "tako." + short, payload


def _framer(style: EventStyle, chat: bool) -> Callable[[StreamEvent], bytes]:
    named = _tako if style == "tako" else _dragoman

    def frame(ev: StreamEvent) -> bytes:
        got = named(ev)
        if got is None:
            return b""
        name, payload = got
        if chat:
            payload["choices"] = _NOOP_CHOICES
        return sse(name, payload)

    return frame


_FRAMERS = {(style, chat): _framer(style, chat)
            for style in ("dragoman", "tako") for chat in (False, True)}


def agent_framer(dialect_name: str, style: EventStyle = "dragoman"
                 ) -> Callable[[StreamEvent], bytes]:
    """How agent events are framed for a client of ``dialect_name`` (made once, at import:
    this runs on every streamed request)."""
    return _FRAMERS[style, dialect_name == "openai_chat"]


#: dragoman's own frames toward a non-Chat client
agent_frame = agent_framer("")
