"""What every orchestrator shares: the ``LlmProvider`` face, one algorithm behind both
``stream()`` and ``complete()``/``run()``, summed usage, and calling an inner model.

An orchestrator subclass writes one async generator, ``_run(req, run)``, that yields agent
events (``StepStart``, ``AgentToolCall``/``AgentToolResult``, ``VerifierScore``,
``Recursion``, ``CandidateDelta``) and the answer's ``TextDelta``s, adds every inner call's
usage to ``run`` and counts its steps there. The base turns that into a provider stream
(cumulative ``UsageUpdate``s, one ``Finish``), and ``complete()``/``run()`` fold the very
same stream, so a streamed answer always equals the non-streamed one.

Cancellation: an orchestrator's stream is an async generator; closing it (the client left)
closes the inner model streams it is reading, and orchestrators that run work in tasks
cancel and await them in ``finally`` blocks — nothing keeps running.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..core import (
    NO_CONTEXT,
    AgentToolCall,
    AgentToolResult,
    CandidateDelta,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Collector,
    DragomanError,
    Finish,
    Message,
    Recursion,
    RequestContext,
    StepStart,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    UpstreamError,
    Usage,
    UsageUpdate,
    VerifierScore,
    new_id,
)
from ..providers.base import LlmProvider
from ..providers.legacy import with_context

_replace = msgspec.structs.replace
#: usage of a call that cost nothing (a rule scorer's): adding it changes no sum
NO_USAGE = Usage()

#: Events of a nested orchestrator that an outer one may pass on to its client.
NESTED_EVENTS = (StepStart, AgentToolCall, AgentToolResult, VerifierScore, Recursion,
                 CandidateDelta)


class RunState(msgspec.Struct):
    """What one run accumulates: usage of every inner call, steps, how it ended. (A
    struct, like ``Turn``: a dataclass with a default factory costs ~10x more to make.)"""

    usage: Usage = msgspec.field(default_factory=Usage)
    steps: int = 0
    stop_reason: StopReason = StopReason.END_TURN
    ctx: RequestContext = NO_CONTEXT
    """The outer request's context, passed on to every inner call (``relay(..., ctx=)``):
    a nested agent keeps its state under the same tenant and thread."""
    events: bool = True
    """Whether anyone reads the agent events (``run()`` reads only the answer's text): an
    orchestrator may skip building them, and scoring that only they report."""

    def add(self, usage: Usage) -> None:
        """Count an inner call's usage (the client gets the sum at the end). Summed in
        place: ``usage`` is the run's own (made with it, handed out only when the run
        ends), and a ``Usage`` made per inner call costs twice the additions."""
        if usage != NO_USAGE:
            total = self.usage
            total.input_tokens += usage.input_tokens
            total.output_tokens += usage.output_tokens
            total.cached_tokens += usage.cached_tokens
            total.cache_write_tokens += usage.cache_write_tokens
            total.reasoning_tokens += usage.reasoning_tokens


@dataclass(frozen=True)
class Result:
    """A finished run: the answer's ``text``, the summed ``usage`` of every inner call, and
    ``steps`` (what a step is depends on the orchestrator: coordinator turns, Trinity
    turns, SelfCaller iterations, AbMcts rollouts)."""

    text: str
    usage: Usage
    steps: int
    stop_reason: StopReason = StopReason.END_TURN


class Turn(msgspec.Struct):
    """One inner call's outcome, filled by ``relay``. (A struct: one per inner call.)"""

    text: str = ""
    usage: Usage = msgspec.field(default_factory=Usage)
    stop_reason: StopReason | None = None

    def absorb(self, ev: StreamEvent) -> bool:
        """Take in an inner stream's event other than text: usage, the stop reason (True:
        the stream is done), an in-band error (raised); anything else is ignored."""
        if isinstance(ev, UsageUpdate):
            self.usage = ev.usage
        elif isinstance(ev, Finish):
            self.stop_reason = ev.stop_reason
            return True
        elif isinstance(ev, StreamError):
            raise ev.error
        return False


def text_of(messages: Sequence[Message]) -> str:
    """The text parts of messages, joined (what a judge or router reads)."""
    return "\n".join(p.text for m in messages for p in m.content if isinstance(p, Text))


