"""The SingleAgent loop in-process, driven by the scriptable echo model: multi-step runs,
parallel calls, failing tools, max_steps, summed usage, client tools and cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dragoman.agents import SingleAgent, ToolError
from dragoman.core import (
    AgentToolCall,
    AgentToolResult,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Finish,
    Message,
    StepStart,
    StopReason,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    UsageUpdate,
    acollect,
)
from dragoman.providers import EchoProvider, LlmProvider


def user(text: str, model: str = "agent") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content=[Text(text=text)])])


async def run(agent: SingleAgent, req: ChatRequest) -> list[StreamEvent]:
    return [ev async for ev in agent.stream(req)]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def get_weather(city: str) -> str:
    """Weather now."""
    return f"18C in {city}"


async def test_multi_step_run_reports_tool_results_and_sums_usage() -> None:
    agent = SingleAgent(EchoProvider(), [get_weather], max_steps=5)
    events = await run(agent, user('::tool get_weather {"city": "Paris"}'))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "StepStart" and kinds[-1] == "Finish"
    steps = [e.index for e in events if isinstance(e, StepStart)]
    assert steps == [0, 1]
    (call,) = [e for e in events if isinstance(e, AgentToolCall)]
    assert call.name == "get_weather" and call.args == {"city": "Paris"}
    (result,) = [e for e in events if isinstance(e, AgentToolResult)]
    assert (result.id, result.result, result.is_error) == (call.id, "18C in Paris", False)
    # the agent's own calls never reach the client as tool calls
    assert not any(isinstance(e, (ToolCallStart, ToolCallDelta, ToolCallEnd)) for e in events)
    assert text_of(events) == f"Tool {call.id} result: 18C in Paris"
    assert isinstance(events[-1], Finish) and events[-1].stop_reason == StopReason.END_TURN
    # usage is cumulative over the steps: the last update is the sum of both model calls
    updates = [e.usage for e in events if isinstance(e, UsageUpdate)]
    assert len(updates) == 2
    assert updates[1].input_tokens > updates[0].input_tokens > 0
    assert updates[1].output_tokens > updates[0].output_tokens


async def test_parallel_calls_run_concurrently() -> None:
    both_running = asyncio.Barrier(2)  # passes only if both calls are in flight at once

    async def slow_a() -> str:
        async with asyncio.timeout(2):
            await both_running.wait()
        return "A done"

    async def slow_b() -> str:
        async with asyncio.timeout(2):
            await both_running.wait()
        return "B done"

    agent = SingleAgent(EchoProvider(), [slow_a, slow_b])
    events = await run(agent, user("::tool slow_a {}\n::tool slow_b {}"))
    calls = [e for e in events if isinstance(e, AgentToolCall)]
    results = [e for e in events if isinstance(e, AgentToolResult)]
    assert [c.name for c in calls] == ["slow_a", "slow_b"]
    assert sorted(r.result for r in results) == ["A done", "B done"]
    assert not any(r.is_error for r in results)
    # both calls start before either result is reported
    idx = [events.index(e) for e in (*calls, *results)]
    assert max(idx[:2]) < min(idx[2:])
    text = text_of(events)
    assert f"Tool {calls[0].id} result: A done" in text
    assert f"Tool {calls[1].id} result: B done" in text


async def test_sequential_mode_runs_one_call_at_a_time() -> None:
    running = 0
    peak = 0

    async def probe() -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return "ok"

    agent = SingleAgent(EchoProvider(), [probe], parallel_tool_calls=False)
    events = await run(agent, user("::tool probe {}\n::tool probe {}\n::tool probe {}"))
    assert peak == 1
    assert [type(e).__name__ for e in events if isinstance(e, (AgentToolCall,
                                                               AgentToolResult))] == \
        ["AgentToolCall", "AgentToolResult"] * 3


async def test_a_failing_tool_is_an_error_result_and_the_loop_goes_on() -> None:
    def explode() -> str:
        raise RuntimeError("kaboom")

    def refuse(reason: str) -> str:
        raise ToolError(f"refused: {reason}")

    agent = SingleAgent(EchoProvider(), [explode, refuse])
    events = await run(agent, user('::tool explode {}\n::tool refuse {"reason": "policy"}\n'
                                   "::tool missing {}"))
    results = {e.name: e for e in events if isinstance(e, AgentToolResult)}
    assert results["explode"].is_error
    assert results["explode"].result == "tool 'explode' failed: RuntimeError: kaboom"
    assert results["refuse"].result == "refused: policy" and results["refuse"].is_error
    assert results["missing"].is_error and "unknown tool 'missing'" in results["missing"].result
    assert isinstance(events[-1], Finish) and events[-1].stop_reason == StopReason.END_TURN
    text = text_of(events)
    assert f"Tool {results['explode'].id} error: tool 'explode' failed" in text


class LoopingModel:
    """A model that never stops calling a tool (and says so every step)."""

    name = "looper"

    def __init__(self) -> None:
        self.calls = 0

    def capabilities(self) -> Capabilities:
        return Capabilities()

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        return None

    async def complete(self, req: ChatRequest) -> ChatResponse:
        return await acollect(self.stream(req), "x", req.model)

    async def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        yield TextDelta(text=f"step {self.calls}")
        cid = f"call_{self.calls}"
        yield ToolCallStart(id=cid, name="again")
        yield ToolCallDelta(id=cid, arguments="{}")
        yield ToolCallEnd(id=cid)
        yield UsageUpdate(usage=Usage(input_tokens=10, output_tokens=2))
        yield Finish(stop_reason=StopReason.TOOL_USE)


async def test_max_steps_ends_cleanly() -> None:
    ran = 0

    def again() -> str:
        nonlocal ran
        ran += 1
        return "again"

    model = LoopingModel()
    assert isinstance(model, LlmProvider)
    agent = SingleAgent(model, [again], max_steps=3)
    events = await run(agent, user("go"))
    assert isinstance(events[-1], Finish)
    assert events[-1].stop_reason == StopReason.MAX_STEPS
    assert model.calls == 3 and ran == 2  # the last step's call is not run: nobody reads it
    assert text_of(events) == "step 1\n\nstep 2\n\nstep 3"
    assert [e for e in events if isinstance(e, UsageUpdate)][-1].usage == \
        Usage(input_tokens=30, output_tokens=6)
    resp = await SingleAgent(LoopingModel(), [again], max_steps=2).complete(user("go"))
    assert resp.stop_reason == StopReason.MAX_STEPS and resp.text() == "step 1\n\nstep 2"
    assert resp.usage == Usage(input_tokens=20, output_tokens=4)


async def test_echo_with_one_step_stops_at_max_steps() -> None:
    agent = SingleAgent(EchoProvider(), [get_weather], max_steps=1)
    events = await run(agent, user('::tool get_weather {"city": "Oslo"}'))
    assert not any(isinstance(e, AgentToolCall) for e in events)
    assert isinstance(events[-1], Finish) and events[-1].stop_reason == StopReason.MAX_STEPS


async def test_system_prompt_and_tools_reach_the_model() -> None:
    seen: list[ChatRequest] = []

    class Spy(EchoProvider):
        async def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
            seen.append(req)
            async for ev in super().stream(req):
                yield ev

    agent = SingleAgent(Spy(), [get_weather], system="You are careful.")
    req = user("hi")
    req.system = [Text(text="Client rules.")]
    req.tools = [Tool(name="get_weather", description="client's own"),
                 Tool(name="ask_user", description="client tool")]
    await run(agent, req)
    (r,) = seen
    assert [t.text for t in r.system or []] == ["You are careful.", "Client rules."]
    # the agent's get_weather shadows the client's; the client's other tools are added
    assert [(t.name, t.description) for t in r.tools or []] == \
        [("get_weather", "Weather now."), ("ask_user", "client tool")]


async def test_an_error_before_the_first_event_is_raised() -> None:
    agent = SingleAgent(EchoProvider(), [get_weather])
    with pytest.raises(Exception) as info:
        await run(agent, user("::error rate_limited slow down"))
    assert info.value.kind == "rate_limited"  # type: ignore[attr-defined]


# --- client tools --------------------------------------------------------------------------


CLIENT_TOOLS = [Tool(name="ask_user", description="Ask the human",
                     parameters={"type": "object", "properties": {"q": {"type": "string"}}})]


async def test_a_client_tool_call_ends_the_turn_and_the_result_continues_it() -> None:
    agent = SingleAgent(EchoProvider(), [get_weather])
    req = user('::tool get_weather {"city": "Rome"}\n::tool ask_user {"q": "units?"}')
    req.tools = CLIENT_TOOLS
    events = await run(agent, req)
    # the agent ran its own tool, then handed the client its call
    (own,) = [e for e in events if isinstance(e, AgentToolResult)]
    assert own.result == "18C in Rome"
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["ask_user"]
    assert isinstance(events[-1], Finish) and events[-1].stop_reason == StopReason.TOOL_USE
    resp = await acollect(_replay(events), "r", "agent")
    (client_call,) = resp.tool_calls()
    assert client_call.arguments == '{"q": "units?"}'

    # The client answers its call. It only knows what it saw; the agent splices its own
    # call and result back in, so the model sees both results.
    follow = ChatRequest(model="agent", tools=CLIENT_TOOLS, messages=[
        *req.messages,
        Message(role="assistant", content=resp.content),
        Message(role="tool", content=[ToolResult(call_id=client_call.id,
                                                 content=[Text(text="metric")])]),
    ])
    events2 = await run(agent, follow)
    text = text_of(events2)
    assert f"Tool {own.id} result: 18C in Rome" in text
    assert f"Tool {client_call.id} result: metric" in text
    assert isinstance(events2[-1], Finish) and events2[-1].stop_reason == StopReason.END_TURN


async def test_without_the_stored_turn_the_client_history_still_works() -> None:
    agent = SingleAgent(EchoProvider(), [get_weather])
    follow = ChatRequest(model="agent", tools=CLIENT_TOOLS, messages=[
        Message(role="user", content=[Text(text="::tool ask_user {}")]),
        Message(role="assistant", content=[ToolCall(id="call_unknown", name="ask_user",
                                                    arguments="{}")]),
        Message(role="tool", content=[ToolResult(call_id="call_unknown",
                                                 content=[Text(text="yes")])]),
    ])
    assert text_of(await run(agent, follow)) == "Tool call_unknown result: yes"


async def _replay(events: list[StreamEvent]) -> AsyncIterator[StreamEvent]:
    for e in events:
        yield e


# --- cancellation ----------------------------------------------------------------------------


async def test_closing_the_stream_mid_tool_cancels_the_tools() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    before = asyncio.all_tasks()
    agent = SingleAgent(EchoProvider(), [forever])
    stream = agent.stream(user("::tool forever {}\n::tool forever {}"))
    async for ev in stream:
        if isinstance(ev, AgentToolCall):
            break
    await started.wait()
    t0 = time.monotonic()
    await stream.aclose()
    assert cancelled.is_set()
    assert time.monotonic() - t0 < 0.1
    assert asyncio.all_tasks() == before, "a tool task is still running"


async def test_cancelling_the_consumer_cancels_the_model_stream() -> None:
    closed = asyncio.Event()

    class Slow(EchoProvider):
        async def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
            try:
                async for ev in super().stream(req):
                    yield ev
            finally:
                closed.set()

    agent = SingleAgent(Slow(), [get_weather])
    got: list[Any] = []

    async def consume() -> None:
        async for ev in agent.stream(user("::delay 50\none two three four five six")):
            got.append(ev)

    task = asyncio.ensure_future(consume())
    while not any(isinstance(e, TextDelta) for e in got):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed.is_set()
