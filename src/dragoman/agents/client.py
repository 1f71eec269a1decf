"""Read an agent model's ``dragoman.*`` events from a streamed response, on the client side.

An agent model streams its final answer in the client's dialect, interleaved with named SSE
events that show its inner life::

    event: dragoman.step              data: {"type": "dragoman.step", "index": 0}
    event: dragoman.tool_call_start   data: {"type": …, "id": …, "name": …, "args": {…}}
    event: dragoman.tool_call_result  data: {"type": …, "id": …, "name": …, "result": "…",
                                             "is_error": false}

Orchestrators add ``dragoman.verifier_score {step, branch, score, final}``,
``dragoman.recursion {depth, confidence}`` and ``dragoman.candidate_delta {step, branch,
delta}``. A server configured with ``agents_events: tako`` sends tako's ``tako.*`` names
instead; both are parsed into the same classes.

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
TAKO_PREFIX = "tako."
STEP = "dragoman.step"
TOOL_CALL_START = "dragoman.tool_call_start"
TOOL_CALL_RESULT = "dragoman.tool_call_result"
VERIFIER_SCORE = "dragoman.verifier_score"
RECURSION = "dragoman.recursion"
CANDIDATE_DELTA = "dragoman.candidate_delta"


@dataclass(frozen=True, slots=True)
class Step:
    """The agent starts model call number ``index`` (0-based)."""

    index: int


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """The agent runs one of its tools (a Conductor: a worker, ``name="worker:<role>"``);
    ``step`` is the orchestrator's step when it has one."""

    id: str
    name: str
    args: Any
    step: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    """A tool finished; ``result`` is the text the model will read."""

    id: str
    name: str
    result: Any
    is_error: bool
    step: int | None = None


@dataclass(frozen=True, slots=True)
class VerifierScore:
    """A verifier scored unit ``(step, branch)``; ``final=False`` for a partial score of
    the text so far (the last score of a pair counts)."""

    step: int
    branch: int
    score: float
    final: bool = True


@dataclass(frozen=True, slots=True)
class Recursion:
    """A SelfCaller iteration at ``depth`` was scored ``confidence`` by its guard."""

    depth: int
    confidence: float


@dataclass(frozen=True, slots=True)
class CandidateDelta:
    """Text of a candidate answer (a rollout, a worker, an iteration) as it streams."""

    step: int
    branch: int
    delta: str


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A ``dragoman.*`` event this client version does not know."""

    type: str
    data: Any


AgentEvent = (Step | ToolCallStart | ToolCallResult | VerifierScore | Recursion
              | CandidateDelta | OtherEvent)


def _step(payload: dict[str, Any]) -> int | None:
    step = payload.get("step")
    return int(step) if step is not None else None


def _typed(short: str, p: dict[str, Any]) -> AgentEvent | None:
    if short == "step":
        return Step(index=int(p["index"]))
    if short == "step_start":  # tako's own name, should a proxy pass it on
        return Step(index=int(p["step"]))
    if short == "tool_call_start":
        return ToolCallStart(id=p["id"], name=p["name"], args=p.get("args"), step=_step(p))
    if short == "tool_call_result":
        return ToolCallResult(id=p["id"], name=p.get("name", ""), result=p.get("result", ""),
                              is_error=bool(p.get("is_error", False)), step=_step(p))
    if short == "verifier_score":
        return VerifierScore(step=int(p["step"]), branch=int(p["branch"]),
                             score=float(p["score"]), final=bool(p.get("final", True)))
    if short == "recursion":
        return Recursion(depth=int(p["depth"]), confidence=float(p["confidence"]))
    if short == "candidate_delta":
        return CandidateDelta(step=int(p["step"]), branch=int(p["branch"]),
                              delta=str(p["delta"]))
    return None


def parse_event(name: str, data: str) -> AgentEvent:
    """One ``dragoman.*`` (or ``tako.*``) frame → its typed event."""
    payload = json.loads(data) if data else {}
    if not isinstance(payload, dict):
        return OtherEvent(name, payload)
    short = name.split(".", 1)[1] if "." in name else name
    try:
        typed = _typed(short, payload)
    except (KeyError, TypeError, ValueError):
        typed = None
    return typed if typed is not None else OtherEvent(name, payload)


def _ours(name: str | None) -> bool:
    return name is not None and (name.startswith(PREFIX) or name.startswith(TAKO_PREFIX))


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
    """The ``dragoman.*`` (or ``tako.*``) events of a streamed response, in order (other
    frames skipped)."""
    for name, data in iter_sse(source):
        if name is not None and _ours(name):
            yield parse_event(name, data)


async def aiter_events(source: Any) -> AsyncIterator[AgentEvent]:
    async for name, data in aiter_sse(source):
        if name is not None and _ours(name):
            yield parse_event(name, data)


__all__ = ["AgentEvent", "CandidateDelta", "OtherEvent", "Recursion", "Step",
           "ToolCallResult", "ToolCallStart", "VerifierScore", "aiter_events", "aiter_sse",
           "iter_events", "iter_sse", "parse_event"]