def question_of(req: ChatRequest) -> str:
    """The client's last user message as text: the question a verifier judges against."""
    for m in reversed(req.messages):
        if m.role == "user":
            text = text_of([m])
            if text:
                return text
    return text_of(req.messages)


def user(text: str) -> Message:
    return Message(role="user", content=[Text(text=text)])


def assistant(text: str) -> Message:
    return Message(role="assistant", content=[Text(text=text)])


def inner_request(req: ChatRequest, messages: list[Message], *,
                  system: str | None = None, keep_system: bool = True,
                  temperature: float | None = None) -> ChatRequest:
    """A request for an inner model: the client's sampling settings, ``messages``, the
    orchestrator's ``system`` text before the client's (dropped with ``keep_system=False``);
    the client's tools are not offered (inner models answer the orchestrator, not the
    client), and nothing of the outer turn's storage or chaining comes along."""
    parts = [Text(text=system)] if system else []
    if keep_system:
        parts += req.system or []
    return _replace(req, messages=messages, system=parts or None, tools=None,
                    tool_choice=None, parallel_tool_calls=None, stream=True,
                    previous_response_id=None, response_format=None,
                    temperature=req.temperature if temperature is None else temperature)


async def relay(provider: LlmProvider, req: ChatRequest, turn: Turn, *,
                forward: tuple[type, ...] = (), ctx: RequestContext = NO_CONTEXT
                ) -> AsyncGenerator[StreamEvent, None]:
    """Stream one inner call: yields its non-empty ``TextDelta``s and the nested agent
    events whose types are in ``forward``; fills ``turn`` (text, usage, stop reason).
    Raises the call's error; closing this generator closes the inner stream."""
    parts: list[str] = []
    stream = with_context(provider).stream(req, ctx)
    try:
        async for ev in stream:
            if isinstance(ev, TextDelta):
                if ev.text:
                    parts.append(ev.text)
                    yield ev
            elif turn.absorb(ev):
                break
            elif forward and isinstance(ev, forward):
                yield ev
    finally:
        turn.text = "".join(parts)
        await close_stream(stream)
    if turn.stop_reason is None:
        raise UpstreamError(ENDED_EARLY)


async def call_whole(provider: LlmProvider, req: ChatRequest,
                     ctx: RequestContext = NO_CONTEXT) -> Turn:
    """One inner call answered whole (``complete()``: over HTTP a JSON answer, no stream
    to parse), for a caller that shows none of its deltas (``run()``): the text, usage
    and stop reason ``relay`` would have read from the stream."""
    return whole_turn(await provider.complete(req, ctx))


def whole_turn(resp: ChatResponse) -> Turn:
    """``call_whole``'s answer as a ``Turn``, for a caller that awaits ``complete()``
    itself (one coroutine less per inner call)."""
    content = resp.content
    # (most answers are one text part: no join to make)
    text = content[0].text if len(content) == 1 and type(content[0]) is Text else resp.text()
    return Turn(text=text, usage=resp.usage, stop_reason=resp.stop_reason)


#: why an inner call fails when its stream stops before its ``Finish``
ENDED_EARLY = "the model's stream ended early"


