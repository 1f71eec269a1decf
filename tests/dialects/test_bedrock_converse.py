"""The Bedrock Converse dialect, pure: neutral → request body, response/stream/errors →
neutral. Expected bodies are written out from providers.md and mapping.md."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dragoman.core import (
    ChatRequest,
    ContextLengthExceeded,
    ErrorKind,
    File,
    Finish,
    Image,
    InvalidRequest,
    Message,
    Reasoning,
    RedactedThinking,
    RedactedThinkingBlock,
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
    Usage,
    UsageUpdate,
)
from dragoman.dialects.bedrock_converse import (
    DIALECT,
    StreamParser,
    parse_error,
    parse_response,
    render_request,
    stream_exception,
)
from tests.fakes.upstream import IMAGE_PNG_B64

CACHE = {"cachePoint": {"type": "default"}}
WEATHER = Tool(name="get_weather", description="Weather now",
               parameters={"type": "object", "properties": {"city": {"type": "string"}}})


def user(*parts: Any) -> Message:
    return Message(role="user", content=[Text(text=p) if isinstance(p, str) else p
                                         for p in parts])


def req(*messages: Message, **kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages), **kw)


def test_the_example_of_providers_md() -> None:
    body = render_request(req(
        user("What is this?", Image(mime="image/png", data=IMAGE_PNG_B64)),
        Message(role="assistant", content=[ToolCall(id="tooluse_1", name="get_weather",
                                                    arguments='{"city":"Paris"}')]),
        Message(role="tool", content=[ToolResult(call_id="tooluse_1",
                                                 content=[Text(text="18C")])]),
        system=[Text(text="Be terse.", cache_control={"type": "ephemeral"})],
        tools=[Tool(name="get_weather", description="…",
                    parameters={"type": "object",
                                "properties": {"city": {"type": "string"}}})],
        tool_choice=ToolChoice(mode="auto"), max_tokens=4096, temperature=0.5, top_p=0.9,
        stop=["END"], top_k=50, reasoning=Reasoning(mode="enabled", budget_tokens=2048)))
    assert body == {
        "system": [{"text": "Be terse."}, CACHE],
        "messages": [
            {"role": "user", "content": [
                {"text": "What is this?"},
                {"image": {"format": "png", "source": {"bytes": IMAGE_PNG_B64}}}]},
            {"role": "assistant", "content": [{"toolUse": {
                "toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
            {"role": "user", "content": [{"toolResult": {
                "toolUseId": "tooluse_1", "content": [{"text": "18C"}], "status": "success"}}]}],
        "inferenceConfig": {"maxTokens": 4096, "temperature": 0.5, "topP": 0.9,
                            "stopSequences": ["END"]},
        "toolConfig": {"tools": [{"toolSpec": {
            "name": "get_weather", "description": "…", "inputSchema": {"json": {
                "type": "object", "properties": {"city": {"type": "string"}}}}}}],
            "toolChoice": {"auto": {}}},
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 2048},
                                         "top_k": 50},
    }
    assert "model" not in body and "stream" not in body  # the model and mode are the path


def test_roles_alternate_system_is_hoisted_and_results_lead_the_user_turn() -> None:
    body = render_request(req(
        Message(role="developer", content=[Text(text="Rule one.")]),
        user("hi"), user("again"),
        Message(role="assistant", content=[Text(text="calling"),
                                           ToolCall(id="a", name="f", arguments="{}"),
                                           ToolCall(id="b", name="f", arguments="[1]")]),
        Message(role="tool", content=[ToolResult(call_id="a", content=[Text(text="1")]),
                                      ToolResult(call_id="b", is_error=True)]),
        Message(role="system", content=[Text(text="Rule two.")]),
        user("", "and?"),
        Message(role="assistant", content=[Text(text="   ")]),  # blank: dropped
        user("more"),
    ))
    assert body["system"] == [{"text": "Rule one."}, {"text": "Rule two."}]
    msgs = body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[0]["content"] == [{"text": "hi"}, {"text": "again"}]
    assert msgs[1]["content"][2] == {"toolUse": {"toolUseId": "b", "name": "f",
                                                 "input": {"input": "[1]"}}}
    assert msgs[2]["content"] == [
        {"toolResult": {"toolUseId": "a", "content": [{"text": "1"}], "status": "success"}},
        {"toolResult": {"toolUseId": "b", "content": [{"text": "(no output)"}],
                        "status": "error"}},
        {"text": "and?"}, {"text": "more"}]
    # the history has tool blocks but the request no tools: a toolConfig is still sent
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "f"
    assert "toolChoice" not in body["toolConfig"]


def test_results_are_moved_before_text_in_a_merged_user_turn() -> None:
    body = render_request(req(
        user("q"), Message(role="assistant", content=[ToolCall(id="a", name="f")]),
        user("note first"), Message(role="tool", content=[ToolResult(call_id="a")])))
    assert [next(iter(b)) for b in body["messages"][2]["content"]] == ["toolResult", "text"]


@pytest.mark.parametrize(("choice", "wire"), [
    (ToolChoice(mode="required"), {"any": {}}),
    (ToolChoice(mode="tool", name="get_weather"), {"tool": {"name": "get_weather"}}),
    (ToolChoice(mode="auto"), {"auto": {}}),
    (None, None),
])
def test_tool_choice(choice: ToolChoice | None, wire: dict[str, Any] | None) -> None:
    body = render_request(req(user("x"), tools=[WEATHER], tool_choice=choice))
    assert body["toolConfig"].get("toolChoice") == wire


def test_tool_choice_none_withholds_tools_unless_the_history_needs_them() -> None:
    none = ToolChoice(mode="none")
    assert "toolConfig" not in render_request(req(user("x"), tools=[WEATHER], tool_choice=none))
    body = render_request(req(
        user("x"), Message(role="assistant", content=[ToolCall(id="a", name="get_weather")]),
        Message(role="tool", content=[ToolResult(call_id="a", content=[Text(text="ok")])]),
        tools=[WEATHER], tool_choice=none))
    assert body["toolConfig"] == {"tools": [{"toolSpec": {
        "name": "get_weather", "description": "Weather now",
        "inputSchema": {"json": WEATHER.parameters}}}]}


def test_allowed_tools_cache_points_and_custom_tools() -> None:
    body = render_request(req(user("x"), tools=[
        WEATHER, Tool(name="t2", cache_control={"type": "ephemeral"}),
        Tool(name="apply_patch", kind="custom", description="Patch files",
             format={"type": "grammar", "syntax": "lark", "definition": "start: /.+/"})],
        tool_choice=ToolChoice(mode="required", allowed=["t2", "apply_patch"])))
    tools = body["toolConfig"]["tools"]
    assert [next(iter(t)) for t in tools] == ["toolSpec", "cachePoint", "toolSpec"]
    assert tools[0]["toolSpec"] == {"name": "t2", "inputSchema": {"json": {
        "type": "object", "properties": {}}}}
    custom = tools[2]["toolSpec"]
    assert custom["inputSchema"]["json"]["properties"] == {"input": {"type": "string"}}
    assert "start: /.+/" in custom["description"]


def test_reasoning_is_replayed_only_when_bedrock_signed_it() -> None:
    body = render_request(req(user("x"), Message(role="assistant", content=[
        Thinking(text="mine", signature="SIGb", origin="bedrock"),
        Thinking(text="theirs", signature="SIGa", origin="anthropic"),
        Thinking(text="unsigned"),
        RedactedThinking(data="UkVE", origin="bedrock"),
        RedactedThinking(data="T1RIRVI=", origin="anthropic"),
        Text(text="answer")]), user("y")))
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "mine", "signature": "SIGb"}}},
        {"reasoningContent": {"redactedContent": "UkVE"}},
        {"text": "answer"}]


@pytest.mark.parametrize(("reasoning", "max_tokens", "thinking", "cap"), [
    (Reasoning(effort="low"), None, {"type": "enabled", "budget_tokens": 2048}, 6144),
    (Reasoning(effort="high"), 8000, {"type": "enabled", "budget_tokens": 7999}, 8000),
    (Reasoning(effort="medium"), 1000, None, 1000),  # no budget fits: thinking off
    (Reasoning(effort="none"), None, None, None),
    (Reasoning(mode="disabled"), 500, None, 500),
    (Reasoning(mode="adaptive"), None, {"type": "adaptive"}, None),
    (Reasoning(mode="enabled", budget_tokens=4000), 3000, {"type": "enabled",
                                                          "budget_tokens": 2999}, 3000),
])
def test_reasoning_budget(reasoning: Reasoning, max_tokens: int | None,
                          thinking: dict[str, Any] | None, cap: int | None) -> None:
    body = render_request(req(user("x"), reasoning=reasoning, max_tokens=max_tokens))
    assert body.get("additionalModelRequestFields", {}).get("thinking") == thinking
    assert body.get("inferenceConfig", {}).get("maxTokens") == cap


def test_media() -> None:
    body = render_request(req(user(
        Image(url=f"data:image/jpeg;base64,{IMAGE_PNG_B64}"),
        Image(data="R0lGODlhAQABAAAAACw="),  # no mime: gif by its magic bytes
        Image(url="s3://bucket/photos/cat.webp"),
        File(mime="application/pdf", data="JVBERi0=", filename="Q3 report (final).pdf"),
        File(url="data:text/csv;base64,YSxiCg==", filename="a/b?.csv"))))
    c = body["messages"][0]["content"]
    assert c[0] == {"image": {"format": "jpeg", "source": {"bytes": IMAGE_PNG_B64}}}
    assert c[1]["image"]["format"] == "gif"
    assert c[2] == {"image": {"format": "webp", "source": {"s3Location": {
        "uri": "s3://bucket/photos/cat.webp"}}}}
    assert c[3] == {"document": {"format": "pdf", "name": "Q3 report (final)",
                                 "source": {"bytes": "JVBERi0="}}}
    assert c[4]["document"]["format"] == "csv" and c[4]["document"]["name"] == "a-b-"


@pytest.mark.parametrize(("part", "why"), [
    (Image(url="https://example.com/a.png"), "not fetched"),
    (Image(mime="image/tiff", data="AAAA"), "png, jpeg, gif and webp"),
    (Image(data="AAAA"), "unknown"),
    (File(file_id="file-1"), "inline data"),
    (File(mime="application/zip", data="UEs="), "does not accept"),
])
def test_unsendable_media_is_a_clear_400(part: Any, why: str) -> None:
    with pytest.raises(InvalidRequest, match=why):
        render_request(req(user(part)))


def test_conversation_must_start_with_a_user_turn() -> None:
    with pytest.raises(InvalidRequest, match="start with a user"):
        render_request(req(Message(role="assistant", content=[Text(text="hi")]), user("x")))
    with pytest.raises(InvalidRequest, match="at least one user"):
        render_request(req(Message(role="system", content=[Text(text="only rules")])))


# --- upstream → neutral -------------------------------------------------------------------


def test_parse_response() -> None:
    r = parse_response({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "S1"}}},
            {"reasoningContent": {"redactedContent": "UkVE"}},
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather",
                         "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "tooluse_2", "name": "apply_patch",
                         "input": {"input": "*** Begin Patch"}}},
            {"image": {"format": "png"}}]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 142,
                  "cacheReadInputTokens": 100, "cacheWriteInputTokens": 0},
        "metrics": {"latencyMs": 812}}, custom_tools={"apply_patch"})
    assert r.content == [
        Thinking(text="hmm", signature="S1", origin="bedrock"),
        RedactedThinking(data="UkVE", origin="bedrock"),
        Text(text="Let me check."),
        ToolCall(id="tooluse_1", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(id="tooluse_2", name="apply_patch", arguments="*** Begin Patch",
                 kind="custom")]
    assert r.stop_reason is StopReason.TOOL_USE
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_tokens) == (130, 12, 100)


@pytest.mark.parametrize(("wire", "neutral"), [
    ("end_turn", StopReason.END_TURN), ("tool_use", StopReason.TOOL_USE),
    ("max_tokens", StopReason.MAX_TOKENS), ("stop_sequence", StopReason.STOP_SEQUENCE),
    ("guardrail_intervened", StopReason.CONTENT_FILTER),
    ("content_filtered", StopReason.CONTENT_FILTER),
    ("malformed_model_output", StopReason.ERROR), ("malformed_tool_use", StopReason.ERROR),
    ("model_context_window_exceeded", StopReason.MAX_TOKENS),
    ("something_new", StopReason.END_TURN),
])
def test_stop_reasons(wire: str, neutral: StopReason) -> None:
    body = {"output": {"message": {"content": []}}, "stopReason": wire}
    assert parse_response(body).stop_reason is neutral


def test_malformed_response_bodies() -> None:
    for body in ([], {"output": {}}, {"output": {"message": {"content": "x"}}}):
        with pytest.raises(Exception, match="upstream returned"):
            parse_response(body)


def run(frames: list[tuple[str, Any]], custom: set[str] | None = None,
        close: bool = True) -> list[StreamEvent]:
    p = StreamParser(custom or set())
    out: list[StreamEvent] = []
    for name, obj in frames:
        out += p.feed(name, json.dumps(obj).encode())
    if close:
        out += p.close()
    return out


STREAM = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "a"}},
                           "p": "xyz"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "b"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
        "reasoningContent": {"signature": "SIG"}}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Hi"}}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("contentBlockStart", {"contentBlockIndex": 2, "start": {
        "toolUse": {"toolUseId": "t1", "name": "get_weather"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"ci'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": 'ty":1}'}}}),
    ("contentBlockStop", {"contentBlockIndex": 2}),
    ("contentBlockStart", {"contentBlockIndex": 3, "start": {
        "toolUse": {"toolUseId": "t2", "name": "get_time"}}}),
    ("contentBlockStop", {"contentBlockIndex": 3}),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": {"inputTokens": 5, "outputTokens": 7, "cacheWriteInputTokens": 3},
                  "metrics": {"latencyMs": 1}}),
]


def test_stream_events() -> None:
    events = run(STREAM)
    assert events == [
        ThinkingDelta(text="a"), ThinkingDelta(text="b"),
        ThinkingEnd(signature="SIG", origin="bedrock"),
        TextDelta(text="Hi"),
        ToolCallStart(id="t1", name="get_weather"), ToolCallDelta(id="t1", arguments='{"ci'),
        ToolCallDelta(id="t1", arguments='ty":1}'), ToolCallEnd(id="t1"),
        ToolCallStart(id="t2", name="get_time"), ToolCallDelta(id="t2", arguments="{}"),
        ToolCallEnd(id="t2"),
        UsageUpdate(usage=Usage(input_tokens=8, output_tokens=7, cache_write_tokens=3)),
        Finish(stop_reason=StopReason.TOOL_USE)]
    assert events[-1] == Finish(stop_reason=StopReason.TOOL_USE)


def test_stream_without_metadata_finishes_at_close_and_open_blocks_are_closed() -> None:
    events = run([("contentBlockStart", {"contentBlockIndex": 0, "start": {
                      "toolUse": {"toolUseId": "t", "name": "f"}}}),
                  ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
                      "toolUse": {"input": "{}"}}}),
                  ("messageStop", {"stopReason": "end_turn"})])
    assert events == [ToolCallStart(id="t", name="f"), ToolCallDelta(id="t", arguments="{}"),
                      ToolCallEnd(id="t"), Finish(stop_reason=StopReason.END_TURN)]


def test_custom_tool_and_redacted_reasoning_in_a_stream() -> None:
    events = run([
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
            "reasoningContent": {"redactedContent": "UkVE"}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockStart", {"contentBlockIndex": 1, "start": {
            "toolUse": {"toolUseId": "c", "name": "apply_patch"}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {
            "toolUse": {"input": '{"input":"*** Be'}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {
            "toolUse": {"input": 'gin"}'}}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "tool_use"}), ("metadata", {})], custom={"apply_patch"})
    assert events[:4] == [RedactedThinkingBlock(data="UkVE", origin="bedrock"),
                          ToolCallStart(id="c", name="apply_patch", kind="custom"),
                          ToolCallDelta(id="c", arguments="*** Begin"), ToolCallEnd(id="c")]


def test_stream_failures() -> None:
    cut = run([("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})])
    assert isinstance(cut[-1], StreamError) and cut[-1].error.kind is ErrorKind.TRANSPORT
    p = StreamParser()
    (ev,) = p.feed("throttlingException", b'{"message":"Too many tokens"}')
    assert isinstance(ev, StreamError) and ev.error.kind is ErrorKind.RATE_LIMITED
    assert ev.error.message == "Too many tokens"
    assert p.feed("contentBlockDelta", b'{}') == [] and p.close() == []  # done
    (bad,) = StreamParser().feed("contentBlockDelta", b"{not json")
    assert isinstance(bad, StreamError) and bad.error.kind is ErrorKind.UPSTREAM
    assert StreamParser().feed("someFutureEvent", b'{"x":1}') == []


@pytest.mark.parametrize(("etype", "kind"), [
    ("throttlingException", ErrorKind.RATE_LIMITED),
    ("modelStreamErrorException", ErrorKind.UPSTREAM),
    ("validationException", ErrorKind.INVALID_REQUEST),
    ("internalServerException", ErrorKind.UPSTREAM),
    ("serviceUnavailableException", ErrorKind.OVERLOADED),
    ("modelTimeoutException", ErrorKind.TIMEOUT),
    ("brandNewException", ErrorKind.UPSTREAM),
])
def test_stream_exceptions(etype: str, kind: ErrorKind) -> None:
    assert stream_exception(etype, b'{"message":"m"}').kind is kind
    assert stream_exception(etype, b"").message == etype


@pytest.mark.parametrize(("status", "header", "body", "kind", "code_status"), [
    (400, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
     b'{"message":"Malformed input request"}', ErrorKind.INVALID_REQUEST, 400),
    (400, None, b'{"__type":"com.amazon.coral.validate#ValidationException",'
                b'"message":"Input is too long for requested model."}',
     ErrorKind.CONTEXT_LENGTH, 400),
    (403, "AccessDeniedException", b'{"Message":"denied"}', ErrorKind.UPSTREAM, 502),
    (403, "UnrecognizedClientException", b'{"message":"bad token"}', ErrorKind.UPSTREAM, 502),
    (404, "ResourceNotFoundException", b'{"message":"no model"}', ErrorKind.NOT_FOUND, 404),
    (408, "ModelTimeoutException", b'{"message":"slow"}', ErrorKind.TIMEOUT, 504),
    (424, "ModelErrorException", b'{"message":"model failed"}', ErrorKind.UPSTREAM, 502),
    (429, "ThrottlingException", b'{"message":"slow down"}', ErrorKind.RATE_LIMITED, 429),
    (429, "ModelNotReadyException", b'{"message":"warming"}', ErrorKind.OVERLOADED, 503),
    (400, "ServiceQuotaExceededException", b'{"message":"quota"}', ErrorKind.RATE_LIMITED,
     429),
    (500, "InternalServerException", b'{"message":"oops"}', ErrorKind.UPSTREAM, 502),
    (503, "ServiceUnavailableException", b'{"message":"busy"}', ErrorKind.OVERLOADED, 503),
    (413, None, b"<html>413 Request Entity Too Large</html>", ErrorKind.REQUEST_TOO_LARGE,
     413),
    (502, None, b"", ErrorKind.UPSTREAM, 502),
])
def test_http_errors(status: int, header: str | None, body: bytes, kind: ErrorKind,
                     code_status: int) -> None:
    err = parse_error(status, body, header)
    assert err.kind is kind and err.status == code_status
    if body.startswith(b"{"):
        assert json.loads(body).get("message", json.loads(body).get("Message")) in err.message


def test_dialect_record() -> None:
    assert DIALECT.name == "bedrock_converse"
    assert DIALECT.parse_error(400, b'{"message":"x"}').kind is ErrorKind.INVALID_REQUEST
    assert isinstance(parse_error(400, b'{"message":"prompt is too long"}', "ValidationException"),
                      ContextLengthExceeded)
