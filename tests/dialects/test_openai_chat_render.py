"""OpenAI Chat dialect, ingress rendering: responses, streams and errors as the SDK types
declare them, and the stream grammar the clients rely on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from dragoman.core import (
    AgentToolCall,
    AgentToolResult,
    AuthenticationFailed,
    BudgetExhausted,
    ChatRequest,
    ChatResponse,
    CircuitOpen,
    ContextLengthExceeded,
    DragomanError,
    Finish,
    InvalidRequest,
    NotFound,
    Opaque,
    OpaqueItem,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RedactedThinking,
    RedactedThinkingBlock,
    StepStart,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ThinkingEnd,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    TransportError,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    UsageUpdate,
)
from dragoman.dialects.contract import RenderContext
from dragoman.dialects.openai_chat import StreamRenderer, render_error, render_response


def ctx(include_usage: bool = False) -> RenderContext:
    req = ChatRequest(model="gpt-test", stream=True, include_usage=include_usage)
    return RenderContext(id="chatcmpl-abc123", model="gpt-test", created=1741569952, request=req)


USAGE = Usage(input_tokens=82, output_tokens=18, cached_tokens=10, reasoning_tokens=4)


# --- non-stream ---------------------------------------------------------------------------


def test_text_response_matches_sdk_and_wire() -> None:
    resp = ChatResponse(
        id="x", model="up", content=[Text(text="Hello"), Text(text=" world")], usage=USAGE
    )
    body = json.loads(render_response(resp, ctx()))
    cc = ChatCompletion.model_validate(body)
    assert cc.id == "chatcmpl-abc123" and cc.model == "gpt-test" and cc.created == 1741569952
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice == {
        "index": 0,
        "logprobs": None,
        "finish_reason": "stop",
        "message": {
            "role": "assistant",
            "content": "Hello world",
            "refusal": None,
            "annotations": [],
        },
    }
    assert body["usage"] == {
        "prompt_tokens": 82,
        "completion_tokens": 18,
        "total_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 10, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 4,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def test_tool_call_response_has_null_content() -> None:
    resp = ChatResponse(
        id="x",
        model="m",
        stop_reason=StopReason.TOOL_USE,
        content=[
            ToolCall(id="call_a1", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCall(id="call_b2", name="apply_patch", arguments="*** raw", kind="custom"),
        ],
    )
    body = json.loads(render_response(resp, ctx()))
    cc = ChatCompletion.model_validate(body)
    msg = body["choices"][0]["message"]
    assert msg["content"] is None
    assert msg["tool_calls"] == [
        {
            "id": "call_a1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "call_b2", "type": "custom", "custom": {"name": "apply_patch", "input": "*** raw"}},
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert cc.choices[0].message.tool_calls is not None
    assert body["usage"]["total_tokens"] == 0  # usage always present


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        (StopReason.END_TURN, "stop"),
        (StopReason.STOP_SEQUENCE, "stop"),
        (StopReason.MAX_TOKENS, "length"),
        (StopReason.MAX_STEPS, "length"),
        (StopReason.CONTENT_FILTER, "content_filter"),
        (StopReason.REFUSAL, "stop"),
        (StopReason.ERROR, "stop"),
    ],
)
def test_finish_reason_mapping(reason: StopReason, finish: str) -> None:
    resp = ChatResponse(id="x", model="m", content=[Text(text="t")], stop_reason=reason)
    body = json.loads(render_response(resp, ctx()))
    ChatCompletion.model_validate(body)
    assert body["choices"][0]["finish_reason"] == finish


def test_end_turn_with_tool_calls_says_tool_calls() -> None:
    resp = ChatResponse(id="x", model="m", content=[ToolCall(id="c", name="f", arguments="{}")])
    assert json.loads(render_response(resp, ctx()))["choices"][0]["finish_reason"] == "tool_calls"


def test_refusal_goes_to_refusal_field() -> None:
    resp = ChatResponse(
        id="x", model="m", content=[Text(text="I can't help.")], stop_reason=StopReason.REFUSAL
    )
    msg = json.loads(render_response(resp, ctx()))["choices"][0]["message"]
    assert msg["content"] is None and msg["refusal"] == "I can't help."


def test_thinking_becomes_reasoning_content_and_opaque_parts_drop() -> None:
    resp = ChatResponse(
        id="x",
        model="m",
        content=[
            Thinking(text="step 1", signature="sig", origin="anthropic"),
            RedactedThinking(data="xx", origin="anthropic"),
            Text(text="answer"),
            Opaque(dialect="anthropic_messages", data={"type": "server_tool_use"}),
        ],
    )
    body = json.loads(render_response(resp, ctx()))
    ChatCompletion.model_validate(body)
    msg = body["choices"][0]["message"]
    assert msg["reasoning_content"] == "step 1"
    assert msg["content"] == "answer"


def test_empty_response_has_empty_string_content() -> None:
    body = json.loads(render_response(ChatResponse(id="x", model="m"), ctx()))
    ChatCompletion.model_validate(body)
    assert body["choices"][0]["message"]["content"] == ""


def test_cache_write_tokens_rendered_when_known() -> None:
    resp = ChatResponse(id="x", model="m", usage=Usage(input_tokens=5, cache_write_tokens=3))
    usage = json.loads(render_response(resp, ctx()))["usage"]
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == 3


# --- stream -------------------------------------------------------------------------------


def frames(raw: bytes) -> list[str]:
    assert raw.endswith(b"\n\n") or raw == b""
    out = []
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        assert frame.startswith("data: ") and "\n" not in frame, frame  # no event: lines
        out.append(frame[len("data: ") :])
    return out


def validate_chunk(data: str) -> dict[str, Any]:
    """Every chunk must satisfy the SDK's ChatCompletionChunk model. The SDK's streamed tool
    call type is still ``Literal["function"]`` (openai-python #2530): custom-tool fragments
    are validated with their ``type`` stripped and their ``custom`` payload checked here."""
    chunk = json.loads(data)
    probe = json.loads(data)
    for choice in probe["choices"]:
        for tc in choice["delta"].get("tool_calls", ()):
            if "custom" in tc:
                assert set(tc["custom"]) <= {"name", "input"}
                assert tc.pop("type", "custom") == "custom"
    ChatCompletionChunk.model_validate(probe)
    return chunk


def run(events: list[StreamEvent], include_usage: bool = False) -> list[str]:
    r = StreamRenderer(ctx(include_usage))
    raw = r.start()
    for ev in events:
        raw += r.feed(ev)
    return frames(raw)


def chunks(events: list[StreamEvent], include_usage: bool = False) -> list[dict[str, Any]]:
    data = run(events, include_usage)
    assert data[-1] == "[DONE]"
    assert "[DONE]" not in data[:-1]
    return [validate_chunk(d) for d in data[:-1]]


TOOL_EVENTS: list[StreamEvent] = [
    TextDelta(text="Checking"),
    ToolCallStart(id="call_a1", name="get_weather"),
    ToolCallDelta(id="call_a1", arguments='{"city":'),
    ToolCallDelta(id="call_a1", arguments='"Paris"}'),
    ToolCallEnd(id="call_a1"),
    ToolCallStart(id="call_b2", name="get_time"),
    ToolCallDelta(id="call_b2", arguments="{}"),
    ToolCallEnd(id="call_b2"),
    UsageUpdate(usage=Usage(input_tokens=82, output_tokens=31)),
    Finish(stop_reason=StopReason.TOOL_USE),
]


def test_stream_grammar_with_usage_matches_protocol_example() -> None:
    cs = chunks(TOOL_EVENTS, include_usage=True)
    for c in cs:
        assert c["id"] == "chatcmpl-abc123" and c["object"] == "chat.completion.chunk"
        assert c["created"] == 1741569952 and c["model"] == "gpt-test"
        assert "usage" in c
    deltas = [c["choices"][0]["delta"] for c in cs[:-1]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all("role" not in d for d in deltas[1:])
    assert deltas[1] == {"content": "Checking"}
    assert deltas[2] == {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_a1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    assert deltas[3] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}
    assert deltas[4] == {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}
    assert (
        deltas[5]["tool_calls"][0]["index"] == 1 and deltas[5]["tool_calls"][0]["id"] == "call_b2"
    )
    assert deltas[6] == {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}
    assert deltas[7] == {}
    finish = [c["choices"][0]["finish_reason"] for c in cs[:-1]]
    assert finish == [None] * 7 + ["tool_calls"]
    assert all(c["usage"] is None for c in cs[:-1])
    last = cs[-1]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 82 and last["usage"]["total_tokens"] == 113


def test_stream_without_include_usage_has_no_usage_key() -> None:
    cs = chunks([TextDelta(text="hi"), UsageUpdate(usage=USAGE), Finish()])
    assert all("usage" not in c for c in cs)
    assert [c["choices"][0]["finish_reason"] for c in cs] == [None, None, "stop"]


def test_include_usage_without_usage_event_still_sends_usage_chunk() -> None:
    cs = chunks([TextDelta(text="hi"), Finish()], include_usage=True)
    assert cs[-1]["choices"] == [] and cs[-1]["usage"]["total_tokens"] == 0


def test_every_tool_delta_has_index_and_id_only_first() -> None:
    cs = chunks(TOOL_EVENTS)
    seen: dict[int, int] = {}
    for c in cs:
        for tc in c["choices"][0]["delta"].get("tool_calls", ()):
            assert isinstance(tc["index"], int)
            n = seen.get(tc["index"], 0)
            assert ("id" in tc) == (n == 0) and ("type" in tc) == (n == 0)
            assert ("name" in tc.get("function", {})) == (n == 0)
            seen[tc["index"]] = n + 1
    assert seen == {0: 3, 1: 2}


def test_custom_tool_calls_stream_as_custom_fragments() -> None:
    cs = chunks(
        [
            ToolCallStart(id="call_p", name="apply_patch", kind="custom"),
            ToolCallDelta(id="call_p", arguments="*** Begin"),
            ToolCallDelta(id="call_p", arguments=" Patch"),
            ToolCallEnd(id="call_p"),
            Finish(stop_reason=StopReason.TOOL_USE),
        ]
    )
    tcs = [c["choices"][0]["delta"]["tool_calls"][0] for c in cs[1:4]]
    assert tcs == [
        {
            "index": 0,
            "id": "call_p",
            "type": "custom",
            "custom": {"name": "apply_patch", "input": ""},
        },
        {"index": 0, "custom": {"input": "*** Begin"}},
        {"index": 0, "custom": {"input": " Patch"}},
    ]


def test_thinking_streams_as_reasoning_content() -> None:
    cs = chunks(
        [
            ThinkingDelta(text="hmm"),
            ThinkingEnd(signature="s", origin="anthropic"),
            RedactedThinkingBlock(data="r"),
            TextDelta(text="ok"),
            Finish(),
        ]
    )
    assert [c["choices"][0]["delta"] for c in cs] == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "hmm"},
        {"content": "ok"},
        {},
    ]


def test_agent_and_silent_events_produce_nothing() -> None:
    r = StreamRenderer(ctx())
    r.start()
    for ev in (
        StepStart(index=1),
        AgentToolCall(id="a", name="n", args={}),
        AgentToolResult(id="a", name="n", result="r"),
        ThinkingEnd(),
        ToolCallEnd(id="x"),
        OpaqueItem(part=Opaque(dialect="x", data={})),
        UsageUpdate(usage=USAGE),
        TextDelta(text=""),
        ToolCallDelta(id="unknown", arguments="x"),
    ):
        assert r.feed(ev) == b""


def test_max_tokens_and_content_filter_finish() -> None:
    assert (
        chunks([TextDelta(text="a"), Finish(stop_reason=StopReason.MAX_STEPS)])[-1]["choices"][0][
            "finish_reason"
        ]
        == "length"
    )
    assert (
        chunks([Finish(stop_reason=StopReason.CONTENT_FILTER)])[-1]["choices"][0]["finish_reason"]
        == "content_filter"
    )


def test_stream_error_mid_stream() -> None:
    data = run(
        [TextDelta(text="partial"), StreamError(error=Overloaded("busy upstream"))],
        include_usage=True,
    )
    assert data[-1] == "[DONE]"
    err = json.loads(data[-2])
    assert err == {
        "error": {"message": "busy upstream", "type": "server_error", "param": None, "code": None}
    }
    validate_chunk(data[1])


def test_nothing_after_terminal_event() -> None:
    r = StreamRenderer(ctx())
    r.start()
    assert r.feed(Finish()).endswith(b"data: [DONE]\n\n")
    assert r.feed(TextDelta(text="late")) == b""
    assert r.feed(Finish()) == b""
    assert r.feed(StreamError(error=UpstreamError("x"))) == b""


def test_feed_without_start_still_opens_with_role() -> None:
    r = StreamRenderer(ctx())
    data = frames(r.feed(TextDelta(text="a")))
    assert json.loads(data[0])["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert r.start() == b""


def test_context_without_request_means_no_usage() -> None:
    r = StreamRenderer(RenderContext(id="chatcmpl-1", model="m", created=0))
    raw = r.start() + r.feed(Finish())
    assert b'"usage"' not in raw


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "status", "typ", "code"),
    [
        (InvalidRequest("bad", param="messages"), 400, "invalid_request_error", None),
        (ContextLengthExceeded("long"), 400, "invalid_request_error", "context_length_exceeded"),
        (AuthenticationFailed("who"), 401, "invalid_request_error", "invalid_api_key"),
        (PermissionDenied("no"), 403, "permission_error", None),
        (NotFound("ghost"), 404, "invalid_request_error", None),
        (RateLimited("slow", retry_after=3), 429, "rate_limit_error", "rate_limit_exceeded"),
        (BudgetExhausted("spent"), 429, "insufficient_quota", "insufficient_quota"),
        (Overloaded("busy"), 503, "server_error", None),
        (CircuitOpen("open"), 503, "server_error", None),
        (UpstreamError("up"), 502, "server_error", None),
        (TransportError("conn"), 502, "server_error", None),
        (UpstreamTimeout("slow"), 504, "server_error", "timeout"),
        (
            InvalidRequest("teapot", status=418, code="teapot"),
            418,
            "invalid_request_error",
            "teapot",
        ),
    ],
)
def test_render_error(err: DragomanError, status: int, typ: str, code: str | None) -> None:
    got_status, body = render_error(err)
    assert got_status == status
    payload = json.loads(body)
    assert payload == {
        "error": {"message": err.message, "type": typ, "param": err.param, "code": code}
    }


def test_sdk_stream_accumulator_rebuilds_the_completion() -> None:
    """The openai SDK's own ``chat.completions.stream()`` state machine, fed our chunks."""
    from openai.lib.streaming.chat import ChatCompletionStreamState

    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    kinds = []
    for data in run(TOOL_EVENTS, include_usage=True)[:-1]:
        for ev in state.handle_chunk(ChatCompletionChunk.model_validate(json.loads(data))):
            kinds.append(ev.type)
    final = state.get_final_completion()
    msg = final.choices[0].message
    assert msg.content == "Checking"
    assert msg.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in msg.tool_calls] == [
        ("call_a1", "get_weather", '{"city":"Paris"}'),
        ("call_b2", "get_time", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.total_tokens == 113
    assert "tool_calls.function.arguments.done" in kinds and "content.done" in kinds
