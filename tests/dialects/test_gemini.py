"""Gemini ``generateContent`` dialect: request rendering, answer/stream/error parsing.

Upstream bodies here are hand-written in Google's wire shape (providers.md), never
produced by the dialect's own renderer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dragoman.core import (
    ChatRequest,
    ContextLengthExceeded,
    File,
    Finish,
    Image,
    InvalidRequest,
    Message,
    NotFound,
    Opaque,
    Overloaded,
    RateLimited,
    Reasoning,
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
    Usage,
    UsageUpdate,
    collect,
)
from dragoman.dialects.gemini import (
    SKIP_SIGNATURE,
    StreamParser,
    is_synthesized,
    parse_error,
    parse_response,
    render_request,
)
from dragoman.net import SseDecoder

USER = Message(role="user", content=[Text(text="hi")])


def req(**kw: Any) -> ChatRequest:
    kw.setdefault("messages", [USER])
    return ChatRequest(model="gemini-2.5-flash", **kw)


# --- request --------------------------------------------------------------------------------


def test_minimal_body_has_no_model_and_no_stream_flag() -> None:
    assert render_request(req(stream=True)) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_system_texts_fold_into_system_instruction_in_order() -> None:
    body = render_request(req(system=[Text(text="A")], messages=[
        Message(role="developer", content=[Text(text="B")]), USER,
        Message(role="system", content=[Text(text="C")]),
        Message(role="user", content=[Text(text="again")])]))
    assert body["systemInstruction"] == {"parts": [{"text": "A"}, {"text": "B"}, {"text": "C"}]}
    # the two user turns around the folded system message merge into one
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}, {"text": "again"}]}]


def test_generation_config() -> None:
    body = render_request(req(max_tokens=500, temperature=0.2, top_p=0.9, top_k=40,
                              stop=["END"], seed=7, response_format=ResponseFormat(
                                  type="json_schema", name="x",
                                  schema={"type": "object"})))
    assert body["generationConfig"] == {
        "maxOutputTokens": 500, "temperature": 0.2, "topP": 0.9, "topK": 40,
        "stopSequences": ["END"], "seed": 7, "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"}}
    assert render_request(req(response_format=ResponseFormat(type="json_object")))[
        "generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(("reasoning", "max_tokens", "want"), [
    (Reasoning(effort="low"), None, {"thinkingBudget": 2048, "includeThoughts": True}),
    (Reasoning(effort="high"), 4096, {"thinkingBudget": 4095, "includeThoughts": True}),
    (Reasoning(mode="enabled", budget_tokens=3000), None,
     {"thinkingBudget": 3000, "includeThoughts": True}),
    (Reasoning(mode="adaptive"), None, {"thinkingBudget": -1, "includeThoughts": True}),
    (Reasoning(mode="disabled"), None, {"thinkingBudget": 0}),
    (Reasoning(effort="none"), None, {"thinkingBudget": 0}),
    (Reasoning(summary="auto"), None, {"includeThoughts": True}),
])
def test_thinking_config(reasoning: Reasoning, max_tokens: int | None,
                         want: dict[str, Any]) -> None:
    gen = render_request(req(reasoning=reasoning, max_tokens=max_tokens))["generationConfig"]
    assert gen["thinkingConfig"] == want


WEATHER = Tool(name="get_weather", description="Weather now",
               parameters={"type": "object", "properties": {"city": {"type": "string"}}})
CLOCK = Tool(name="get_time", parameters={"type": "object", "properties": {}})


@pytest.mark.parametrize(("choice", "config", "names"), [
    (None, None, ["get_weather", "get_time"]),
    (ToolChoice(mode="auto"), {"mode": "AUTO"}, ["get_weather", "get_time"]),
    (ToolChoice(mode="none"), {"mode": "NONE"}, ["get_weather", "get_time"]),
    (ToolChoice(mode="required"), {"mode": "ANY"}, ["get_weather", "get_time"]),
    (ToolChoice(mode="tool", name="get_time"),
     {"mode": "ANY", "allowedFunctionNames": ["get_time"]}, ["get_weather", "get_time"]),
    (ToolChoice(mode="required", allowed=["get_weather"]),
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}, ["get_weather", "get_time"]),
    # allowedFunctionNames only works with ANY: an "auto" subset narrows the declarations
    (ToolChoice(mode="auto", allowed=["get_weather"]), {"mode": "AUTO"}, ["get_weather"]),
])
def test_tools_and_tool_config(choice: ToolChoice | None, config: dict[str, Any] | None,
                               names: list[str]) -> None:
    body = render_request(req(tools=[WEATHER, CLOCK], tool_choice=choice))
    decls = body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in decls] == names
    assert decls[0] == {"name": "get_weather", "description": "Weather now",
                        "parametersJsonSchema": WEATHER.parameters} or names == ["get_time"]
    if config is None:
        assert "toolConfig" not in body
    else:
        assert body["toolConfig"] == {"functionCallingConfig": config}


def test_custom_tool_is_emulated_with_one_input_string() -> None:
    body = render_request(req(tools=[Tool(name="apply_patch", kind="custom",
                                          description="Patch files",
                                          format={"type": "grammar", "syntax": "lark",
                                                  "definition": "start: /.+/"})]))
    d = body["tools"][0]["functionDeclarations"][0]
    assert d["parametersJsonSchema"]["properties"] == {"input": {"type": "string"}}
    assert d["description"].startswith("Patch files\n\n") and "start: /.+/" in d["description"]


def _history(*assistant: Any, results: list[ToolResult] | None = None) -> ChatRequest:
    msgs = [USER, Message(role="assistant", content=list(assistant))]
    if results is not None:
        msgs.append(Message(role="tool", content=list(results)))
    return req(messages=msgs)


def test_tool_round_trip_names_results_and_omits_synthesized_ids() -> None:
    a = ToolCall(id="call_gemini_0123456789abcdef", name="get_weather",
                 arguments='{"city":"Paris"}')
    b = ToolCall(id="toolu_01Native", name="get_time", arguments="")
    body = render_request(_history(
        Text(text="Let me check."), Thinking(signature="SIG", origin="gemini"), a, b,
        results=[ToolResult(call_id=b.id, content=[Text(text="12:00")]),
                 ToolResult(call_id=a.id, content=[Text(text="boom")], is_error=True)]))
    model, user = body["contents"][1], body["contents"][2]
    assert model == {"role": "model", "parts": [
        {"text": "Let me check."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "SIG"},
        {"functionCall": {"name": "get_time", "args": {}, "id": "toolu_01Native"}}]}
    assert user == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_time", "response": {"output": "12:00"},
                              "id": "toolu_01Native"}},
        {"functionResponse": {"name": "get_weather", "response": {"error": "boom"}}}]}


def test_first_unsigned_call_gets_the_documented_skip_signature() -> None:
    body = render_request(_history(
        Thinking(text="foreign", signature="sig-anthropic", origin="anthropic"),
        ToolCall(id="call_1", name="get_weather", arguments="{}"),
        ToolCall(id="call_2", name="get_time", arguments="{}")))
    parts = body["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == SKIP_SIGNATURE
    assert "thoughtSignature" not in parts[1]
    assert "foreign" not in json.dumps(body) and "sig-anthropic" not in json.dumps(body)


def test_trailing_signature_goes_back_on_the_last_part() -> None:
    body = render_request(_history(Thinking(text="thought text is not replayed"),
                                   Text(text="Hi there!"),
                                   Thinking(signature="TAIL", origin="gemini")))
    assert body["contents"][1] == {"role": "model", "parts": [
        {"text": "Hi there!", "thoughtSignature": "TAIL"}]}


def test_result_matched_by_position_when_its_id_is_unknown() -> None:
    body = render_request(_history(
        ToolCall(id="call_gemini_0123456789abcdef", name="get_weather", arguments="{}"),
        results=[ToolResult(call_id="renamed-by-client", content=[Text(text="18C")])]))
    fr = body["contents"][2]["parts"][0]["functionResponse"]
    assert fr["name"] == "get_weather" and fr["id"] == "renamed-by-client"


def test_result_for_no_call_is_a_clear_400() -> None:
    with pytest.raises(InvalidRequest, match="answers no tool call"):
        render_request(req(messages=[USER, Message(role="tool", content=[
            ToolResult(call_id="nope", content=[Text(text="x")])])]))


def test_media_parts() -> None:
    body = render_request(req(messages=[Message(role="user", content=[
        Image(data="iVBORw0KGgoAAAANSUhEUg"),
        Image(url="data:image/webp;base64,UklGRgAA"),
        Image(url="gs://bucket/cat.jpg"),
        Image(url="https://example.com/a.png?x=1"),
        File(url="gs://bucket/doc.pdf"),
        File(mime="application/pdf", data="JVBERi0xLjQ="),
        Text(text=""),  # empty text parts are refused by Vertex: dropped
    ])]))
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgoAAAANSUhEUg"}},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRgAA"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/cat.jpg"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png?x=1"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0xLjQ="}},
    ]
    with pytest.raises(InvalidRequest, match="file id"):
        render_request(req(messages=[Message(role="user", content=[File(file_id="file-abc")])]))


def test_images_returned_by_a_tool_follow_the_function_responses() -> None:
    call = ToolCall(id="c1", name="screenshot", arguments="{}")
    body = render_request(_history(call, results=[ToolResult(call_id="c1", content=[
        Text(text="here"), Image(mime="image/png", data="iVBORw0KGgo")])]))
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "screenshot", "response": {"output": "here"}, "id": "c1"}},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo"}}]


def test_gemini_opaque_parts_replay_and_others_do_not() -> None:
    body = render_request(_history(
        Opaque(dialect="gemini", data={"executableCode": {"language": "PYTHON", "code": "1"}}),
        Opaque(dialect="openai_responses", data={"type": "web_search_call"}),
        Text(text="done")))
    assert body["contents"][1]["parts"] == [
        {"executableCode": {"language": "PYTHON", "code": "1"}}, {"text": "done"}]


# --- non-stream answers ------------------------------------------------------------------------

ANSWER = {
    "candidates": [{
        "content": {"role": "model", "parts": [
            {"text": "Thinking about it", "thought": True},
            {"text": "Let me check."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
             "thoughtSignature": "SIG+/="},
            {"functionCall": {"name": "get_time", "args": {}, "id": "fc-gemini-2"}}]},
        "finishReason": "STOP", "index": 0, "safetyRatings": []}],
    "usageMetadata": {"promptTokenCount": 80, "cachedContentTokenCount": 64,
                      "candidatesTokenCount": 25, "thoughtsTokenCount": 6,
                      "toolUsePromptTokenCount": 2, "totalTokenCount": 113},
    "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"}


def test_parse_answer_with_calls_thinking_and_usage() -> None:
    r = parse_response(ANSWER, call_prefix="toolu_")
    assert r.stop_reason is StopReason.TOOL_USE  # Gemini says STOP
    assert r.model == "gemini-2.5-flash"
    th, text, sig, c1, c2 = r.content
    assert th == Thinking(text="Thinking about it")
    assert text == Text(text="Let me check.")
    # the signature sits right before the call it came on
    assert sig == Thinking(signature="SIG+/=", origin="gemini")
    assert isinstance(c1, ToolCall) and c1.name == "get_weather"
    assert c1.arguments == '{"city":"Paris"}' and c1.id.startswith("toolu_gemini_")
    assert is_synthesized(c1.id)
    assert c2 == ToolCall(id="fc-gemini-2", name="get_time", arguments="{}")
    assert r.usage == Usage(input_tokens=82, output_tokens=31, cached_tokens=64,
                            reasoning_tokens=6)


def test_signature_sits_before_its_call() -> None:
    r = parse_response({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "S1"}]},
        "finishReason": "STOP"}]})
    assert r.content[0] == Thinking(signature="S1", origin="gemini")
    assert isinstance(r.content[1], ToolCall)


def test_synthesized_ids_are_stable_for_one_answer_and_differ_between_calls() -> None:
    a = parse_response(ANSWER).tool_calls()
    b = parse_response(ANSWER).tool_calls()
    assert a[0].id == b[0].id and a[0].id != a[1].id
    other = parse_response({**ANSWER, "responseId": "resp-2"}).tool_calls()
    assert other[0].id != a[0].id


def test_custom_tool_calls_are_unwrapped() -> None:
    r = parse_response({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin Patch"}}}]},
        "finishReason": "STOP"}]}, custom_tools={"apply_patch"})
    assert r.content[-1] == ToolCall(id=r.content[-1].id, name="apply_patch",  # type: ignore[union-attr]
                                     arguments="*** Begin Patch", kind="custom")


@pytest.mark.parametrize(("reason", "calls", "want"), [
    ("STOP", False, StopReason.END_TURN), ("STOP", True, StopReason.TOOL_USE),
    ("MAX_TOKENS", False, StopReason.MAX_TOKENS), ("SAFETY", False, StopReason.CONTENT_FILTER),
    ("RECITATION", False, StopReason.CONTENT_FILTER),
    ("PROHIBITED_CONTENT", False, StopReason.CONTENT_FILTER),
    ("IMAGE_SAFETY", False, StopReason.CONTENT_FILTER),
    ("MALFORMED_FUNCTION_CALL", False, StopReason.ERROR),
    ("MISSING_THOUGHT_SIGNATURE", True, StopReason.ERROR),
    ("LANGUAGE", False, StopReason.END_TURN), ("OTHER", False, StopReason.END_TURN),
    ("SOMETHING_NEW", False, StopReason.END_TURN),
])
def test_finish_reasons(reason: str, calls: bool, want: StopReason) -> None:
    parts: list[dict[str, Any]] = [{"text": "x"}]
    if calls:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    r = parse_response({"candidates": [{"content": {"parts": parts}, "finishReason": reason}]})
    assert r.stop_reason is want


def test_blocked_prompt_is_a_content_filter_stop() -> None:
    r = parse_response({"promptFeedback": {"blockReason": "SAFETY"},
                        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}})
    assert r.content == [] and r.stop_reason is StopReason.CONTENT_FILTER
    assert r.usage.input_tokens == 5


@pytest.mark.parametrize("body", [[], "x", {"usageMetadata": {}}, {"candidates": []}])
def test_answer_without_candidates_is_an_upstream_error(body: Any) -> None:
    with pytest.raises(UpstreamError):
        parse_response(body)


# --- streams ---------------------------------------------------------------------------------------


def stream(raw: bytes) -> list[StreamEvent]:
    """Decode SSE bytes (split at every byte, the worst case) and parse them."""
    dec, parser = SseDecoder(), StreamParser()
    out: list[StreamEvent] = []
    for i in range(len(raw)):
        for name, data in dec.feed(raw[i:i + 1]):
            out += parser.feed(name, data)
    for name, data in dec.close():
        out += parser.feed(name, data)
    return out + parser.close()


def frame(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\r\n\r\n"


def test_stream_with_thoughts_calls_and_trailing_signature() -> None:
    raw = b"".join([
        frame({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Hmm", "thought": True}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "responseId": "r9"}),
        frame({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Hel"}]}, "index": 0}], "responseId": "r9"}),
        frame({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "lo"}]}, "index": 0}], "responseId": "r9"}),
        frame({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "", "thoughtSignature": "TAIL"}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 2,
                              "thoughtsTokenCount": 5, "totalTokenCount": 16},
            "responseId": "r9"}),
    ])
    evs = stream(raw)
    assert evs == [
        ThinkingDelta(text="Hmm"), UsageUpdate(usage=Usage(input_tokens=9)),
        TextDelta(text="Hel"), TextDelta(text="lo"),
        ThinkingEnd(signature="TAIL", origin="gemini"),
        UsageUpdate(usage=Usage(input_tokens=9, output_tokens=7, reasoning_tokens=5)),
        Finish(stop_reason=StopReason.END_TURN)]
    r = collect(evs, "x", "m")
    assert r.content == [Thinking(text="Hmm"), Text(text="Hello"),
                         Thinking(signature="TAIL", origin="gemini")]


def test_stream_calls_arrive_whole() -> None:
    evs = stream(frame({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "c7"}}]},
        "finishReason": "STOP"}]}))
    assert evs == [ToolCallStart(id="c7", name="get_weather"),
                   ToolCallDelta(id="c7", arguments='{"city":"Paris"}'), ToolCallEnd(id="c7"),
                   Finish(stop_reason=StopReason.TOOL_USE)]


def test_stream_without_finish_reason_is_a_cut() -> None:
    evs = stream(frame({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}))
    assert evs[0] == TextDelta(text="Hel")
    assert isinstance(evs[-1], StreamError) and isinstance(evs[-1].error, TransportError)


def test_stream_malformed_chunk_is_an_in_band_error() -> None:
    evs = stream(frame({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})
                 + b'data: {"candidates": [{\r\n\r\n'
                 + frame({"candidates": [{"content": {"parts": [{"text": "b"}]},
                                          "finishReason": "STOP"}]}))
    assert evs[0] == TextDelta(text="a")
    assert len(evs) == 2 and isinstance(evs[1], StreamError)
    assert isinstance(evs[1].error, UpstreamError) and "malformed" in evs[1].error.message


def test_stream_error_object_mid_stream() -> None:
    evs = stream(frame({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})
                 + frame({"error": {"code": 503, "message": "The model is overloaded.",
                                    "status": "UNAVAILABLE"}}))
    assert isinstance(evs[-1], StreamError) and isinstance(evs[-1].error, Overloaded)
    assert evs[-1].error.message == "The model is overloaded."


def test_stream_ignores_keepalives_and_done_markers() -> None:
    evs = stream(b": keep-alive\r\n\r\ndata: \r\n\r\ndata: [DONE]\r\n\r\n" + frame(
        {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "MAX_TOKENS"}]}))
    assert evs == [TextDelta(text="ok"), Finish(stop_reason=StopReason.MAX_TOKENS)]


def test_stream_blocked_prompt() -> None:
    evs = stream(frame({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}))
    assert evs == [Finish(stop_reason=StopReason.CONTENT_FILTER)]


# --- errors ----------------------------------------------------------------------------------------


def envelope(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = list(details)
    return json.dumps({"error": err}).encode()


def test_rate_limit_with_retry_info() -> None:
    err = parse_error(429, envelope(429, "RESOURCE_EXHAUSTED", "quota", {
        "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37.5s"}))
    assert isinstance(err, RateLimited) and err.retry_after == 37.5 and err.status == 429


def test_bad_api_key_is_the_gateways_problem_not_the_clients() -> None:
    err = parse_error(400, envelope(400, "INVALID_ARGUMENT", "API key not valid.", {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}))
    assert isinstance(err, UpstreamError) and err.status == 502
    assert "credentials" in err.message


@pytest.mark.parametrize(("status", "gstatus", "message", "kind", "code"), [
    (400, "INVALID_ARGUMENT", "The input token count (1234567) exceeds the maximum number of "
     "tokens allowed (1048576).", ContextLengthExceeded, 400),
    (400, "INVALID_ARGUMENT", "Unknown name \"x\"", InvalidRequest, 400),
    (401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", UpstreamError,
     502),
    (403, "PERMISSION_DENIED", "denied", UpstreamError, 502),
    (404, "NOT_FOUND", "models/x is not found", NotFound, 404),
    (500, "INTERNAL", "An internal error has occurred.", UpstreamError, 502),
    (503, "UNAVAILABLE", "The model is overloaded.", Overloaded, 503),
])
def test_error_statuses(status: int, gstatus: str, message: str, kind: type,
                        code: int) -> None:
    err = parse_error(status, envelope(status, gstatus, message))
    assert type(err) is kind and err.status == code
    assert message in err.message


def test_error_envelope_in_an_array_and_non_json_bodies() -> None:
    arr = b"[" + envelope(429, "RESOURCE_EXHAUSTED", "slow down") + b"]"
    assert isinstance(parse_error(429, arr), RateLimited)
    html = parse_error(413, b"<html><title>Error 413 (Request Entity Too Large)!!1</title>")
    assert isinstance(html, RequestTooLarge) and "413" in html.message
