"""Anthropic Messages dialect: rendering responses, streams and errors for clients."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types as at
import pytest

from dragoman.core import (
    AgentToolCall,
    AgentToolResult,
    BudgetExhausted,
    ChatResponse,
    CircuitOpen,
    Conflict,
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
    RequestTooLarge,
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
    events_of,
)
from dragoman.core.errors import AuthenticationFailed
from dragoman.dialects.anthropic_messages import (
    DIALECT,
    StreamRenderer,
    render_count_tokens,
    render_error,
    render_response,
)
from dragoman.dialects.contract import RenderContext

from .anthropic_sse import split_frames, validate_stream

CTX = RenderContext(id="msg_0123456789abcdef01234567", model="claude-sonnet-4-5", created=0)
SERVER_TOOL = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
               "input": {"query": "weather"}}


def full_response(**over: Any) -> ChatResponse:
    resp = ChatResponse(
        id="x", model="upstream-model",
        content=[
            Thinking(text="The user wants…", signature="EqQBsig", origin="anthropic"),
            RedactedThinking(data="EmwKAhgB", origin="anthropic"),
            Text(text="Let me check."),
            Opaque(dialect="anthropic_messages", data=SERVER_TOOL),
            ToolCall(id="toolu_01A", name="get_weather", arguments='{"city":"Paris"}'),
        ],
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=2600, output_tokens=96, cached_tokens=2048,
                    cache_write_tokens=40, reasoning_tokens=30),
    )
    for k, v in over.items():
        setattr(resp, k, v)
    return resp


def test_render_response_shape_and_sdk_validation() -> None:
    body = json.loads(render_response(full_response(), CTX))
    msg = at.Message.model_validate(body)
    assert body["id"] == CTX.id and body["model"] == CTX.model
    assert body["type"] == "message" and body["role"] == "assistant"
    assert [b["type"] for b in body["content"]] == [
        "thinking", "redacted_thinking", "text", "server_tool_use", "tool_use"]
    assert body["content"][0]["signature"] == "EqQBsig"
    assert body["content"][4]["input"] == {"city": "Paris"}
    assert msg.stop_reason == "tool_use" and body["stop_sequence"] is None
    assert body["usage"] == {"input_tokens": 512, "output_tokens": 96,
                             "cache_creation_input_tokens": 40,
                             "cache_read_input_tokens": 2048,
                             "output_tokens_details": {"thinking_tokens": 30}}


def test_render_response_minimal_always_has_usage() -> None:
    body = json.loads(render_response(ChatResponse(id="x", model="m"), CTX))
    at.Message.model_validate(body)
    assert body["content"] == [] and body["stop_reason"] == "end_turn"
    assert body["usage"] == {"input_tokens": 0, "output_tokens": 0,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def test_usage_input_never_negative() -> None:
    body = json.loads(render_response(ChatResponse(
        id="x", model="m", usage=Usage(input_tokens=10, cached_tokens=30)), CTX))
    assert body["usage"]["input_tokens"] == 0


def test_foreign_thinking_is_shown_without_signature() -> None:
    body = json.loads(render_response(ChatResponse(id="x", model="m", content=[
        Thinking(text="summary", signature="gAAAA-encrypted", origin="openai", id="rs_1"),
        Thinking(text="", signature="gAAAA-only", origin="openai"),
        RedactedThinking(data="zzz", origin="openai"),
        Opaque(dialect="openai_responses", data={"type": "web_search_call"}),
        Text(text="hi"),
    ]), CTX))
    at.Message.model_validate(body)
    assert body["content"] == [
        {"type": "thinking", "thinking": "summary", "signature": ""},
        {"type": "text", "text": "hi", "citations": None},
    ]


def test_custom_and_invalid_tool_arguments_stay_objects() -> None:
    body = json.loads(render_response(ChatResponse(id="x", model="m", content=[
        ToolCall(id="call_1", name="apply_patch", arguments="*** Begin Patch", kind="custom"),
        ToolCall(id="call_2", name="f", arguments='{"a": 1'),
        ToolCall(id="call_3", name="f", arguments="[1,2]"),
        ToolCall(id="call_4", name="f", arguments=""),
    ], stop_reason=StopReason.TOOL_USE), CTX))
    at.Message.model_validate(body)
    assert [b["input"] for b in body["content"]] == [
        {"input": "*** Begin Patch"}, {"input": '{"a": 1'}, {"input": "[1,2]"}, {}]


@pytest.mark.parametrize(("reason", "seq", "wire", "wire_seq"), [
    (StopReason.END_TURN, None, "end_turn", None),
    (StopReason.MAX_TOKENS, None, "max_tokens", None),
    (StopReason.MAX_STEPS, None, "max_tokens", None),
    (StopReason.TOOL_USE, None, "tool_use", None),
    (StopReason.STOP_SEQUENCE, "END", "stop_sequence", "END"),
    (StopReason.STOP_SEQUENCE, None, "end_turn", None),
    (StopReason.CONTENT_FILTER, None, "refusal", None),
    (StopReason.REFUSAL, None, "refusal", None),
    (StopReason.ERROR, None, "end_turn", None),
])
def test_stop_reason_mapping(reason: StopReason, seq: str | None, wire: str,
                             wire_seq: str | None) -> None:
    body = json.loads(render_response(ChatResponse(id="x", model="m", stop_reason=reason,
                                                   stop_sequence=seq), CTX))
    assert (body["stop_reason"], body["stop_sequence"]) == (wire, wire_seq)
    r = StreamRenderer(CTX)
    frames = split_frames(r.start() + r.feed(Finish(stop_reason=reason, stop_sequence=seq)))
    delta = json.loads(frames[-2][1])["delta"]
    assert (delta["stop_reason"], delta["stop_sequence"]) == (wire, wire_seq)


# --- stream -------------------------------------------------------------------------------------


def run(events: list[StreamEvent], ctx: RenderContext = CTX) -> bytes:
    r = StreamRenderer(ctx)
    out = r.start()
    for ev in events:
        out += r.feed(ev)
    return out


def test_stream_grammar_matches_the_protocol_example() -> None:
    events: list[StreamEvent] = [
        UsageUpdate(usage=Usage(input_tokens=472)),
        ThinkingDelta(text="Need the weather…"),
        ThinkingEnd(signature="EqQBCkYIBx", origin="anthropic"),
        TextDelta(text="Let me check."),
        ToolCallStart(id="toolu_01A", name="get_weather"),
        ToolCallDelta(id="toolu_01A", arguments='{"city": "Pa'),
        ToolCallDelta(id="toolu_01A", arguments='ris"}'),
        ToolCallEnd(id="toolu_01A"),
        UsageUpdate(usage=Usage(input_tokens=472, output_tokens=89)),
        Finish(stop_reason=StopReason.TOOL_USE),
    ]
    raw = run(events)
    payloads, msg = validate_stream(raw)
    assert [(p["type"], p.get("index"), (p.get("delta") or p.get("content_block") or {}).get(
        "type")) for p in payloads] == [
        ("message_start", None, None),
        ("ping", None, None),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert payloads[0]["message"]["id"] == CTX.id
    assert payloads[0]["message"]["content"] == []
    assert payloads[9]["content_block"] == {"type": "tool_use", "id": "toolu_01A",
                                            "name": "get_weather", "input": {}}
    assert payloads[-2]["usage"] == {"input_tokens": 472, "output_tokens": 89,
                                     "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 0}
    assert msg is not None
    assert msg.stop_reason == "tool_use"
    assert msg.content[0].type == "thinking" and msg.content[0].signature == "EqQBCkYIBx"
    assert msg.content[2].type == "tool_use" and msg.content[2].input == {"city": "Paris"}
    assert msg.usage.input_tokens == 472 and msg.usage.output_tokens == 89


def test_stream_equals_non_stream_for_the_same_response() -> None:
    resp = full_response()
    _, msg = validate_stream(run(events_of(resp)))
    body = json.loads(render_response(resp, CTX))
    assert msg is not None
    streamed: dict[str, Any] = dict(msg.to_dict())
    for b in body["content"]:
        b.pop("citations", None)
    for b in streamed["content"]:
        b.pop("citations", None)
    assert streamed["content"] == body["content"]
    assert streamed["usage"] == body["usage"]
    assert streamed["stop_reason"] == body["stop_reason"]


def test_every_event_opens_blocks_in_order_one_at_a_time() -> None:
    events: list[StreamEvent] = [
        TextDelta(text="a"), ToolCallStart(id="t1", name="f"), ToolCallDelta(id="t1",
                                                                            arguments="{}"),
        ToolCallStart(id="t2", name="g"),  # implicitly ends t1
        ToolCallDelta(id="t1", arguments="late"),  # t1 is closed: dropped
        TextDelta(text="b"), RedactedThinkingBlock(data="R", origin="anthropic"),
        OpaqueItem(part=Opaque(dialect="anthropic_messages", data=SERVER_TOOL)),
        OpaqueItem(part=Opaque(dialect="openai_responses", data={"type": "x"})),
        ThinkingEnd(signature="sig-only", origin="anthropic"),
        StepStart(index=1), AgentToolCall(id="a", name="b"),
        AgentToolResult(id="a", name="b", result="r"),
        Finish(),
    ]
    payloads, msg = validate_stream(run(events))
    open_index: int | None = None
    next_index = 0
    for p in payloads:
        if p["type"] == "content_block_start":
            assert open_index is None and p["index"] == next_index
            open_index = p["index"]
        elif p["type"] == "content_block_delta":
            assert p["index"] == open_index
        elif p["type"] == "content_block_stop":
            assert p["index"] == open_index
            open_index, next_index = None, next_index + 1
    assert open_index is None
    assert msg is not None
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use", "text",
                                             "redacted_thinking", "server_tool_use",
                                             "thinking"]
    assert msg.content[-1].signature == "sig-only"  # type: ignore[union-attr]


def test_custom_tool_input_streams_as_json_object() -> None:
    raw = run([ToolCallStart(id="call_1", name="apply_patch", kind="custom"),
               ToolCallDelta(id="call_1", arguments='*** Begin "Patch"\n'),
               ToolCallDelta(id="call_1", arguments="\\ end"),
               ToolCallEnd(id="call_1"),
               ToolCallStart(id="call_2", name="apply_patch", kind="custom"),
               Finish(stop_reason=StopReason.TOOL_USE)])
    _, msg = validate_stream(raw)
    assert msg is not None
    assert msg.content[0].input == {"input": '*** Begin "Patch"\n\\ end'}  # type: ignore[union-attr]
    assert msg.content[1].input == {"input": ""}  # type: ignore[union-attr]


def test_foreign_thinking_streams_without_signature() -> None:
    raw = run([ThinkingDelta(text="pondering"),
               ThinkingEnd(signature="gAAAA", origin="openai"),
               ThinkingEnd(signature="gAAAA-empty", origin="openai"),
               RedactedThinkingBlock(data="x", origin="openai"),
               TextDelta(text="answer"), Finish()])
    payloads, msg = validate_stream(raw)
    assert msg is not None
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].signature == ""  # type: ignore[union-attr]
    assert not any(p.get("delta", {}).get("type") == "signature_delta" for p in payloads)


def test_message_start_carries_input_usage_seen_before_start() -> None:
    r = StreamRenderer(CTX)
    assert r.feed(UsageUpdate(usage=Usage(input_tokens=100, cached_tokens=60,
                                          output_tokens=5))) == b""
    start = json.loads(split_frames(r.start())[0][1])
    assert start["message"]["usage"] == {"input_tokens": 40, "output_tokens": 0,
                                         "cache_creation_input_tokens": 0,
                                         "cache_read_input_tokens": 60}
    assert split_frames(r.start())[1] == ("ping", '{"type":"ping"}')


def test_stream_error_is_in_band_and_terminal() -> None:
    r = StreamRenderer(CTX)
    out = r.start() + r.feed(TextDelta(text="par"))
    out += r.feed(StreamError(error=Overloaded("Overloaded")))
    assert r.feed(TextDelta(text="more")) == b"" and r.feed(Finish()) == b""
    frames = split_frames(out)
    assert frames[-1] == ("error", '{"type":"error","error":{"type":"overloaded_error",'
                                   '"message":"Overloaded"}}')
    validate_stream(out)


def test_nothing_after_finish() -> None:
    r = StreamRenderer(CTX)
    r.start()
    assert r.feed(Finish())
    assert r.feed(TextDelta(text="x")) == b"" and r.feed(StreamError(
        error=UpstreamError("x"))) == b""


def test_empty_text_delta_opens_no_delta_frame() -> None:
    payloads, _ = validate_stream(run([TextDelta(text=""), TextDelta(text="x"), Finish()]))
    assert [p["type"] for p in payloads].count("content_block_delta") == 1


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("err", "status", "etype"), [
    (InvalidRequest("bad"), 400, "invalid_request_error"),
    (ContextLengthExceeded("too long"), 400, "invalid_request_error"),
    (AuthenticationFailed("no key"), 401, "authentication_error"),
    (PermissionDenied("no"), 403, "permission_error"),
    (NotFound("no model"), 404, "not_found_error"),
    (Conflict("busy"), 409, "invalid_request_error"),
    (RequestTooLarge("big"), 413, "request_too_large"),
    (RateLimited("slow down", retry_after=3), 429, "rate_limit_error"),
    (BudgetExhausted("broke"), 429, "billing_error"),  # its own type (a 429: SDKs see RateLimitError)
    (Overloaded("Overloaded"), 529, "overloaded_error"),
    (CircuitOpen("open"), 529, "overloaded_error"),
    (UpstreamError("boom"), 502, "api_error"),
    (TransportError("reset"), 502, "api_error"),
    (UpstreamTimeout("slow"), 504, "timeout_error"),
    (InvalidRequest("unprocessable", status=422), 422, "invalid_request_error"),
])
def test_render_error(err: DragomanError, status: int, etype: str) -> None:
    got_status, body = render_error(err)
    assert got_status == status
    data = json.loads(body)
    assert data == {"type": "error", "error": {"type": etype, "message": err.message}}
    if etype != "request_too_large":  # the SDK's union does not list this (real) type
        at.ErrorResponse.model_validate(data)


def test_render_count_tokens_and_dialect_record() -> None:
    assert render_count_tokens(2095) == b'{"input_tokens":2095}'
    assert DIALECT.name == "anthropic_messages" and DIALECT.id_prefix == "msg_"
