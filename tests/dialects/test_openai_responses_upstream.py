"""OpenAI Responses dialect, egress: upstream requests, responses, streams and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dragoman.core import (
    BudgetExhausted,
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
    Refusal,
    RefusalDelta,
    ResponseFormat,
    StopReason,
    StreamError,
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
from dragoman.dialects.openai_responses import (
    StreamParser,
    parse_error,
    parse_request,
    parse_response,
    render_request,
)

from .test_openai_responses_ingress import CODEX_TURN_2

# --- render_request ---------------------------------------------------------------------------


def test_codex_request_forwarded_to_a_responses_upstream() -> None:
    body = render_request(parse_request(CODEX_TURN_2))
    assert body["model"] == "gpt-5.5" and body["stream"] is True
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["text"] == {"format": CODEX_TURN_2["text"]["format"], "verbosity": "low"}
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["prompt_cache_key"] == "thread-1" and body["client_metadata"] == {"turn_id": "t1"}
    assert "previous_response_id" not in body
    assert body["tools"] == CODEX_TURN_2["tools"]  # namespace regrouped, hosted verbatim
    items = body["input"]
    assert [i["type"] for i in items] == [
        "message", "message", "reasoning", "message", "function_call", "custom_tool_call",
        "local_shell_call", "function_call_output", "custom_tool_call_output",
        "function_call_output", "message"]
    assert all("id" not in i for i in items)
    assert items[1]["content"][1] == {"type": "input_image",
                                      "image_url": CODEX_TURN_2["input"][1]["content"][1][
                                          "image_url"]}
    assert items[2] == {"type": "reasoning", "summary": [
        {"type": "summary_text", "text": "**Plan**\n\nLook first."}],
        "encrypted_content": "gAAAAenc"}
    assert items[3] == {"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "Looking.", "annotations": []}]}
    assert items[4] == {"type": "function_call", "call_id": "call_A", "name": "exec_command",
                        "arguments": '{"cmd":"ls"}'}
    assert items[9]["output"] == [{"type": "input_text", "text": "see"},
                                  {"type": "input_image", "image_url": "https://x.test/a.png",
                                   "detail": "low"}]
    assert items[10] == {"type": "message", "role": "user",
                         "content": [{"type": "input_text", "text": "thanks"}]}


def test_foreign_request_drops_foreign_state_and_fills_defaults() -> None:
    req = ChatRequest(
        model="gpt-x", dialect="anthropic_messages", extra={"anthropic_only": 1},
        system=[Text(text="a"), Text(text="b")],
        messages=[
            Message(role="user", content=[Text(text="hi"), File(mime="application/pdf",
                                                                data="AAAA", filename="f.pdf")]),
            Message(role="assistant", content=[
                Thinking(text="t", signature="anthropic-sig", origin="anthropic"),
                RedactedThinking(data="r", origin="anthropic"),
                Thinking(text="t2", origin="openai", id="rs_1"),  # no signature: not replayable
                Opaque(dialect="anthropic_messages", data={"type": "server_tool_use"}),
                ToolCall(id="toolu_1", name="spawn", arguments="{}")]),
            Message(role="tool", content=[
                ToolResult(call_id="toolu_1", content=[Text(text="boom")], is_error=True)]),
        ],
        tools=[Tool(name="get"), Tool(name="spawn", namespace="agents",
                                      namespace_description="Sub-agents.")],
        hosted_tools=[HostedTool(dialect="anthropic_messages", data={"type": "web_search_2025"})],
        tool_choice=ToolChoice(mode="tool", name="get"),
        reasoning=Reasoning(mode="enabled", budget_tokens=5000, summary="summarized"),
        max_tokens=64000, stop=["END"], top_k=5, store=True, previous_response_id="resp_9",
        response_format=ResponseFormat(type="json_schema", schema={"type": "object"}),
    )
    body = render_request(req)
    assert body["instructions"] == "a\n\nb"
    assert body["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "hi"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA",
             "filename": "f.pdf"}]},
        {"type": "function_call", "call_id": "toolu_1", "name": "spawn", "arguments": "{}",
         "namespace": "agents"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "Error: boom"},
    ]
    assert body["tools"] == [
        {"type": "function", "name": "get", "parameters": {"type": "object", "properties": {}},
         "strict": False},
        {"type": "namespace", "name": "agents", "description": "Sub-agents.", "tools": [
            {"type": "function", "name": "spawn",
             "parameters": {"type": "object", "properties": {}}, "strict": False}]}]
    assert body["tool_choice"] == {"type": "function", "name": "get"}
    assert body["reasoning"] == {"effort": "medium"}  # smallest effort covering 5000
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["text"] == {"format": {"type": "json_schema", "name": "response",
                                       "schema": {"type": "object"}}}
    assert body["max_output_tokens"] == 64000 and body["store"] is False
    for absent in ("anthropic_only", "stop", "top_k", "previous_response_id", "stream"):
        assert absent not in body


def test_reasoning_effort_from_mode() -> None:
    assert render_request(ChatRequest(model="m", reasoning=Reasoning(mode="disabled")))[
        "reasoning"] == {"effort": "none"}
    body = render_request(ChatRequest(model="m", reasoning=Reasoning(mode="adaptive")))
    assert "reasoning" not in body and "include" not in body
    assert "include" not in render_request(ChatRequest(model="m"))


def test_same_dialect_extra_can_keep_store() -> None:
    req = ChatRequest(model="m", dialect="openai_responses",
                      extra={"store": True, "include": ["file_search_call.results"]},
                      reasoning=Reasoning(effort="low"))
    body = render_request(req)
    assert body["store"] is True
    assert body["include"] == ["reasoning.encrypted_content", "file_search_call.results"]


def test_multi_part_and_empty_tool_results() -> None:
    body = render_request(ChatRequest(model="m", messages=[Message(role="tool", content=[
        ToolResult(call_id="a", content=[]),
        ToolResult(call_id="b", content=[Text(text="x"), Image(url="https://i/x.png")])])]))
    assert body["input"] == [
        {"type": "function_call_output", "call_id": "a", "output": ""},
        {"type": "function_call_output", "call_id": "b", "output": [
            {"type": "input_text", "text": "x"},
            {"type": "input_image", "image_url": "https://i/x.png"}]}]


def test_allowed_tools_choice() -> None:
    body = render_request(ChatRequest(model="m", tools=[Tool(name="p", kind="custom")],
                                      tool_choice=ToolChoice(mode="required", allowed=["p", "q"])))
    assert body["tool_choice"] == {"type": "allowed_tools", "mode": "required", "tools": [
        {"type": "custom", "name": "p"}, {"type": "function", "name": "q"}]}


# --- parse_response ---------------------------------------------------------------------------

RESPONSE_BODY: dict[str, Any] = {
    "id": "resp_67cc", "object": "response", "created_at": 1741476542.0, "status": "completed",
    "model": "gpt-4.1-2025-04-14", "error": None, "incomplete_details": None,
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [
            {"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}],
         "encrypted_content": "enc", "status": "completed"},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
         "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
    ],
    "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 3},
              "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 64},
              "total_tokens": 123},
}


def test_parse_response() -> None:
    r = parse_response(RESPONSE_BODY)
    assert r.id == "resp_67cc" and r.model == "gpt-4.1-2025-04-14" and r.created == 1741476542
    assert r.content == [
        Thinking(text="a\n\nb", signature="enc", origin="openai", id="rs_1"),
        Text(text="Hi!"),
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
        Opaque(dialect="openai_responses", data=RESPONSE_BODY["output"][3]),
    ]
    assert r.stop_reason == StopReason.TOOL_USE
    assert r.usage == Usage(input_tokens=36, output_tokens=87, cached_tokens=3,
                            reasoning_tokens=64)


@pytest.mark.parametrize(("status", "details", "stop"), [
    ("incomplete", {"reason": "max_output_tokens"}, StopReason.MAX_TOKENS),
    ("incomplete", {"reason": "content_filter"}, StopReason.CONTENT_FILTER),
    ("completed", None, StopReason.END_TURN),
])
def test_parse_response_status(status: str, details: Any, stop: StopReason) -> None:
    r = parse_response({"id": "resp_1", "status": status, "incomplete_details": details,
                        "output": [{"type": "message", "content": [
                            {"type": "output_text", "text": "x"}]}]})
    assert r.stop_reason == stop and r.usage == Usage()


def test_parse_response_refusal_and_failures() -> None:
    r = parse_response({"id": "resp_1", "status": "completed", "output": [
        {"type": "message", "content": [{"type": "refusal", "refusal": "No."}]}]})
    assert r.content == [Refusal(text="No.")] and r.stop_reason == StopReason.REFUSAL
    with pytest.raises(RateLimited):
        parse_response({"status": "failed", "error": {"code": "rate_limit_exceeded",
                                                      "message": "slow down"}})
    with pytest.raises(UpstreamError):
        parse_response([1, 2])
    assert parse_response({"output": "junk", "usage": "x", "created_at": True}).content == []


# --- stream parser ----------------------------------------------------------------------------


def sse_events(events: list[dict[str, Any]]) -> list[Any]:
    p = StreamParser()
    out: list[Any] = []
    for i, e in enumerate(events):
        e = {"sequence_number": i, **e}
        out.extend(p.feed(e["type"], json.dumps(e)))
    out.extend(p.close())
    return out


CANONICAL: list[dict[str, Any]] = [
    {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress",
                                              "output": []}},
    {"type": "response.in_progress", "response": {"id": "resp_1", "status": "in_progress"}},
    {"type": "response.output_item.added", "output_index": 0,
     "item": {"type": "reasoning", "id": "rs_1", "summary": []}},
    {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "output_index": 0,
     "summary_index": 0, "part": {"type": "summary_text", "text": ""}},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0,
     "summary_index": 0, "delta": "**Plan**"},
    {"type": "response.reasoning_summary_text.done", "item_id": "rs_1", "output_index": 0,
     "summary_index": 0, "text": "**Plan**"},
    {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "output_index": 0,
     "summary_index": 1, "part": {"type": "summary_text", "text": ""}},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0,
     "summary_index": 1, "delta": "Second"},
    {"type": "response.output_item.done", "output_index": 0,
     "item": {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"}},
    {"type": "response.output_item.added", "output_index": 1,
     "item": {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress",
              "content": []}},
    {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 1,
     "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1,
     "content_index": 0, "delta": "Hel", "logprobs": []},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1,
     "content_index": 0, "delta": "lo", "logprobs": []},
    {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 1,
     "content_index": 0, "text": "Hello", "logprobs": []},
    {"type": "response.output_item.done", "output_index": 1,
     "item": {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
              "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}},
    {"type": "response.output_item.added", "output_index": 2,
     "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
              "arguments": "", "status": "in_progress"}},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2,
     "delta": "{\"city\":"},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2,
     "delta": "\"Paris\"}"},
    {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 2,
     "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
    {"type": "response.output_item.done", "output_index": 2,
     "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
              "arguments": "{\"city\":\"Paris\"}", "status": "completed"}},
    {"type": "response.output_item.done", "output_index": 3,
     "item": {"type": "web_search_call", "id": "ws_1", "status": "completed"}},
    {"type": "response.completed", "response": {
        "id": "resp_1", "status": "completed", "output": [],
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                  "input_tokens_details": {"cached_tokens": 2},
                  "output_tokens_details": {"reasoning_tokens": 1}}}},
]


def test_canonical_stream() -> None:
    events = sse_events(CANONICAL)
    assert events == [
        ThinkingDelta(text="**Plan**"), ThinkingDelta(text="\n\nSecond"),
        ThinkingEnd(signature="enc", id="rs_1", origin="openai"),
        TextDelta(text="Hel"), TextDelta(text="lo"),
        ToolCallStart(id="call_1", name="get_weather"),
        ToolCallDelta(id="call_1", arguments='{"city":'),
        ToolCallDelta(id="call_1", arguments='"Paris"}'),
        ToolCallEnd(id="call_1"),
        OpaqueItem(part=Opaque(dialect="openai_responses", data=CANONICAL[20]["item"])),
        UsageUpdate(usage=Usage(input_tokens=10, output_tokens=5, cached_tokens=2,
                                reasoning_tokens=1)),
        Finish(stop_reason=StopReason.TOOL_USE),
    ]


def test_items_arriving_only_when_done() -> None:
    events = sse_events([
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"type": "reasoning", "id": "rs_1", "summary": [
             {"type": "summary_text", "text": "thought"}]}},
        {"type": "response.output_item.done", "output_index": 1, "item": {
            "type": "message", "id": "m", "content": [{"type": "output_text", "text": "hi"}]}},
        {"type": "response.output_item.done", "output_index": 2, "item": {
            "type": "custom_tool_call", "id": "ctc", "call_id": "c", "name": "apply_patch",
            "input": "patch"}},
        {"type": "response.done", "response": {"status": "completed"}},
    ])
    assert events == [
        ThinkingDelta(text="thought"), ThinkingEnd(id="rs_1", origin="openai"),
        TextDelta(text="hi"),
        ToolCallStart(id="c", name="apply_patch", kind="custom"),
        ToolCallDelta(id="c", arguments="patch"), ToolCallEnd(id="c"),
        Finish(stop_reason=StopReason.TOOL_USE),
    ]


def test_arguments_only_in_done_events_and_reasoning_text() -> None:
    events = sse_events([
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "reasoning", "id": "rs_1", "summary": []}},
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "output_index": 0,
         "content_index": 0, "delta": "raw"},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"type": "reasoning", "id": "rs_1", "summary": []}},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {"type": "function_call", "id": "fc", "call_id": "c", "name": "f",
                  "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{\"a\""},
        {"type": "response.function_call_arguments.done", "item_id": "fc", "output_index": 1,
         "arguments": "{\"a\":1}"},
        {"type": "response.output_item.done", "output_index": 1,
         "item": {"type": "function_call", "id": "fc", "call_id": "c", "name": "f",
                  "arguments": "{\"a\":1}"}},
        {"type": "response.completed", "response": {"status": "completed"}},
    ])
    assert events == [
        ThinkingDelta(text="raw"), ThinkingEnd(id="rs_1", origin="openai"),
        ToolCallStart(id="c", name="f"), ToolCallDelta(id="c", arguments='{"a"'),
        ToolCallDelta(id="c", arguments=":1}"), ToolCallEnd(id="c"),
        Finish(stop_reason=StopReason.TOOL_USE),
    ]


def test_terminal_response_without_streamed_items_is_replayed() -> None:
    events = sse_events([{"type": "response.completed", "response": RESPONSE_BODY}])
    r = collect(events, "x", "m")
    assert r.content == parse_response(RESPONSE_BODY).content
    assert r.stop_reason == StopReason.TOOL_USE and r.usage.total_tokens == 123


def test_refusal_and_incomplete() -> None:
    events = sse_events([
        {"type": "response.refusal.delta", "item_id": "m", "output_index": 0, "delta": "No"},
        {"type": "response.refusal.done", "item_id": "m", "output_index": 0, "refusal": "No"},
        {"type": "response.completed", "response": {"status": "completed"}}])
    assert events == [RefusalDelta(text="No"), Finish(stop_reason=StopReason.REFUSAL)]
    for reason, stop in [("max_output_tokens", StopReason.MAX_TOKENS),
                         ("content_filter", StopReason.CONTENT_FILTER)]:
        events = sse_events([
            {"type": "response.output_text.delta", "item_id": "m", "delta": "par"},
            {"type": "response.incomplete", "response": {
                "status": "incomplete", "incomplete_details": {"reason": reason},
                "usage": {"input_tokens": 1, "output_tokens": 2}}}])
        assert events[-2:] == [UsageUpdate(usage=Usage(input_tokens=1, output_tokens=2)),
                               Finish(stop_reason=stop)]


@pytest.mark.parametrize(("event", "cls"), [
    ({"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "rate_limit_exceeded", "message": "Please try again in 28ms."}}}, RateLimited),
    ({"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "context_length_exceeded", "message": "too long"}}}, ContextLengthExceeded),
    ({"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "server_error", "message": "oops"}}}, UpstreamError),
    ({"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "invalid_prompt", "message": "flagged"}}}, InvalidRequest),
    ({"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "insufficient_quota", "message": "quota"}}}, BudgetExhausted),
    ({"type": "response.failed", "response": {"status": "failed", "error": {
        "code": "server_is_overloaded", "message": "busy"}}}, Overloaded),
    ({"type": "error", "code": "rate_limit_exceeded", "message": "slow"}, RateLimited),
    ({"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_image_url",
                                 "message": "bad image"}}, InvalidRequest),
    ({"type": "error", "message": "??"}, UpstreamError),
    ({"type": "response.completed", "response": {"status": "failed"}}, UpstreamError),
])
def test_failures(event: dict[str, Any], cls: type) -> None:
    events = sse_events([event])
    (ev,) = events
    assert isinstance(ev, StreamError)
    err = ev.error
    assert type(err) is cls
    if cls is RateLimited and "28ms" in json.dumps(event):
        assert err.retry_after == pytest.approx(0.028)


def test_leniency_and_end_of_stream() -> None:
    p = StreamParser()
    assert p.feed(None, "[DONE]") == []
    assert p.feed(None, "not json") == []
    assert p.feed(None, "[1]") == []
    assert p.feed("response.output_text.delta", '{"delta":"x","item_id":"m"}') == [
        TextDelta(text="x")]  # type from the event name when the JSON has none
    assert p.feed(None, '{"type":"response.web_search_call.searching"}') == []
    assert p.feed(None, '{"type":"response.function_call_arguments.delta","item_id":"?"}') == []
    closing = p.close()
    (ev,) = closing
    assert isinstance(ev, StreamError) and isinstance(ev.error, TransportError)
    assert p.close() == []
    done = StreamParser()
    done.feed(None, '{"type":"response.completed","response":{}}')
    assert done.feed(None, '{"type":"response.output_text.delta","delta":"late"}') == []
    assert done.close() == []


def test_unclosed_calls_are_closed_at_the_end() -> None:
    events = sse_events([
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "function_call", "id": "fc", "call_id": "c", "name": "f",
                  "arguments": "{}"}},
        {"type": "response.completed", "response": {"status": "completed"}}])
    assert events == [ToolCallStart(id="c", name="f"), ToolCallDelta(id="c", arguments="{}"),
                      ToolCallEnd(id="c"), Finish(stop_reason=StopReason.TOOL_USE)]


# --- parse_error ------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "cls", "code"), [
    (400, b'{"error":{"message":"bad","type":"invalid_request_error","param":"input",'
          b'"code":null}}', InvalidRequest, None),
    (400, b'{"error":{"message":"long","type":"invalid_request_error",'
          b'"code":"context_length_exceeded"}}', ContextLengthExceeded, "context_length_exceeded"),
    (429, b'{"error":{"message":"Rate limit reached. Please try again in 11.054s.",'
          b'"type":"requests","code":"rate_limit_exceeded"}}', RateLimited, "rate_limit_exceeded"),
    (429, b'{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}',
     BudgetExhausted, "insufficient_quota"),
    (429, b'{"error":{"type":"usage_limit_reached","message":"limit"}}', BudgetExhausted,
     "usage_limit_reached"),
    (401, b'{"error":{"message":"Incorrect API key"}}', UpstreamError, None),
    (404, b'{"detail":"Not Found"}', NotFound, None),
    (500, b"<html>Internal   Server Error</html>", UpstreamError, None),
    (503, b"", Overloaded, None),
    (504, b"gateway timeout", UpstreamTimeout, None),
])
def test_parse_error(status: int, body: bytes, cls: type, code: str | None) -> None:
    err = parse_error(status, body)
    assert type(err) is cls and err.code == code
    assert err.message
    if status == 429 and "11.054s" in body.decode():
        assert err.retry_after == pytest.approx(11.054)
    if b"param" in body:
        assert err.param == "input"
    if status == 500:
        assert "<html>Internal Server Error</html>" in err.message
    if status == 401:
        assert "Incorrect API key" in err.message and err.status == 502
