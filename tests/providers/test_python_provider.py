"""The Python provider: plain/async callables for complete, async/plain generators for
stream, what is derived when only one is given, and how user-code failures surface."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from dragoman.core import (
    ChatRequest,
    ErrorKind,
    Finish,
    Message,
    RateLimited,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolCallStart,
    UpstreamError,
    UsageUpdate,
)
from dragoman.providers import registry
from dragoman.providers.python import PythonProvider
from dragoman.providers.registry import OptionsError, ProviderSpec

from . import pyfuncs

MOD = "tests.providers.pyfuncs"


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(model="py", messages=[Message(role="user", content=[Text(text=text)])],
                       **kw)


def spec(**options: Any) -> ProviderSpec:
    return ProviderSpec(name="py-model", provider="python", options=options)


async def collect(p: PythonProvider, req: ChatRequest) -> list[StreamEvent]:
    return [e async for e in p.stream(req)]


async def test_plain_callable_from_config() -> None:
    p = registry.build(spec(callable=f"{MOD}:shout"))
    assert isinstance(p, PythonProvider)
    resp = await p.complete(ask("hello there"))
    assert resp.text() == "HELLO THERE" and resp.id
    assert not p.capabilities().streaming  # only complete: the server synthesizes streams
    evs = await collect(p, ask("abc"))  # the provider can still be streamed directly
    assert [type(e) for e in evs] == [TextDelta, UsageUpdate, Finish]


async def test_async_callable_returning_a_response_with_tools() -> None:
    p = PythonProvider(pyfuncs.answer)
    req = ask("weather?", tools=[Tool(name="get_weather")])
    resp = await p.complete(req)
    assert resp.stop_reason == StopReason.TOOL_USE
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls()] == [
        ("call_py1", "get_weather", '{"city":"Paris"}')]
    assert resp.usage.input_tokens == 10 and resp.id


async def test_async_generator_stream() -> None:
    p = registry.build(spec(stream_callable=f"{MOD}:words"))
    assert isinstance(p, PythonProvider) and p.capabilities().streaming
    evs = await collect(p, ask("one two three"))
    assert [e.text for e in evs if isinstance(e, TextDelta)] == ["one ", "two ", "three "]
    assert isinstance(evs[-2], UsageUpdate) and evs[-2].usage.output_tokens == 3
    assert evs[-1] == Finish()  # added: the generator just ended
    # complete() collects the stream when no complete callable is given
    resp = await p.complete(ask("a b"))
    assert resp.text() == "a b " and resp.usage.output_tokens == 2


async def test_stream_with_tool_call_and_explicit_finish() -> None:
    p = PythonProvider(stream=pyfuncs.words)
    evs = await collect(p, ask("go", tools=[Tool(name="get_weather")]))
    assert any(isinstance(e, ToolCallStart) for e in evs)
    assert evs[-1] == Finish(stop_reason=StopReason.TOOL_USE)
    assert not any(isinstance(e, TextDelta) and e.text == "never seen" for e in evs)


async def test_plain_generator_stream() -> None:
    p = PythonProvider(stream=pyfuncs.sync_words)
    evs = await collect(p, ask("x"))
    assert [e.text for e in evs if isinstance(e, TextDelta)] == ["sync ", "stream"]


async def test_user_exception_becomes_a_safe_upstream_error(
        caplog: pytest.LogCaptureFixture) -> None:
    p = PythonProvider(pyfuncs.shout, name="shouter")
    with caplog.at_level(logging.ERROR, "dragoman.providers.python"), \
            pytest.raises(UpstreamError) as ei:
        await p.complete(ask("boom"))
    assert pyfuncs.SECRET not in ei.value.message and "shouter" in ei.value.message
    assert pyfuncs.SECRET in caplog.text  # the operator gets the traceback


async def test_dragoman_errors_pass_through() -> None:
    p = PythonProvider(pyfuncs.shout)
    with pytest.raises(RateLimited) as ei:
        await p.complete(ask("ratelimit"))
    assert ei.value.retry_after == 3


async def test_stream_failures_before_and_after_the_first_event() -> None:
    with pytest.raises(UpstreamError) as ei:
        await collect(PythonProvider(stream=pyfuncs.fails_before_first), ask("x"))
    assert pyfuncs.SECRET not in ei.value.message
    evs = await collect(PythonProvider(stream=pyfuncs.words), ask("ok fail later"))
    assert [e.text for e in evs if isinstance(e, TextDelta)] == ["ok ", "fail "]
    assert isinstance(evs[-1], StreamError) and evs[-1].error.kind == ErrorKind.UPSTREAM
    assert pyfuncs.SECRET not in evs[-1].error.message
    evs = await collect(PythonProvider(stream=pyfuncs.words), ask("x ratelimit"))
    assert isinstance(evs[-1], StreamError) and isinstance(evs[-1].error, RateLimited)


async def test_wrong_return_type() -> None:
    with pytest.raises(UpstreamError, match="wrong type"):
        await PythonProvider(pyfuncs.wrong_type).complete(ask("x"))


@pytest.mark.parametrize(("options", "message"), [
    ({}, "needs `callable`"),
    ({"callable": "nocolon"}, r"package\.module:function.*\$\.callable"),
    ({"callable": "no_such_module_xyz:f"}, r"cannot import module 'no_such_module_xyz'"),
    ({"callable": f"{MOD}:nope"}, r"has no attribute 'nope'"),
    ({"callable": f"{MOD}:not_callable"}, "is not callable"),
    ({"callable": f"{MOD}:shout", "extra": 1}, "extra"),
])
def test_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        registry.build(spec(**options))


def test_needs_a_callable() -> None:
    with pytest.raises(ValueError):
        PythonProvider()