async def close_stream(events: AsyncIterator[StreamEvent]) -> None:
    """Close a provider's stream (an async generator: its upstream connection) now rather
    than when the garbage collector finds it; a plain async iterator has nothing to close."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


class Closing:
    """``async with Closing(stream) as events``: ``close_stream`` however the block ends
    (``contextlib.aclosing`` wants an ``aclose``; an ``asynccontextmanager`` costs a
    generator of its own on every inner call)."""

    __slots__ = ("events",)

    def __init__(self, events: AsyncIterator[StreamEvent]) -> None:
        self.events = events

    async def __aenter__(self) -> AsyncIterator[StreamEvent]:
        return self.events

    async def __aexit__(self, *exc: object) -> None:
        await close_stream(self.events)


async def call(provider: LlmProvider, req: ChatRequest,
               ctx: RequestContext = NO_CONTEXT) -> Turn:
    """One inner call whose text is not shown to the client (a judge's, a router's):
    answered whole, like ``call_whole``."""
    return await call_whole(with_context(provider), req, ctx)


class Orchestrator:
    """Base of the orchestrators; see the module docstring. ``providers`` are the inner
    models and orchestrators, closed by ``aclose`` when ``owns_providers``."""

    name: str = "orchestrator"

    def __init__(self, *, name: str, providers: Iterable[LlmProvider],
                 owns_providers: bool) -> None:
        self.name = name
        self._providers = list({id(p): p for p in providers}.values())  # one close each
        self.owns_providers = owns_providers

    # --- what a subclass writes ---------------------------------------------------------

    def _run(self, req: ChatRequest, run: RunState) -> AsyncGenerator[StreamEvent, None]:
        raise NotImplementedError

    # --- LlmProvider ----------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return Capabilities()

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        if self.owns_providers:
            for p in self._providers:
                await p.aclose()

    async def stream(self, req: ChatRequest,
                     ctx: RequestContext = NO_CONTEXT) -> AsyncGenerator[StreamEvent, None]:
        run = RunState(ctx=ctx)
        # Step starts are held back until something else happens, so a failure of the
        # first inner call is raised (the client gets a proper HTTP error) rather than
        # reported in-band after a bare step frame.
        held: list[StreamEvent] = []
        started = False
        async with contextlib.aclosing(self._run(req, run)) as events:
            try:
                async for ev in events:
                    if not started:
                        if isinstance(ev, StepStart):
                            held.append(ev)
                            continue
                        started = True
                        for h in held:
                            yield h
                    yield ev
            except DragomanError as e:
                if not started:
                    raise
                yield StreamError(error=e)
                return
        if not started:
            for h in held:
                yield h
        yield UsageUpdate(usage=run.usage)
        yield Finish(stop_reason=run.stop_reason)

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        # the stream folded, but with no one to read agent events the run builds none (as
        # in ``run()``) and answers its inner calls whole where it shows no deltas
        run = RunState(ctx=ctx, events=False)
        collected = Collector()
        async with contextlib.aclosing(self._run(req, run)) as events:
            async for ev in events:
                collected.feed(ev)
        collected.usage = run.usage
        collected.stop_reason = run.stop_reason
        return collected.response(new_id("agent-"), req.model)

    async def run(self, prompt: str | list[Message], *, system: str | None = None,
                  **settings: Any) -> Result:
        """Run on a prompt (or a conversation) and return the ``Result``; ``settings`` are
        ``ChatRequest`` fields (``temperature``, ``max_tokens``…)."""
        req = prompt_request(self.name, prompt, system, settings)
        run = RunState(events=False)
        parts: list[str] = []
        async with contextlib.aclosing(self._run(req, run)) as events:
            async for ev in events:
                if isinstance(ev, TextDelta):
                    parts.append(ev.text)
        return Result(text="".join(parts), usage=run.usage, steps=run.steps,
                      stop_reason=run.stop_reason)



def prompt_request(model: str, prompt: str | list[Message], system: str | None,
                   settings: dict[str, Any]) -> ChatRequest:
    messages = [user(prompt)] if isinstance(prompt, str) else list(prompt)
    return ChatRequest(model=model, messages=messages,
                       system=[Text(text=system)] if system else None, **settings)


async def run_stream(provider: LlmProvider, prompt: str | list[Message], *,
                     system: str | None = None, **settings: Any) -> Result:
    """Any provider's answer as a ``Result`` (``steps``: the ``StepStart`` events of its
    stream — a SingleAgent's model calls)."""
    req = prompt_request(getattr(provider, "name", "model"), prompt, system, settings)
    parts: list[str] = []
    usage = Usage()
    steps = 0
    stop = StopReason.END_TURN
    async with contextlib.aclosing(_aiter(with_context(provider).stream(req))) as events:
        async for ev in events:
            if isinstance(ev, TextDelta):
                parts.append(ev.text)
            elif isinstance(ev, StepStart):
                steps += 1
            elif isinstance(ev, UsageUpdate):
                usage = ev.usage
            elif isinstance(ev, Finish):
                stop = ev.stop_reason
            elif isinstance(ev, StreamError):
                raise ev.error
    return Result(text="".join(parts), usage=usage, steps=steps, stop_reason=stop)


async def _aiter(events: AsyncIterator[StreamEvent]) -> AsyncGenerator[StreamEvent, None]:
    """``events`` as a generator that closes it (a provider's stream may be any async
    iterator)."""
    try:
        async for ev in events:
            yield ev
    finally:
        await close_stream(events)
