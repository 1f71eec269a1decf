"""The HTTP-generic provider against hand-written JSON APIs on loopback: the request
template as the upstream received it, text/usage/finish extraction by JSON pointer, NDJSON
and SSE streams, tool calls, images, every failure class, a cut stream, malformed frames,
and config validation with paths."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dragoman.core import (
    ChatRequest,
    ErrorKind,
    Finish,
    Image,
    InvalidRequest,
    Message,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolCallStart,
    ToolResult,
    UsageUpdate,
)
from dragoman.providers import registry
from dragoman.providers.http_generic import HttpGeneric
from dragoman.providers.registry import OptionsError, ProviderSpec
from tests.fakes.generic_upstream import (
    AFTER_TOOLS,
    CHUNKS,
    KEY,
    TEXT,
    USAGE_IN,
    USAGE_OUT,
    GenericUpstream,
)


@pytest.fixture(scope="module")
def up() -> Iterator[GenericUpstream]:
    with GenericUpstream() as fake:
        yield fake


def generate_spec(up: GenericUpstream, **over: Any) -> ProviderSpec:
    """An Ollama-generate-like endpoint: NDJSON stream with a done flag."""
    options: dict[str, Any] = {
        "path": "/api/generate",
        "template": {"model": "{{model}}", "prompt": "{{prompt}}", "system": "{{system}}",
                     "stream": "{{stream}}",
                     "options": {"num_predict": "{{max_tokens:-128}}",
                                 "temperature": "{{temperature}}", "stop": "{{stop}}"}},
        "response": {"text": "/response", "finish_reason": "/done_reason",
                     "input_tokens": "/prompt_eval_count", "output_tokens": "/eval_count"},
        "stream": {"format": "ndjson", "delta": "/response", "done": "/done",
                   "finish_reason": "/done_reason", "input_tokens": "/prompt_eval_count",
                   "output_tokens": "/eval_count"},
        **over}
    return ProviderSpec(name="gen", provider="http_generic", model="llama-x",
                        base_url=up.url, api_key=KEY, options=options)


def completions_spec(up: GenericUpstream) -> ProviderSpec:
    """A legacy-completions-like endpoint: OpenAI-style SSE with [DONE]."""
    return ProviderSpec(name="cmpl", provider="http_generic", model="cmpl-model",
                        api_key=KEY, options={
        "url": up.url + "/v1/completions",
        "template": {"model": "{{model}}", "prompt": "{{prompt}}", "max_tokens": "{{max_tokens}}",
                     "stream": "{{stream}}"},
        "response": {"text": "/choices/0/text", "finish_reason": "/choices/0/finish_reason",
                     "input_tokens": "/usage/prompt_tokens",
                     "output_tokens": "/usage/completion_tokens"},
        "stream": {"format": "openai_sse", "delta": "/choices/0/text",
                   "finish_reason": "/choices/0/finish_reason",
                   "input_tokens": "/usage/prompt_tokens",
                   "output_tokens": "/usage/completion_tokens"}})


def acme_spec(up: GenericUpstream) -> ProviderSpec:
    return ProviderSpec(name="acme", provider="http_generic", model="acme-1", api_key=KEY,
                        base_url=up.url, options={
        "path": "/acme/chat",
        "template": {"messages": "{{messages_with_system}}", "tools": "{{tools}}",
                     "images": "{{images}}"},
        "response": {"text": "/reply/text", "tool_calls": "/reply/calls",
                     "finish_reason": "/stop", "input_tokens": "/tokens/in",
                     "output_tokens": "/tokens/out"}})


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(model="client-model", messages=[
        Message(role="user", content=[Text(text=text)])], **kw)


def build(spec: ProviderSpec) -> HttpGeneric:
    p = registry.build(spec)
    assert isinstance(p, HttpGeneric)
    return p


async def events(p: HttpGeneric, req: ChatRequest) -> list[StreamEvent]:
    return [ev async for ev in p.stream(req)]


async def test_complete_renders_the_template_and_reads_pointers(up: GenericUpstream) -> None:
    p = build(generate_spec(up))
    req = ChatRequest(model="client-model", system=[Text(text="Be terse.")], messages=[
        Message(role="user", content=[Text(text="hi there")])], temperature=0.3, stop=["X"])
    resp = await p.complete(req)
    assert resp.text() == TEXT
    assert resp.stop_reason == StopReason.MAX_TOKENS  # done_reason "length"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (USAGE_IN, USAGE_OUT)
    seen = up.last("/api/generate")
    assert seen.body == {"model": "llama-x", "prompt": "hi there", "system": "Be terse.",
                         "stream": False,
                         "options": {"num_predict": 128, "temperature": 0.3, "stop": ["X"]}}
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.headers["Content-Type"] == "application/json"
    await p.aclose()


async def test_ndjson_stream(up: GenericUpstream) -> None:
    p = build(generate_spec(up))
    evs = await events(p, ask("stream please", max_tokens=9))
    assert [e.text for e in evs if isinstance(e, TextDelta)] == list(CHUNKS)
    usage = [e for e in evs if isinstance(e, UsageUpdate)]
    assert len(usage) == 1 and usage[0].usage.output_tokens == USAGE_OUT
    assert evs[-1] == Finish(stop_reason=StopReason.MAX_TOKENS)
    assert up.last("/api/generate").body["stream"] is True
    assert up.last("/api/generate").body["options"]["num_predict"] == 9
    await p.aclose()


async def test_sse_stream_and_whole(up: GenericUpstream) -> None:
    p = build(completions_spec(up))
    evs = await events(p, ask("sse"))
    assert "".join(e.text for e in evs if isinstance(e, TextDelta)) == TEXT
    assert isinstance(evs[-2], UsageUpdate) and evs[-2].usage.input_tokens == USAGE_IN
    assert evs[-1] == Finish(stop_reason=StopReason.END_TURN)
    resp = await p.complete(ask("whole"))
    assert resp.text() == TEXT and resp.usage.output_tokens == USAGE_OUT
    # absent max_tokens left out of the body entirely
    assert "max_tokens" not in up.last("/v1/completions").body
    await p.aclose()


@pytest.mark.parametrize(("status", "kind", "http"), [
    (400, ErrorKind.INVALID_REQUEST, 400), (401, ErrorKind.UPSTREAM, 502),
    (403, ErrorKind.UPSTREAM, 502), (404, ErrorKind.NOT_FOUND, 404),
    (413, ErrorKind.REQUEST_TOO_LARGE, 413), (429, ErrorKind.RATE_LIMITED, 429),
    (500, ErrorKind.UPSTREAM, 502), (503, ErrorKind.OVERLOADED, 503),
    (529, ErrorKind.OVERLOADED, 503)])
@pytest.mark.parametrize("stream", [False, True])
async def test_http_failures_are_classified(up: GenericUpstream, status: int, kind: ErrorKind,
                                            http: int, stream: bool) -> None:
    p = build(generate_spec(up))
    req = ask(f"scenario:error{status}")
    with pytest.raises(Exception) as ei:
        if stream:
            await events(p, req)
        else:
            await p.complete(req)
    err = ei.value
    assert getattr(err, "kind", None) == kind, repr(err)
    assert err.status == http  # type: ignore[attr-defined]
    assert KEY not in err.message  # type: ignore[attr-defined]
    if status == 429:
        assert err.retry_after == 7  # type: ignore[attr-defined]
    if status in (401, 403):
        assert "credentials" in err.message  # type: ignore[attr-defined]
    elif status == 413:
        assert "413" in err.message  # type: ignore[attr-defined]
    else:
        assert f"failure {status} here" in err.message  # type: ignore[attr-defined]
    await p.aclose()


async def test_upstream_key_echoed_in_an_error_is_scrubbed(up: GenericUpstream) -> None:
    p = build(generate_spec(up))
    with pytest.raises(InvalidRequest) as ei:
        await p.complete(ask("scenario:error400"))
    assert "with key ***" in ei.value.message and KEY not in ei.value.message
    await p.aclose()


@pytest.mark.parametrize("spec", [generate_spec, completions_spec])
async def test_cut_stream_ends_with_a_transport_error(up: GenericUpstream, spec: Any) -> None:
    p = build(spec(up))
    evs = await events(p, ask("scenario:cut"))
    assert isinstance(evs[0], TextDelta)
    assert isinstance(evs[-1], StreamError)
    assert evs[-1].error.kind == ErrorKind.TRANSPORT
    assert not any(isinstance(e, Finish) for e in evs)
    await p.aclose()


async def test_cut_before_answering(up: GenericUpstream) -> None:
    p = build(generate_spec(up))
    with pytest.raises(Exception) as ei:
        await p.complete(ask("scenario:cut"))
    assert getattr(ei.value, "kind", None) == ErrorKind.TRANSPORT
    await p.aclose()


@pytest.mark.parametrize("spec", [generate_spec, completions_spec])
async def test_malformed_frame(up: GenericUpstream, spec: Any) -> None:
    p = build(spec(up))
    evs = await events(p, ask("scenario:malformed"))
    assert isinstance(evs[-1], StreamError)
    assert evs[-1].error.kind == ErrorKind.UPSTREAM and "not JSON" in evs[-1].error.message
    await p.aclose()


async def test_malformed_whole_answer(up: GenericUpstream) -> None:
    p = build(generate_spec(up))
    with pytest.raises(Exception, match="not valid JSON"):
        await p.complete(ask("scenario:malformed"))
    await p.aclose()


async def test_in_band_stream_error(up: GenericUpstream) -> None:
    p = build(generate_spec(up))
    evs = await events(p, ask("scenario:inband"))
    assert [e.text for e in evs if isinstance(e, TextDelta)] == [CHUNKS[0]]
    assert isinstance(evs[-1], StreamError)
    assert evs[-1].error.message == "model crashed mid-way"
    await p.aclose()


async def test_tool_calls_round_trip_and_images(up: GenericUpstream) -> None:
    p = build(acme_spec(up))
    caps = p.capabilities()
    assert caps.tools and caps.vision and not caps.streaming and not caps.json_mode
    tools = [Tool(name="get_weather", parameters={"type": "object"}),
             Tool(name="get_time", parameters={"type": "object"})]
    req = ChatRequest(model="m", system=[Text(text="sys")], tools=tools, messages=[
        Message(role="user", content=[Text(text="scenario:tools weather?")])])
    resp = await p.complete(req)
    assert resp.stop_reason == StopReason.TOOL_USE
    calls = resp.tool_calls()
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("c-1", "get_weather", '{"city": "Paris"}'), ("c-2", "get_time", "{}")]
    sent = up.last("/acme/chat").body
    assert sent["messages"][0] == {"role": "system", "content": "sys"}
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "get_time"]
    # turn 2: results go back as tool messages
    req.messages += [Message(role="assistant", content=resp.content),
                     Message(role="tool", content=[
                         ToolResult(call_id="c-1", content=[Text(text="18C")]),
                         ToolResult(call_id="c-2", content=[Text(text="12:00")])])]
    resp2 = await p.complete(req)
    assert resp2.text() == AFTER_TOOLS and resp2.stop_reason == StopReason.END_TURN
    sent = up.last("/acme/chat").body
    assert sent["messages"][-2:] == [{"role": "tool", "tool_call_id": "c-1", "content": "18C"},
                                    {"role": "tool", "tool_call_id": "c-2", "content": "12:00"}]
    assert sent["messages"][2]["tool_calls"][0]["id"] == "c-1"
    # a streaming call with tools is answered whole and replayed
    evs = await events(p, ChatRequest(model="m", tools=tools, stream=True, messages=[
        Message(role="user", content=[Text(text="scenario:tools again")])]))
    assert [e.id for e in evs if isinstance(e, ToolCallStart)] == ["c-1", "c-2"]
    # images reach the {{images}} placeholder
    img = ChatRequest(model="m", messages=[Message(role="user", content=[
        Text(text="what is this"), Image(mime="image/png", data="iVBORw0KGgo="),
        Image(url="https://example.com/x.png")])])
    assert (await p.complete(img)).text() == f"{TEXT} (2 images)"
    assert up.last("/acme/chat").body["images"] == ["data:image/png;base64,iVBORw0KGgo=",
                                                    "https://example.com/x.png"]
    await p.aclose()


async def test_missing_text_is_an_upstream_error(up: GenericUpstream) -> None:
    spec = generate_spec(up)
    spec.options["response"] = {"text": "/nope"}
    p = build(spec)
    with pytest.raises(Exception, match="no text at '/nope'"):
        await p.complete(ask("hi"))
    await p.aclose()


def test_capabilities_follow_the_config(up: GenericUpstream) -> None:
    caps = build(generate_spec(up)).capabilities()
    assert caps.streaming and not caps.tools and not caps.vision and not caps.json_mode
    spec = generate_spec(up)
    del spec.options["stream"]
    assert not build(spec).capabilities().streaming


@pytest.mark.parametrize(("options", "message"), [
    ({"template": {"p": "{{promt}}"}}, r"unknown placeholder \{\{promt\}\}.*\$\.template\.p"),
    ({"response": {"text": "no-slash"}}, r"must be empty or start with '/'.*\$\.response\.text"),
    ({"stream": {"format": "sse", "delta": "/x"}}, r"format"),
    ({"stream": {"format": "ndjson", "delta": "/x", "dleta": 1}}, r"dleta"),
    ({"wat": 1}, r"wat"),
])
def test_config_errors_name_their_path(up: GenericUpstream, options: dict[str, Any],
                                       message: str) -> None:
    spec = generate_spec(up, **options)
    with pytest.raises(OptionsError, match=message):
        registry.build(spec)


def test_url_or_base_url_is_required() -> None:
    spec = ProviderSpec(name="x", provider="http_generic", options={
        "template": {}, "response": {"text": "/t"}})
    with pytest.raises(OptionsError, match="needs `url`"):
        registry.build(spec)


def test_repr_has_no_secret(up: GenericUpstream) -> None:
    p = build(generate_spec(up))
    assert KEY not in repr(p)
