"""``SingleAgent``: one model, a set of tools, a loop.

Each step streams one model turn. Text and thinking go to the caller as they arrive;
tool calls of the agent's own tools are collected, run (concurrently when the model made
several), and their results sent back in the next step. The loop ends when the model
answers without calling a tool, when it calls a tool the CLIENT declared (the turn ends
with that call, see ``turns``), or after ``max_steps`` model calls (``StopReason.MAX_STEPS``).

It implements ``LlmProvider``, so it is served like any model: its stream is ordinary
events (the final text, client tool calls, summed usage) plus agent events (``StepStart``,
``AgentToolCall``, ``AgentToolResult``) that dialect renderers ignore and the server turns
into named ``dragoman.*`` SSE events.

Cancellation: closing or cancelling the stream closes the model's stream (its upstream
connection) and cancels running tools; nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

import msgspec

from ..core import (
    NO_CONTEXT,
    AgentToolCall,
    AgentToolResult,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Collector,
    DragomanError,
    Finish,
    Message,
    OpaqueItem,
    Part,
    RedactedThinkingBlock,
    RequestContext,
    StepStart,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    UpstreamError,
    Usage,
    UsageUpdate,
    acollect,
    new_id,
    spans,
)
from ..core import Tool as ToolSpec
from ..providers.base import LlmProvider
from ..providers.legacy import with_context
from .orchestrator import Closing, Result, run_stream
from .tasks import cancel_unfinished
from .toolbox import ThreadToolbox
from .tools import Tool, ToolOutcome, ToolRegistry, parse_arguments
from .turns import MemoryTurnStore, PendingTurn, TurnStore, restore

_replace = msgspec.structs.replace

#: Shown between the texts of two steps, so "Let me check." and the answer do not run
#: together in the one assistant message the client sees.
STEP_SEPARATOR = "\n\n"

#: Events a model turn forwards to the client as they are (they also build the turn).
_PASS_THROUGH = (ThinkingDelta, ThinkingEnd, RedactedThinkingBlock, OpaqueItem)


def _event_args(raw: str) -> Any:
    """Arguments for an ``AgentToolCall`` event: the object, or the raw text if the model
    wrote something that is not one."""
    try:
        return parse_arguments(raw)
    except Exception:
        return raw


class SingleAgent:
    """A tool loop over one provider. See the module docstring.

    ``tools``: ``Tool`` objects, plain functions (wrapped by ``FunctionTool``) or a ready
    ``ToolRegistry``. ``system`` comes before the client's own system text.
    ``parallel_tool_calls=False`` runs a step's calls one after another.
    ``owns_provider``: ``aclose`` closes the provider too (False when the provider is
    shared with other deployments that close it themselves). ``turns``: where the hidden
    part of a turn that ends with client tool calls waits for the results (``turns``
    module; in this process unless given, the config-built gateway passes a store on the
    session database).
    """

    #: The server keeps a thread-keyed conversation with an agent model (the sessions
    #: layer): a client may send only its newest message. See docs/sessions-guide.md.
    holds_history = True

    def __init__(self, provider: LlmProvider, tools: ToolRegistry | Iterable[
                     Tool | Callable[..., Any]] = (), *,
                 system: str | None = None, max_steps: int = 10, name: str = "agent",
                 parallel_tool_calls: bool = True, tool_timeout: float | None = None,
                 turns: TurnStore | None = None, owns_provider: bool = True,
                 toolbox: ThreadToolbox | None = None) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.provider = provider
        self._model = with_context(provider)  # called with the request's context
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(
            tools, timeout=tool_timeout)
        self.system = system
        self.max_steps = max_steps
        self.name = name
        self.parallel_tool_calls = parallel_tool_calls
        self.turns: TurnStore = turns if turns is not None else MemoryTurnStore()
        self.owns_provider = owns_provider
        self.toolbox = toolbox

    def __repr__(self) -> str:
        return (f"SingleAgent(name={self.name!r}, provider={self.provider!r}, "
                f"tools={[t.name for t in self.tools]!r}, max_steps={self.max_steps})")

    # --- LlmProvider ----------------------------------------------------------------------

    def capabilities(self) -> Capabilities:
        return self.provider.capabilities()

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return await self.provider.count_tokens(self._base_request(req, req.tools or [])[0])

    async def aclose(self) -> None:
        if self.toolbox is not None:
            await self.toolbox.aclose()
        if self.owns_provider:
            await self.provider.aclose()

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        if self.toolbox is None and not self.tools and not req.tools:
            return await self._answer_whole(req, ctx)
        async with contextlib.aclosing(self.stream(req, ctx)) as events:
            return await acollect(events, new_id("agent-"), req.model)

    async def _answer_whole(self, req: ChatRequest, ctx: RequestContext) -> ChatResponse:
        """``complete()`` with no tool anywhere (no loop: one model call, one step): the
        model's own ``complete()`` — over HTTP a JSON answer, no stream to parse — as
        the streamed step would have collected it (one SelfCaller iteration, a Conductor
        worker)."""
        base, _ = self._base_request(req, [])
        messages = await restore(list(req.messages), self.turns, ctx.tenant)
        step_req = _replace(base, messages=messages)
        tracer = spans.TRACER  # the step's span holds its model call, as in ``_stream``
        if tracer is None:  # tracing off: no span, and no context manager to enter
            resp = await self._model.complete(step_req, ctx)
        else:
            async with spans.current(tracer.agent_step(self.name, 0)):
                resp = await self._model.complete(step_req, ctx)
        return _replace(resp, id=new_id("agent-"), model=req.model)

    async def run(self, prompt: str | list[Message], *, system: str | None = None,
                  **settings: Any) -> Result:
        """Run on a prompt (or a conversation): ``Result.text``, ``.usage``, ``.steps``
        (model calls), as the other orchestrators' ``run``."""
        return await run_stream(self, prompt, system=system, **settings)

    def stream(self, req: ChatRequest,
               ctx: RequestContext = NO_CONTEXT) -> AsyncGenerator[StreamEvent, None]:
        if self.toolbox is None:
            return self._stream(req, ctx, self.tools)
        return self._in_thread(req, ctx, self.toolbox)

    async def _in_thread(self, req: ChatRequest, ctx: RequestContext, toolbox: ThreadToolbox
                         ) -> AsyncGenerator[StreamEvent, None]:
        """The loop with the tools of the request's thread (its workspace, its MCP
        connections), held until the stream ends."""
        async with toolbox.open(ctx.tenant, ctx.thread) as tools, \
                contextlib.aclosing(self._stream(req, ctx, tools)) as events:
            async for ev in events:
                yield ev

    async def _stream(self, req: ChatRequest, ctx: RequestContext, tools: ToolRegistry
                      ) -> AsyncGenerator[StreamEvent, None]:
        base, client_names = self._base_request(req, req.tools or [], tools)
        tenant = ctx.tenant  # "": an agent called in-process, without a server
        messages = await restore(list(req.messages), self.turns, tenant)
        added: list[Message] = []  # what this turn adds to the conversation
        total = Usage()
        separate = False  # an earlier step showed text
        for step in range(self.max_steps):
            step_req = _replace(base, messages=[*messages, *added],
                                tool_choice=base.tool_choice if step == 0 else None)
            turn = Collector()
            forwarded: set[str] = set()  # ids of client tool calls streamed to the client
            step_usage = Usage()
            finish: Finish | None = None
            shown_text = False
            called = False  # the model called a tool (only then is the turn's response built)
            tracer = spans.TRACER  # the step's span holds its model call (not its tools)
            step_span = tracer.agent_step(self.name, step) if tracer is not None else None
            async with spans.current(step_span), \
                    Closing(self._model.stream(step_req, ctx)) as upstream:
                try:
                    first = await anext(upstream)
                except StopAsyncIteration:
                    first = StreamError(error=UpstreamError("the model produced an empty "
                                                            "stream"))
                except DragomanError as e:
                    if step == 0:
                        raise  # nothing sent yet: the client gets a proper HTTP error
                    first = StreamError(error=e)
                yield StepStart(index=step)
                ev: StreamEvent | None = first
                while ev is not None:
                    if isinstance(ev, TextDelta):
                        if ev.text:
                            if separate and not shown_text:
                                yield TextDelta(text=STEP_SEPARATOR)
                            shown_text = True
                            turn.feed(ev)
                            yield ev
                    elif isinstance(ev, _PASS_THROUGH):
                        turn.feed(ev)
                        yield ev
                    elif isinstance(ev, ToolCallStart):
                        turn.feed(ev)
                        called = True
                        if ev.name in client_names:
                            forwarded.add(ev.id)
                            yield ev
                    elif isinstance(ev, (ToolCallDelta, ToolCallEnd)):
                        turn.feed(ev)
                        if ev.id in forwarded:
                            yield ev
                    elif isinstance(ev, UsageUpdate):
                        step_usage = ev.usage
                        yield UsageUpdate(usage=total + step_usage)
                    elif isinstance(ev, Finish):
                        finish = ev
                        break
                    elif isinstance(ev, StreamError):
                        yield ev
                        return
                    # a nested agent's own events are not passed on: steps are ours
                    try:
                        ev = await anext(upstream)
                    except StopAsyncIteration:
                        ev = None
                    except DragomanError as e:
                        ev = StreamError(error=e)
            if finish is None:
                yield StreamError(error=UpstreamError("the model's stream ended early"))
                return
            total = total + step_usage
            separate = separate or shown_text
            if not called or finish.stop_reason not in (StopReason.TOOL_USE,
                                                        StopReason.END_TURN):
                yield finish
                return
            resp = turn.response("", req.model)
            calls = resp.tool_calls()  # one per ToolCallStart: not empty
            client_calls = [c for c in calls if c.name in client_names]
            own_calls = [c for c in calls if c.name not in client_names]
            if not client_calls and step == self.max_steps - 1:
                # Out of steps: running these calls would produce results no model reads.
                yield Finish(stop_reason=StopReason.MAX_STEPS)
                return
            assistant = Message(role="assistant", content=resp.content)
            results: list[ToolResult] = []
            async with contextlib.aclosing(self._run_calls(own_calls, tools)) as running:
                async for item in running:
                    if isinstance(item, ToolResult):
                        results.append(item)
                    else:
                        yield item
            results.sort(key=lambda r: [c.id for c in own_calls].index(r.call_id))
            if client_calls:
                await self.turns.put(tenant, [c.id for c in client_calls],
                                     PendingTurn(messages=[*added, assistant], results=results))
                yield Finish(stop_reason=StopReason.TOOL_USE)
                return
            content: list[Part] = list(results)
            added += [assistant, Message(role="tool", content=content)]
        raise AssertionError("unreachable: the last step always returns")  # pragma: no cover

    # --- helpers --------------------------------------------------------------------------

    def _base_request(self, req: ChatRequest, client_tools: list[ToolSpec],
                      registry: ToolRegistry | None = None) -> tuple[ChatRequest, set[str]]:
        """The request every step starts from: the agent's system text first, its tools
        merged with the client's (an agent tool shadows a client tool of the same name)."""
        own = registry if registry is not None else self.tools
        mine = own.specs()
        theirs = [t for t in client_tools if t.name not in own]
        tools = [*mine, *theirs]
        system = [Text(text=self.system)] if self.system else []
        system += req.system or []
        base = _replace(req, system=system or None, tools=tools or None, stream=True,
                        previous_response_id=None,
                        tool_choice=req.tool_choice if tools else None,
                        parallel_tool_calls=req.parallel_tool_calls if tools else None)
        return base, {t.name for t in theirs}

    async def _run_calls(self, calls: list[ToolCall], tools: ToolRegistry
                         ) -> AsyncGenerator[AgentToolCall | AgentToolResult | ToolResult, None]:
        """Run the calls (concurrently unless disabled), yielding each ``AgentToolCall``
        when it starts and each ``AgentToolResult`` + ``ToolResult`` as it finishes.
        Leaving early (cancellation, a closed stream) cancels every unfinished call."""
        if not calls:
            return
        if not self.parallel_tool_calls:
            for c in calls:
                yield AgentToolCall(id=c.id, name=c.name, args=_event_args(c.arguments))
                outcome = await tools.call(c.name, c.arguments, call_id=c.id)
                for item in _result(c, outcome):
                    yield item
            return
        tasks = {asyncio.ensure_future(tools.call(c.name, c.arguments, call_id=c.id)): c
                 for c in calls}
        try:
            for c in calls:
                yield AgentToolCall(id=c.id, name=c.name, args=_event_args(c.arguments))
            pending = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in sorted(done, key=lambda t: calls.index(tasks[t])):
                    for item in _result(tasks[t], t.result()):
                        yield item
        finally:
            await cancel_unfinished(tasks)


def _result(call: ToolCall, outcome: ToolOutcome) -> tuple[AgentToolResult, ToolResult]:
    text = outcome.text or "(no output)"  # some APIs refuse an empty tool result
    return (AgentToolResult(id=call.id, name=call.name, result=text, is_error=outcome.is_error),
            ToolResult(call_id=call.id, content=[Text(text=text), *(outcome.images or ())],
                       is_error=outcome.is_error, kind=call.kind))
