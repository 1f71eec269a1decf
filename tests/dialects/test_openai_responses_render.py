"""OpenAI Responses dialect, ingress rendering: Response objects, SSE streams, errors.

Everything rendered is validated with the official SDK's pydantic models.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from openai.types.responses import Response, ResponseItem, ResponseStreamEvent

from dragoman.core import (
    AgentToolCall,
    AgentToolResult,
    AuthenticationFailed,
    BudgetExhausted,
    ChatRequest,
    ChatResponse,
    ContextLengthExceeded,
    File,
    Finish,
    Image,
    InvalidRequest,
    Message,
    NotFound,
    Opaque,
    OpaqueItem,
    Overloaded,
    RateLimited,
    RedactedThinking,
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
    ToolResult,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    UsageUpdate,
)
from dragoman.dialects.contract import RenderContext
from dragoman.dialects.openai_responses import (
    StreamRenderer,
    parse_request,
    render_error,
    render_input_items,
    render_response,
    render_response_object,
)
from dragoman.dialects.openai_responses.items import item_id

EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
ITEM = pydantic.TypeAdapter(ResponseItem)
USAGE = Usage(input_tokens=36, output_tokens=87, cached_tokens=4, reasoning_tokens=64)

CLIENT_REQ = parse_request({
    "model": "gpt-test", "instructions": "Be terse.", "input": "hi",
    "tools": [
        {"type": "function", "name": "get_weather", "description": "Weather.", "strict": False,
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"type": "namespace", "name": "agents", "description": "Sub-agents.", "tools": [
            {"type": "function", "name": "spawn", "strict": False,
             "parameters": {"type": "object", "properties": {}}}]},
        {"type": "custom", "name": "apply_patch", "description": "Patch.",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
        {"type": "web_search"},
    ],
    "reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 500,
    "temperature": 0.2, "store": False, "metadata": {"k": "v"},
    "text": {"verbosity": "low"}, "prompt_cache_key": "pck", "truncation": "auto",
})


def ctx(request: ChatRequest | None = CLIENT_REQ) -> RenderContext:
    return RenderContext(id="resp_abc", model="gpt-test", created=1741476542, request=request)


def frames(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[6:])
        assert data["type"] == event_line[7:]
        out.append((event_line[7:], data))
    return out


def run(events: list[StreamEvent], request: ChatRequest | None = CLIENT_REQ
        ) -> list[tuple[str, dict[str, Any]]]:
    r = StreamRenderer(ctx(request))
    raw = r.start() + b"".join(r.feed(e) for e in events)
    out = frames(raw)
    for i, (_, data) in enumerate(out):
        assert data["sequence_number"] == i
        EVENT.validate_python(data)
    return out


# --- non-stream -------------------------------------------------------------------------------


def test_full_response_object_validates_and_echoes_the_request() -> None:
    resp = ChatResponse(id="x", model="ignored", content=[
        Thinking(text="plan", signature="enc", origin="openai", id="rs_up"),
        Text(text="Hi!"), Text(text=" more"),
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(id="call_2", name="spawn", arguments="{}"),
        ToolCall(id="call_3", name="apply_patch", arguments="*** Begin Patch", kind="custom"),
        Opaque(dialect="openai_responses", data={"type": "web_search_call", "id": "ws_1",
                                                 "status": "completed",
                                                 "action": {"type": "search", "query": "q"}}),
        Opaque(dialect="anthropic_messages", data={"type": "server_tool_use"}),
        RedactedThinking(data="xx", origin="anthropic"),
    ], stop_reason=StopReason.TOOL_USE, usage=USAGE)
    body = json.loads(render_response(resp, ctx()))
    r = Response.model_validate(body)
    assert r.id == "resp_abc" and r.object == "response" and r.status == "completed"
    assert r.created_at == 1741476542 and r.model == "gpt-test"
    assert r.output_text == "Hi! more"
    out = body["output"]
    assert [o["type"] for o in out] == ["reasoning", "message", "function_call", "function_call",
                                         "custom_tool_call", "web_search_call"]
    # every item id is the response's own (items.item_id), an upstream's rs_ id included
    assert out[0] == {"type": "reasoning", "id": item_id("rs_", "resp_abc", "output", 0),
                      "summary": [{"type": "summary_text", "text": "plan"}],
                      "encrypted_content": "enc", "status": "completed"}
    assert out[1]["content"] == [
        {"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": []},
        {"type": "output_text", "text": " more", "annotations": [], "logprobs": []}]
    assert out[1]["id"] == item_id("msg_", "resp_abc", "output", 1)
    assert out[2]["id"] == item_id("fc_", "resp_abc", "output", 2) and out[2]["call_id"] == "call_1"
    assert out[2]["status"] == "completed" and "namespace" not in out[2]
    assert out[3]["namespace"] == "agents"
    assert out[4]["input"] == "*** Begin Patch" and out[4]["call_id"] == "call_3"
    assert body["usage"] == {"input_tokens": 36, "output_tokens": 87, "total_tokens": 123,
                             "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
                             "output_tokens_details": {"reasoning_tokens": 64}}
    # echoed settings
    assert body["instructions"] == "Be terse." and body["max_output_tokens"] == 500
    assert body["temperature"] == 0.2 and body["top_p"] == 1.0
    assert body["store"] is False and body["metadata"] == {"k": "v"}
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert body["truncation"] == "auto" and body["prompt_cache_key"] == "pck"
    assert [t["type"] for t in body["tools"]] == ["function", "namespace", "custom", "web_search"]
    assert body["tools"][1]["tools"][0]["name"] == "spawn"
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
    assert "output_text" not in body


def test_defaults_without_request_and_foreign_signatures() -> None:
    resp = ChatResponse(id="x", model="m", content=[
        Thinking(text="", signature="anthropic-sig", origin="anthropic", id="th_1"),
        Text(text="ok")])
    body = render_response_object(resp, ctx(None))
    Response.model_validate(body)
    first = body["output"][0]
    assert first["id"].startswith("rs_") and "encrypted_content" not in first
    assert body["output"][0]["summary"] == []
    assert body["tools"] == [] and body["tool_choice"] == "auto" and body["store"] is True
    assert body["usage"]["total_tokens"] == 0


@pytest.mark.parametrize(("stop", "status", "reason"), [
    (StopReason.END_TURN, "completed", None),
    (StopReason.STOP_SEQUENCE, "completed", None),
    (StopReason.MAX_TOKENS, "incomplete", "max_output_tokens"),
    (StopReason.MAX_STEPS, "incomplete", "max_output_tokens"),
    (StopReason.CONTENT_FILTER, "incomplete", "content_filter"),
    (StopReason.ERROR, "failed", None),
])
def test_status_per_stop_reason(stop: StopReason, status: str, reason: str | None) -> None:
    body = json.loads(render_response(ChatResponse(id="x", model="m", content=[Text(text="a")],
                                                   stop_reason=stop), ctx()))
    Response.model_validate(body)
    assert body["status"] == status
    assert body["incomplete_details"] == ({"reason": reason} if reason else None)
    assert (body["error"] is not None) == (status == "failed")


def test_refusal_renders_a_refusal_part() -> None:
    body = render_response_object(ChatResponse(id="x", model="m", content=[
        Text(text="I can't help with that.")], stop_reason=StopReason.REFUSAL), ctx())
    Response.model_validate(body)
    assert body["output"][0]["content"] == [{"type": "refusal",
                                             "refusal": "I can't help with that."}]


def test_status_override_for_stored_objects() -> None:
    body = render_response_object(ChatResponse(id="x", model="m"), ctx(), status="cancelled")
    Response.model_validate(body)
    assert body["status"] == "cancelled"


def test_json_schema_format_is_echoed_flat() -> None:
    req = parse_request({"model": "m", "input": "x", "text": {"format": {
        "type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}},
        "tool_choice": {"type": "allowed_tools", "mode": "auto",
                        "tools": [{"type": "custom", "name": "apply_patch"}]},
        "tools": [{"type": "custom", "name": "apply_patch"}]})
    body = render_response_object(ChatResponse(id="x", model="m"), ctx(req))
    Response.model_validate(body)
    assert body["text"] == {"format": {"type": "json_schema", "name": "answer",
                                       "schema": {"type": "object"}, "strict": True}}
    assert body["tool_choice"] == {"type": "allowed_tools", "mode": "auto",
                                   "tools": [{"type": "custom", "name": "apply_patch"}]}


# --- input items listing ----------------------------------------------------------------------


def test_input_items_listing_validates() -> None:
    items = render_input_items([
        Message(role="developer", content=[Text(text="rules")]),
        Message(role="user", content=[Text(text="look"), Image(mime="image/png", data="AAAA"),
                                      File(file_id="file-1", filename="a.pdf")]),
        Message(role="assistant", content=[
            Thinking(text="t", signature="enc", origin="openai", id="rs_9"),
            Text(text="calling"), ToolCall(id="call_1", name="f", arguments="{}"),
            ToolCall(id="call_2", name="p", arguments="raw", kind="custom"),
            Opaque(dialect="openai_responses", data={
                "type": "local_shell_call", "call_id": "c3", "status": "completed",
                "action": {"type": "exec", "command": ["ls"], "env": {}}})]),
        Message(role="tool", content=[
            ToolResult(call_id="call_1", content=[Text(text="42")]),
            ToolResult(call_id="call_2", content=[Text(text="ok")], kind="custom")]),
    ], "resp_abc")
    for item in items:
        ITEM.validate_python(item)
        assert item["id"]
    assert [i["type"] for i in items] == [
        "message", "message", "reasoning", "message", "function_call", "custom_tool_call",
        "local_shell_call", "function_call_output", "custom_tool_call_output"]
    assert items[1]["content"][1] == {"type": "input_image",
                                      "image_url": "data:image/png;base64,AAAA", "detail": "auto"}
    assert [i["id"] for i in items] == [
        item_id(prefix, "resp_abc", "input", n) for n, prefix in enumerate(
            ["msg_", "msg_", "rs_", "msg_", "fc_", "ctc_", "item_", "fco_", "ctco_"])]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("err", "status", "typ", "code"), [
    (InvalidRequest("bad", param="input"), 400, "invalid_request_error", None),
    (ContextLengthExceeded("long"), 400, "invalid_request_error", "context_length_exceeded"),
    (AuthenticationFailed("key"), 401, "invalid_request_error", "invalid_api_key"),
    (NotFound("nope"), 404, "invalid_request_error", None),
    (RateLimited("slow", retry_after=2.5), 429, "rate_limit_error", "rate_limit_exceeded"),
    (BudgetExhausted("broke"), 429, "insufficient_quota", "insufficient_quota"),
    (Overloaded("busy"), 503, "server_error", None),
    (UpstreamError("boom"), 502, "server_error", None),
    (UpstreamTimeout("late"), 504, "server_error", "timeout"),
    (InvalidRequest("teapot", status=418, code="x"), 418, "invalid_request_error", "x"),
])
def test_error_envelope(err: Any, status: int, typ: str, code: str | None) -> None:
    got_status, body = render_error(err)
    env = json.loads(body)["error"]
    assert got_status == status
    assert env["type"] == typ and env["code"] == code and env["param"] == err.param
    assert env["message"].startswith(err.message)
    if err.retry_after:
        assert "Please try again in 2.5s." in env["message"]


# --- streaming --------------------------------------------------------------------------------


def test_canonical_event_order() -> None:
    out = run([
        ThinkingDelta(text="**Plan**"), ThinkingDelta(text=" go"),
        ThinkingEnd(signature="enc", id="rs_up", origin="openai"),
        TextDelta(text="Hel"), TextDelta(text="lo"),
        ToolCallStart(id="call_1", name="get_weather"),
        ToolCallDelta(id="call_1", arguments='{"city":'),
        ToolCallDelta(id="call_1", arguments='"P"}'),
        ToolCallEnd(id="call_1"),
        UsageUpdate(usage=USAGE), Finish(stop_reason=StopReason.TOOL_USE),
    ])
    assert [t for t, _ in out] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    d = dict(enumerate(data for _, data in out))
    assert d[0]["response"]["status"] == "in_progress" and d[0]["response"]["output"] == []
    rs = d[8]["item"]
    assert rs["id"] == d[2]["item"]["id"] and rs["id"].startswith("rs_")
    assert rs["summary"] == [{"type": "summary_text", "text": "**Plan** go"}]
    assert rs["encrypted_content"] == "enc"
    assert d[6]["text"] == "**Plan** go"
    msg = d[15]["item"]
    assert d[9]["output_index"] == 1 and msg["id"] == d[9]["item"]["id"] == d[11]["item_id"]
    assert msg["status"] == "completed" and msg["content"][0]["text"] == "Hello"
    assert d[13]["text"] == "Hello" and d[14]["part"]["text"] == "Hello"
    fc_added, fc_done = d[16]["item"], d[20]["item"]
    assert fc_added["arguments"] == "" and fc_added["status"] == "in_progress"
    assert fc_done["arguments"] == '{"city":"P"}' and fc_done["status"] == "completed"
    assert fc_done["call_id"] == "call_1" and fc_done["id"] == fc_added["id"]
    assert d[19] == {"type": "response.function_call_arguments.done", "sequence_number": 19,
                     "item_id": fc_added["id"], "output_index": 2, "name": "get_weather",
                     "arguments": '{"city":"P"}'}
    final = d[21]["response"]
    assert final["status"] == "completed"
    assert final["output"] == [rs, msg, fc_done]
    assert final["usage"]["total_tokens"] == 123
    assert Response.model_validate(final).output_text == "Hello"


def test_every_added_gets_its_done_even_on_errors() -> None:
    out = run([TextDelta(text="a"), ToolCallStart(id="c", name="spawn"),
               ToolCallDelta(id="c", arguments="{"), ThinkingDelta(text="x"),
               StreamError(error=RateLimited("Rate limit reached.", retry_after=1.5))])
    added = [d["item"]["id"] for t, d in out if t == "response.output_item.added"]
    done = [d["item"]["id"] for t, d in out if t == "response.output_item.done"]
    assert sorted(added) == sorted(done) and len(added) == 3
    t, last = out[-1]
    assert t == "response.failed"
    assert last["response"]["status"] == "failed"
    assert last["response"]["error"] == {
        "code": "rate_limit_exceeded",
        "message": "Rate limit reached. Please try again in 1.5s."}
    assert len(last["response"]["output"]) == 3
    # the namespaced call names its namespace
    call = next(d["item"] for t, d in out if t == "response.output_item.added"
                and d["item"]["type"] == "function_call")
    assert call["namespace"] == "agents"


@pytest.mark.parametrize(("err", "code"), [
    (ContextLengthExceeded("too long"), "context_length_exceeded"),
    (InvalidRequest("bad image"), "invalid_prompt"),
    (InvalidRequest("bad image", code="invalid_image_url"), "invalid_image_url"),
    (UpstreamError("boom"), "server_error"),
    (BudgetExhausted("quota"), "insufficient_quota"),
])
def test_failed_codes(err: Any, code: str) -> None:
    r = StreamRenderer(ctx())
    r.start()
    f = frames(r.feed(StreamError(error=err)))
    assert f[-1][1]["response"]["error"]["code"] == code


@pytest.mark.parametrize(("stop", "terminal", "reason"), [
    (StopReason.MAX_TOKENS, "response.incomplete", "max_output_tokens"),
    (StopReason.MAX_STEPS, "response.incomplete", "max_output_tokens"),
    (StopReason.CONTENT_FILTER, "response.incomplete", "content_filter"),
    (StopReason.END_TURN, "response.completed", None),
    (StopReason.ERROR, "response.failed", None),
])
def test_terminal_event_per_stop_reason(stop: StopReason, terminal: str,
                                        reason: str | None) -> None:
    out = run([TextDelta(text="partial"), Finish(stop_reason=stop)])
    t, data = out[-1]
    assert t == terminal
    assert data["response"]["incomplete_details"] == ({"reason": reason} if reason else None)
    assert data["response"]["usage"]["total_tokens"] == 0
    assert [x for x, _ in out].count(terminal) == 1


def test_custom_tool_call_stream() -> None:
    out = run([ToolCallStart(id="call_p", name="apply_patch", kind="custom"),
               ToolCallDelta(id="call_p", arguments="*** Begin"),
               ToolCallDelta(id="call_p", arguments=" Patch"), ToolCallEnd(id="call_p"),
               Finish(stop_reason=StopReason.TOOL_USE)])
    assert [t for t, _ in out][2:] == [
        "response.output_item.added", "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done",
        "response.output_item.done", "response.completed"]
    assert out[5][1]["input"] == "*** Begin Patch"
    assert out[6][1]["item"] == {"id": out[2][1]["item"]["id"], "type": "custom_tool_call",
                                 "call_id": "call_p", "name": "apply_patch",
                                 "input": "*** Begin Patch"}


def test_interleaved_tool_calls_keep_their_indices() -> None:
    out = run([ToolCallStart(id="a", name="get_weather"), ToolCallStart(id="b", name="spawn"),
               ToolCallDelta(id="b", arguments="{}"), ToolCallDelta(id="a", arguments="{}"),
               ToolCallEnd(id="b"), ToolCallEnd(id="a"), Finish(stop_reason=StopReason.TOOL_USE)])
    idx = {d["item"]["call_id"]: d["output_index"] for t, d in out
           if t == "response.output_item.added"}
    assert idx == {"a": 0, "b": 1}
    final = out[-1][1]["response"]["output"]
    assert [o["call_id"] for o in final] == ["a", "b"]
    assert all(o["arguments"] == "{}" for o in final)


def test_opaque_items_and_ignored_events() -> None:
    ws = {"type": "web_search_call", "id": "ws_1", "status": "completed",
          "action": {"type": "search", "query": "q"}}
    out = run([StepStart(index=0), AgentToolCall(id="x", name="n"),
               AgentToolResult(id="x", name="n", result="r"),
               OpaqueItem(part=Opaque(dialect="openai_responses", data=ws)),
               OpaqueItem(part=Opaque(dialect="anthropic_messages", data={"type": "x"})),
               TextDelta(text=""), ThinkingDelta(text=""),
               Finish()])
    assert [t for t, _ in out] == ["response.created", "response.in_progress",
                                   "response.output_item.added", "response.output_item.done",
                                   "response.completed"]
    assert out[3][1]["item"] == ws and out[-1][1]["response"]["output"] == [ws]


def test_thinking_end_without_deltas_and_foreign_signature() -> None:
    out = run([ThinkingEnd(signature="enc", id="rs_given", origin="openai"),
               ThinkingDelta(text="hmm"), ThinkingEnd(signature="sig", origin="anthropic"),
               Finish()])
    done = [d["item"] for t, d in out if t == "response.output_item.done"]
    assert done[0] == {"id": item_id("rs_", "resp_abc", "output", 0), "type": "reasoning",
                       "summary": [],
                       "encrypted_content": "enc"}
    assert "encrypted_content" not in done[1] and done[1]["summary"][0]["text"] == "hmm"


def test_nothing_after_the_terminal_event() -> None:
    r = StreamRenderer(ctx())
    r.start()
    assert r.feed(Finish())
    assert r.feed(TextDelta(text="late")) == b""
    assert r.feed(StreamError(error=UpstreamError("x"))) == b""


def test_text_then_tool_closes_the_message_first() -> None:
    out = run([TextDelta(text="Let me check."), ToolCallStart(id="c", name="get_weather"),
               ToolCallEnd(id="c"), TextDelta(text="Done."), Finish()])
    types = [t for t, _ in out]
    first_fc = types.index("response.output_item.added", 3)
    assert types[first_fc - 1] == "response.output_item.done"
    msgs = [d["item"] for t, d in out if t == "response.output_item.done"
            and d["item"]["type"] == "message"]
    assert [m["content"][0]["text"] for m in msgs] == ["Let me check.", "Done."]


def test_emulated_custom_calls_become_custom_calls_again() -> None:
    """An upstream without custom tools calls the emulating function (one ``input``
    string); the client declared a custom tool, so it gets a custom_tool_call back."""
    wrapped = '{"input":"*** Begin Patch\\n*** End Patch"}'
    body = render_response_object(ChatResponse(id="x", model="m", content=[
        ToolCall(id="toolu_1", name="apply_patch", arguments=wrapped)],
        stop_reason=StopReason.TOOL_USE), ctx())
    Response.model_validate(body)
    item = body["output"][0]
    assert item["type"] == "custom_tool_call" and item["call_id"] == "toolu_1"
    assert item["input"] == "*** Begin Patch\n*** End Patch"

    out = run([ToolCallStart(id="toolu_1", name="apply_patch"),
               ToolCallDelta(id="toolu_1", arguments='{"input":"*** Begin'),
               ToolCallDelta(id="toolu_1", arguments=' Patch"}'), ToolCallEnd(id="toolu_1"),
               Finish(stop_reason=StopReason.TOOL_USE)])
    assert [t for t, _ in out][2:] == [
        "response.output_item.added", "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done", "response.output_item.done",
        "response.completed"]
    assert out[2][1]["item"]["type"] == "custom_tool_call"
    assert out[3][1]["delta"] == "*** Begin Patch"
    assert out[5][1]["item"]["input"] == "*** Begin Patch"
    # arguments that are not the wrapper stay as they are
    raw = render_response_object(ChatResponse(id="x", model="m", content=[
        ToolCall(id="c", name="apply_patch", arguments="not json")]), ctx())
    assert raw["output"][0]["input"] == "not json"


def test_the_sdk_stream_accumulator_accepts_the_stream() -> None:
    """``client.responses.stream()`` runs every event through this state machine (it
    asserts on indices and item types) and returns ``response.completed``'s object."""
    from openai import omit
    from openai.lib.streaming.responses._responses import ResponseStreamState

    out = run([ThinkingDelta(text="hm"), ThinkingEnd(signature="e", origin="openai"),
               TextDelta(text="Hel"), TextDelta(text="lo"),
               ToolCallStart(id="c1", name="get_weather"), ToolCallDelta(id="c1", arguments="{}"),
               ToolCallEnd(id="c1"), ToolCallStart(id="c2", name="apply_patch", kind="custom"),
               ToolCallDelta(id="c2", arguments="x"), ToolCallEnd(id="c2"),
               UsageUpdate(usage=USAGE), Finish(stop_reason=StopReason.TOOL_USE)])
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    emitted = []
    for _, data in out:
        emitted.extend(state.handle_event(EVENT.validate_python(data)))
    final = emitted[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Hello"
    assert [o.type for o in final.response.output] == [
        "reasoning", "message", "function_call", "custom_tool_call"]
    assert final.response.usage is not None and final.response.usage.total_tokens == 123
