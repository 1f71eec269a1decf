"""Anthropic Messages dialect: rendering upstream requests, parsing upstream answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import pytest

from dragoman.core import (
    ChatRequest,
    ContextLengthExceeded,
    File,
    Finish,
    HostedTool,
    Image,
    InvalidRequest,
    Message,
    NotFound,
    Opaque,
    OpaqueItem,
    Overloaded,
    RateLimited,
    Reasoning,
    RedactedThinking,
    RedactedThinkingBlock,
    RequestTooLarge,
    ResponseFormat,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ThinkingEnd,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolResult,
    TransportError,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    UsageUpdate,
    collect,
)
from dragoman.dialects.anthropic_messages import (
    StreamParser,
    parse_error,
    parse_request,
    parse_response,
    render_count_tokens_request,
    render_request,
)

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
       "AAAABJRU5ErkJggg==")


def chat(**kw: Any) -> ChatRequest:
    kw.setdefault("model", "claude-sonnet-4-5")
    return ChatRequest(**kw)


# --- render_request -------------------------------------------------------------------------


def test_minimal_request_gets_default_max_tokens() -> None:
    body = render_request(chat(messages=[Message(role="user", content=[Text(text="hi")])]))
    assert body == {"model": "claude-sonnet-4-5", "max_tokens": 4096,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}


def test_openai_style_conversation_translates() -> None:
    req = chat(
        dialect="openai_chat",
        extra={"logprobs": True},
        metadata={"purpose": "x"},
        user="u-1",
        seed=7,
        stop=["END"],
        temperature=0.2,
        max_tokens=1000,
        system=[Text(text="request-level")],
        messages=[
            Message(role="developer", content=[Text(text="be terse")]),
            Message(role="user", content=[
                Text(text="look"),
                Image(url=f"data:image/png;base64,{PNG}", detail="high"),
                Image(url="https://ex.com/a.jpg"),
                Image(data=PNG),
            ]),
            Message(role="assistant", content=[
                Thinking(text="openai summary", signature="gAAAA", origin="openai"),
                RedactedThinking(data="r", origin="openai"),
                Opaque(dialect="openai_responses", data={"type": "web_search_call"}),
                Text(text="calling"),
                ToolCall(id="call_1", name="f", arguments='{"a":1}'),
                ToolCall(id="call_2", name="g", arguments='{"broken'),
                ToolCall(id="call_3", name="apply_patch", arguments="*** patch",
                         kind="custom"),
            ]),
            Message(role="tool", content=[
                ToolResult(call_id="call_1", content=[Text(text="ok")]),
                ToolResult(call_id="call_2", content=[], is_error=True),
                ToolResult(call_id="call_3", content=[Text(text="a"), Text(text="b")]),
            ]),
            Message(role="system", content=[Text(text="mid-conversation note")]),
            Message(role="user", content=[Text(text="thanks")]),
        ],
        tools=[Tool(name="f", description="F", parameters={"type": "object"}, strict=False),
               Tool(name="g", strict=True),
               Tool(name="apply_patch", kind="custom", description="Patch files",
                    format={"type": "grammar", "syntax": "lark", "definition": "start: x"})],
        hosted_tools=[HostedTool(dialect="openai_responses", data={"type": "web_search"})],
        tool_choice=ToolChoice(mode="required"),
        parallel_tool_calls=False,
        response_format=ResponseFormat(type="json_schema", name="out",
                                       schema={"type": "object"}, strict=True),
    )
    body = render_request(req)
    assert body["max_tokens"] == 1000
    assert body["system"] == [{"type": "text", "text": "request-level"},
                              {"type": "text", "text": "be terse"},
                              {"type": "text", "text": "mid-conversation note"}]
    msgs = body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://ex.com/a.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": PNG}},
    ]
    assert msgs[1]["content"] == [
        {"type": "text", "text": "calling"},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {"input": '{"broken'}},
        {"type": "tool_use", "id": "call_3", "name": "apply_patch",
         "input": {"input": "*** patch"}},
    ]
    # tool results first, merged with the following user turn
    assert msgs[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "ok"},
        {"type": "tool_result", "tool_use_id": "call_2", "is_error": True},
        {"type": "tool_result", "tool_use_id": "call_3",
         "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"type": "text", "text": "thanks"},
    ]
    assert body["tools"][0] == {"name": "f", "description": "F",
                                "input_schema": {"type": "object"}}
    assert body["tools"][1] == {"name": "g", "input_schema": {"type": "object",
                                                              "properties": {}},
                                "strict": True}
    custom = body["tools"][2]
    assert custom["input_schema"] == {"type": "object",
                                      "properties": {"input": {"type": "string"}},
                                      "required": ["input"]}
    assert custom["description"].startswith("Patch files") and "start: x" in \
        custom["description"]
    assert len(body["tools"]) == 3  # the foreign hosted tool is dropped
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["output_config"] == {"format": {"type": "json_schema",
                                                "schema": {"type": "object"}}}
    assert body["stop_sequences"] == ["END"] and body["temperature"] == 0.2
    assert body["metadata"] == {"user_id": "u-1"}  # foreign metadata is not forwarded
    assert "logprobs" not in body and "seed" not in body and "stream" not in body


def test_inline_system_keeps_mid_conversation_system_messages() -> None:
    req = parse_request({"model": "m", "max_tokens": 10, "system": "top", "messages": [
        {"role": "user", "content": "hi"}, {"role": "system", "content": "note"}]})
    folded = render_request(req)
    assert folded["system"] == [{"type": "text", "text": "top"},
                                {"type": "text", "text": "note"}]
    assert [m["role"] for m in folded["messages"]] == ["user"]
    inline = render_request(req, inline_system=True)
    assert inline["system"] == [{"type": "text", "text": "top"}]
    assert inline["messages"][1] == {"role": "system",
                                     "content": [{"type": "text", "text": "note"}]}


def test_documents_render_by_source() -> None:
    pdf = base64.b64encode(b"%PDF").decode()
    txt = base64.b64encode("héllo".encode()).decode()
    body = render_request(chat(messages=[Message(role="user", content=[
        File(mime="application/pdf", data=pdf, filename="a.pdf",
             cache_control={"type": "ephemeral"}),
        File(mime="text/plain", data=txt),
        File(url="https://ex.com/a.pdf"),
        File(url=f"data:application/pdf;base64,{pdf}"),
        File(file_id="file_1"),
        File(),
    ])]))
    assert body["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": pdf}, "title": "a.pdf",
         "cache_control": {"type": "ephemeral"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "héllo"}},
        {"type": "document", "source": {"type": "url", "url": "https://ex.com/a.pdf"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": pdf}},
        {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
    ]


def test_anthropic_thinking_replayed_first_and_verbatim() -> None:
    body = render_request(chat(messages=[
        Message(role="user", content=[Text(text="q")]),
        Message(role="assistant", content=[
            Thinking(text="t", signature="sig", origin="anthropic"),
            RedactedThinking(data="R", origin="anthropic"),
            Thinking(text="unsigned"),
            ToolCall(id="toolu_1", name="f", arguments="{}",
                     cache_control={"type": "ephemeral"}),
        ]),
        Message(role="assistant", content=[Thinking(text="only foreign", origin="openai")]),
    ]))
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "t", "signature": "sig"},
        {"type": "redacted_thinking", "data": "R"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {},
         "cache_control": {"type": "ephemeral"}},
    ]
    assert len(body["messages"]) == 2  # an assistant turn left empty is not sent


@pytest.mark.parametrize(("reasoning", "max_tokens", "thinking", "out_max", "effort"), [
    (Reasoning(effort="high"), 64000, {"type": "enabled", "budget_tokens": 24576}, 64000,
     None),
    (Reasoning(effort="high"), 4000, {"type": "enabled", "budget_tokens": 3999}, 4000, None),
    (Reasoning(effort="low"), 1000, None, 1000, None),
    (Reasoning(effort="none"), None, None, 4096, None),
    (Reasoning(effort="medium"), None, {"type": "enabled", "budget_tokens": 8192}, 12288,
     None),
    (Reasoning(effort="xhigh"), None, {"type": "enabled", "budget_tokens": 30976}, 32000,
     None),
    (Reasoning(mode="enabled", budget_tokens=2048), None,
     {"type": "enabled", "budget_tokens": 2048}, 6144, None),
    (Reasoning(mode="disabled", effort="high"), 100, None, 100, None),
    (Reasoning(mode="adaptive"), 100, {"type": "adaptive"}, 100, None),
])
def test_foreign_reasoning_becomes_a_thinking_budget(
    reasoning: Reasoning, max_tokens: int | None, thinking: dict[str, Any] | None,
    out_max: int, effort: str | None,
) -> None:
    body = render_request(chat(dialect="openai_chat", reasoning=reasoning,
                               max_tokens=max_tokens,
                               messages=[Message(role="user", content=[Text(text="q")])]))
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == out_max
    assert body.get("output_config", {}).get("effort") == effort
    if thinking and "budget_tokens" in thinking:
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]


def test_same_dialect_reasoning_is_faithful() -> None:
    req = parse_request({"model": "m", "max_tokens": 3000,
                         "messages": [{"role": "user", "content": "q"}],
                         "thinking": {"type": "enabled", "budget_tokens": 2000,
                                      "display": "omitted"},
                         "output_config": {"effort": "max", "future": 1}})
    body = render_request(req)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2000, "display": "omitted"}
    assert body["output_config"] == {"effort": "max", "future": 1}


def test_extra_only_for_same_dialect_and_never_overrides() -> None:
    base = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "q"}],
            "service_tier": "auto", "metadata": {"user_id": "u", "other": 1}}
    req = parse_request(base)
    req.extra = {**(req.extra or {}), "max_tokens": 99}
    body = render_request(req)
    assert body["service_tier"] == "auto" and body["max_tokens"] == 10
    assert body["metadata"] == {"user_id": "u", "other": 1}
    req.dialect = "openai_chat"
    body = render_request(req)
    assert "service_tier" not in body and body["metadata"] == {"user_id": "u"}


def test_tool_choice_variants() -> None:
    def tc(choice: ToolChoice | None, parallel: bool | None = None) -> Any:
        return render_request(chat(tools=[Tool(name="a"), Tool(name="b")], tool_choice=choice,
                                   parallel_tool_calls=parallel,
                                   messages=[Message(role="user", content=[Text(text="q")])]))

    assert tc(ToolChoice(mode="auto"))["tool_choice"] == {"type": "auto"}
    assert tc(ToolChoice(mode="none"), False)["tool_choice"] == {"type": "none"}
    assert tc(ToolChoice(mode="tool", name="b"))["tool_choice"] == {"type": "tool",
                                                                     "name": "b"}
    assert tc(None, False)["tool_choice"] == {"type": "auto",
                                              "disable_parallel_tool_use": True}
    assert "tool_choice" not in tc(None, True)
    narrowed = tc(ToolChoice(mode="required", allowed=["b"]))
    assert [t["name"] for t in narrowed["tools"]] == ["b"]
    no_tools = render_request(chat(tool_choice=ToolChoice(mode="auto"),
                                   messages=[Message(role="user", content=[Text(text="q")])]))
    assert "tool_choice" not in no_tools


def test_count_tokens_request_keeps_only_counted_fields() -> None:
    req = parse_request({"model": "m", "max_tokens": 10, "stream": True, "temperature": 0.1,
                         "messages": [{"role": "user", "content": "q"}], "system": "s"})
    assert set(render_count_tokens_request(req)) == {"model", "messages", "system"}


# --- parse_response -------------------------------------------------------------------------


def test_parse_response_full() -> None:
    body: dict[str, Any] = {"id": "msg_01XF", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "thinking", "thinking": "The user wants…", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "EmwK"},
                {"type": "text", "text": "Let me check.", "citations": None},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                 "input": {"query": "q"}},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "apply_patch",
                 "input": {"input": "*** patch"}},
                {"type": "future_block", "x": 1},
                "garbage",
            ],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 512, "output_tokens": 96,
                      "cache_creation_input_tokens": 10, "cache_read_input_tokens": 2048,
                      "output_tokens_details": {"thinking_tokens": 50},
                      "service_tier": "standard"}}
    resp = parse_response(body, custom_tools={"apply_patch"})
    assert resp.id == "msg_01XF" and resp.model == "claude-sonnet-4-5-20250929"
    assert resp.content == [
        Thinking(text="The user wants…", signature="EqQB", origin="anthropic"),
        RedactedThinking(data="EmwK", origin="anthropic"),
        Text(text="Let me check."),
        Opaque(dialect="anthropic_messages", data=body["content"][3]),
        ToolCall(id="toolu_01A", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(id="toolu_01B", name="apply_patch", arguments="*** patch", kind="custom"),
        Opaque(dialect="anthropic_messages", data={"type": "future_block", "x": 1}),
    ]
    assert resp.stop_reason is StopReason.TOOL_USE
    assert resp.usage == Usage(input_tokens=2570, output_tokens=96, cached_tokens=2048,
                               cache_write_tokens=10, reasoning_tokens=50)


@pytest.mark.parametrize(("wire", "neutral"), [
    ("end_turn", StopReason.END_TURN), ("max_tokens", StopReason.MAX_TOKENS),
    ("stop_sequence", StopReason.STOP_SEQUENCE), ("tool_use", StopReason.TOOL_USE),
    ("refusal", StopReason.REFUSAL), ("pause_turn", StopReason.END_TURN),
    ("model_context_window_exceeded", StopReason.MAX_TOKENS), (None, StopReason.END_TURN),
    ("brand_new", StopReason.END_TURN),
])
def test_parse_stop_reasons(wire: str | None, neutral: StopReason) -> None:
    resp = parse_response({"id": "m", "content": [], "stop_reason": wire,
                           "stop_sequence": "END" if wire == "stop_sequence" else None})
    assert resp.stop_reason is neutral


@pytest.mark.parametrize("body", [[], "x", {"content": "x"}, {"type": "error",
                                                           "error": {"type": "api_error",
                                                                     "message": "m"}}])
def test_parse_response_rejects_malformed(body: Any) -> None:
    with pytest.raises(UpstreamError):
        parse_response(body)


# --- parse_error ----------------------------------------------------------------------------


def _err(status: int, etype: str, message: str = "msg") -> bytes:
    return json.dumps({"type": "error", "error": {"type": etype, "message": message},
                       "request_id": "req_1"}).encode()


@pytest.mark.parametrize(("status", "body", "cls", "out_status"), [
    (400, _err(400, "invalid_request_error"), InvalidRequest, 400),
    (400, _err(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000"),
     ContextLengthExceeded, 400),
    (401, _err(401, "authentication_error"), UpstreamError, 502),
    (403, _err(403, "permission_error"), UpstreamError, 502),
    (404, _err(404, "not_found_error"), NotFound, 404),
    (413, _err(413, "request_too_large"), RequestTooLarge, 413),
    (422, _err(422, "invalid_request_error"), InvalidRequest, 422),
    (429, _err(429, "rate_limit_error"), RateLimited, 429),
    (500, _err(500, "api_error"), UpstreamError, 502),
    (504, _err(504, "timeout_error"), UpstreamTimeout, 504),
    (529, _err(529, "overloaded_error", "Overloaded"), Overloaded, 503),
    (502, b"<html>Bad Gateway</html>", UpstreamError, 502),
])
def test_parse_error(status: int, body: bytes, cls: type, out_status: int) -> None:
    err = parse_error(status, body)
    assert type(err) is cls
    assert err.status == out_status
    if body.startswith(b"{"):
        assert json.loads(body)["error"]["message"] in err.message
    else:
        assert "Bad Gateway" in err.message


def test_parse_error_excerpt_is_short_and_printable() -> None:
    err = parse_error(500, b"\x00\x01" + b"A" * 5000)
    assert len(err.message) < 300 and "\x00" not in err.message


# --- StreamParser ----------------------------------------------------------------------------

PROTOCOL_EXAMPLE = [
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 472, "output_tokens": 2, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 100}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
        "type": "thinking", "thinking": "", "signature": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
        "type": "thinking_delta", "thinking": "Need the weather…"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
        "type": "signature_delta", "signature": "EqQBCkYIBx"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
        "type": "text_delta", "text": "Let me check."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
        "type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {
        "type": "input_json_delta", "partial_json": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {
        "type": "input_json_delta", "partial_json": "{\"city\": \"Pa"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {
        "type": "input_json_delta", "partial_json": "ris\"}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use",
                                                         "stop_sequence": None},
                       "usage": {"output_tokens": 89}}),
    ("message_stop", {"type": "message_stop"}),
]


def feed_all(frames: Sequence[tuple[str | None, Any]], parser: StreamParser | None = None,
             close: bool = True) -> list[StreamEvent]:
    p = parser or StreamParser()
    out: list[StreamEvent] = []
    for name, data in frames:
        out += p.feed(name, data if isinstance(data, str) else json.dumps(data))
    if close:
        out += p.close()
    return out


def test_stream_parser_protocol_example() -> None:
    events = feed_all(PROTOCOL_EXAMPLE)
    assert events == [
        UsageUpdate(usage=Usage(input_tokens=572, output_tokens=2, cached_tokens=100)),
        ThinkingDelta(text="Need the weather…"),
        ThinkingEnd(signature="EqQBCkYIBx", origin="anthropic"),
        TextDelta(text="Let me check."),
        ToolCallStart(id="toolu_01A", name="get_weather"),
        ToolCallDelta(id="toolu_01A", arguments="{\"city\": \"Pa"),
        ToolCallDelta(id="toolu_01A", arguments="ris\"}"),
        ToolCallEnd(id="toolu_01A"),
        UsageUpdate(usage=Usage(input_tokens=572, output_tokens=89, cached_tokens=100)),
        Finish(stop_reason=StopReason.TOOL_USE),
    ]
    resp = collect(events, "id", "m")
    assert resp.tool_calls()[0].arguments == '{"city": "Paris"}'


def test_stream_parser_without_event_names_and_extras() -> None:
    frames: list[tuple[str | None, Any]] = [(None, d) for _, d in PROTOCOL_EXAMPLE]
    assert feed_all(frames) == feed_all(PROTOCOL_EXAMPLE)


def test_stream_parser_redacted_server_tools_and_custom_tools() -> None:
    frames: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "redacted_thinking", "data": "R"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
            "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": "{\"query\":"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": "\"weather\"}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_2", "name": "apply_patch", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {
            "type": "input_json_delta", "partial_json": "{\"input\": \"*** a\\n"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {
            "type": "input_json_delta", "partial_json": "b\"}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("content_block_start", {"type": "content_block_start", "index": 3, "content_block": {
            "type": "tool_use", "id": "toolu_3", "name": "f", "input": {"whole": True}}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 3}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "stop_sequence",
                                                             "stop_sequence": "END"},
                           "usage": {"output_tokens": 7, "input_tokens": 6,
                                     "cache_creation_input_tokens": 3}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    events = feed_all(frames, StreamParser(custom_tools={"apply_patch"}))
    assert events == [
        UsageUpdate(usage=Usage(input_tokens=5)),
        RedactedThinkingBlock(data="R", origin="anthropic"),
        OpaqueItem(part=Opaque(dialect="anthropic_messages", data={
            "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
            "input": {"query": "weather"}})),
        ToolCallStart(id="toolu_2", name="apply_patch", kind="custom"),
        ToolCallDelta(id="toolu_2", arguments="*** a\nb"),
        ToolCallEnd(id="toolu_2"),
        ToolCallStart(id="toolu_3", name="f"),
        ToolCallDelta(id="toolu_3", arguments='{"whole":true}'),
        ToolCallEnd(id="toolu_3"),
        UsageUpdate(usage=Usage(input_tokens=9, output_tokens=7, cache_write_tokens=3)),
        Finish(stop_reason=StopReason.STOP_SEQUENCE, stop_sequence="END"),
    ]


@pytest.mark.parametrize(("etype", "cls"), [
    ("overloaded_error", Overloaded), ("rate_limit_error", RateLimited),
    ("api_error", UpstreamError), ("timeout_error", UpstreamTimeout),
    ("invalid_request_error", InvalidRequest), ("not_found_error", NotFound),
    ("authentication_error", UpstreamError), ("something_new", UpstreamError),
])
def test_stream_parser_error_event(etype: str, cls: type) -> None:
    p = StreamParser()
    p.feed("message_start", json.dumps({"type": "message_start", "message": {}}))
    events = p.feed("error", json.dumps({"type": "error", "error": {"type": etype,
                                                                    "message": "Overloaded"}}))
    assert len(events) == 1 and isinstance(events[0], StreamError)
    assert type(events[0].error) is cls and "Overloaded" in events[0].error.message
    assert p.feed("message_stop", '{"type":"message_stop"}') == [] and p.close() == []


def test_stream_parser_truncated_stream() -> None:
    events = feed_all(PROTOCOL_EXAMPLE[:9])
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, TransportError)
    # message_delta seen but message_stop lost: the turn is complete enough
    events = feed_all(PROTOCOL_EXAMPLE[:-1])
    assert events[-1] == Finish(stop_reason=StopReason.TOOL_USE)


def test_stream_parser_is_lenient() -> None:
    p = StreamParser()
    junk = ["", "[DONE]", "not json", "[]", "5", '{"type": 5}', '{"type":"mystery"}',
            '{"type":"content_block_delta","index":[1],"delta":{}}',
            '{"type":"content_block_stop","index":{"a":1}}',
            '{"type":"content_block_start","index":0,"content_block":"x"}',
            '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}}',
            '{"type":"content_block_start","index":0,"content_block":{"type":"tool_use"}}',
            '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta",'
            '"partial_json":"{}"}}',
            '{"type":"message_delta","delta":"x","usage":[1]}',
            '{"type":"message_start","message":{"usage":{"input_tokens":"many"}}}']
    for d in junk:
        for ev in p.feed(None, d):
            assert not isinstance(ev, StreamError)
    assert isinstance(p.close()[0], StreamError)


def test_stream_parser_tool_without_input_deltas_reads_as_empty_object() -> None:
    frames: list[tuple[str | None, Any]] = [
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_9", "name": "get_time", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": ""}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                           "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    resp = collect(feed_all(frames), "id", "m")
    assert resp.tool_calls() == [ToolCall(id="toolu_9", name="get_time", arguments="{}")]


def test_anthropic_error_type_is_not_an_openai_code() -> None:
    # ``code`` carries OpenAI-style codes that other dialects echo: never Anthropic's type.
    assert parse_error(400, _err(400, "invalid_request_error", "prompt is too long")).code \
        is None
    assert parse_error(500, _err(500, "overloaded_error")).kind.value == "overloaded"
    p = StreamParser()
    ev = p.feed("error", json.dumps({"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt is too long"}}))[0]
    assert isinstance(ev, StreamError) and isinstance(ev.error, ContextLengthExceeded)
    assert ev.error.code is None
