"""OpenAI Chat dialect, egress: upstream requests, responses, streams and errors."""

from __future__ import annotations

import json
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
    Overloaded,
    RateLimited,
    Reasoning,
    RedactedThinking,
    Refusal,
    RefusalDelta,
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
from dragoman.dialects.openai_chat import (
    StreamParser,
    parse_error,
    parse_request,
    parse_response,
    render_request,
)

# --- render_request -------------------------------------------------------------------------


def test_minimal_request() -> None:
    body = render_request(
        ChatRequest(model="gpt-4o", messages=[Message(role="user", content=[Text(text="hi")])])
    )
    assert body == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_system_thinking_tools_and_results() -> None:
    req = ChatRequest(
        model="gpt-4o",
        system=[Text(text="You are terse."), Text(text="Really.")],
        messages=[
            Message(
                role="user",
                content=[Text(text="weather?"), Image(mime="image/png", data="AAAA", detail="low")],
            ),
            Message(
                role="assistant",
                content=[
                    Thinking(text="let me think", signature="sig", origin="anthropic"),
                    RedactedThinking(data="zz", origin="anthropic"),
                    Text(text="Checking."),
                    ToolCall(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}'),
                    ToolCall(id="toolu_2", name="apply_patch", arguments="raw", kind="custom"),
                    Opaque(dialect="anthropic_messages", data={"type": "server_tool_use"}),
                ],
            ),
            Message(
                role="tool",
                content=[
                    ToolResult(call_id="toolu_1", content=[Text(text="18C")]),
                    ToolResult(
                        call_id="toolu_2",
                        content=[Text(text="done"), Text(text="!")],
                        kind="custom",
                    ),
                ],
            ),
        ],
        tools=[
            Tool(
                name="get_weather",
                description="d",
                parameters={"type": "object"},
                strict=False,
                namespace="ns",
            ),
            Tool(name="apply_patch", kind="custom", format={"type": "text"}),
        ],
        hosted_tools=[HostedTool(dialect="openai_responses", data={"type": "web_search"})],
        tool_choice=ToolChoice(mode="tool", name="apply_patch"),
        parallel_tool_calls=False,
        max_tokens=1000,
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        stop=["END"],
        seed=3,
        user="u",
        metadata={"user_id": "x"},
        reasoning=Reasoning(mode="enabled", budget_tokens=5000),
        store=True,
        previous_response_id="resp_1",
        dialect="anthropic_messages",
        extra={"top_k": 40, "service_tier": "x"},
    )
    body = render_request(req)
    assert body["messages"] == [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "Really."},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "weather?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "custom",
                    "custom": {"name": "apply_patch", "input": "raw"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {
            "role": "tool",
            "tool_call_id": "toolu_2",
            "content": [{"type": "text", "text": "done"}, {"type": "text", "text": "!"}],
        },
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": False,
            },
        },
        {"type": "custom", "custom": {"name": "apply_patch", "format": {"type": "text"}}},
    ]
    assert body["tool_choice"] == {"type": "custom", "custom": {"name": "apply_patch"}}
    assert body["parallel_tool_calls"] is False
    assert body["max_completion_tokens"] == 1000 and "max_tokens" not in body
    assert body["reasoning_effort"] == "medium"
    for absent in (
        "top_k",
        "store",
        "previous_response_id",
        "metadata",
        "service_tier",
        "stream",
        "stream_options",
    ):
        assert absent not in body  # other dialect: extra and gateway-level fields stay home
    assert (body["temperature"], body["top_p"], body["stop"], body["seed"], body["user"]) == (
        0.5,
        0.9,
        ["END"],
        3,
        "u",
    )


def test_streaming_always_asks_for_usage() -> None:
    body = render_request(ChatRequest(model="m", stream=True, include_usage=False))
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_same_dialect_extra_is_forwarded_without_overriding() -> None:
    req = parse_request(
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "stream_options": {"include_usage": False, "include_obfuscation": False},
            "presence_penalty": 0.3,
            "logprobs": True,
            "store": True,
            "metadata": {"a": "b"},
            "tools": [{"type": "web_search_preview", "x": 1}],
        }
    )
    req.extra = {**(req.extra or {}), "model": "evil"}
    body = render_request(req)
    assert body["model"] == "gpt-4o"
    assert body["presence_penalty"] == 0.3 and body["logprobs"] is True and body["store"] is True
    assert body["metadata"] == {"a": "b"}
    assert body["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert body["tools"] == [{"type": "web_search_preview", "x": 1}]


def test_tool_choice_and_parallel_need_tools() -> None:
    body = render_request(
        ChatRequest(model="m", tool_choice=ToolChoice(mode="required"), parallel_tool_calls=True)
    )
    assert "tool_choice" not in body and "parallel_tool_calls" not in body
    tools = [Tool(name="a"), Tool(name="b", kind="custom")]
    allowed = render_request(
        ChatRequest(model="m", tools=tools, tool_choice=ToolChoice(mode="auto", allowed=["a", "b"]))
    )
    assert allowed["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "auto",
            "tools": [
                {"type": "function", "function": {"name": "a"}},
                {"type": "custom", "custom": {"name": "b"}},
            ],
        },
    }
    for mode in ("auto", "none", "required"):
        assert (
            render_request(ChatRequest(model="m", tools=tools, tool_choice=ToolChoice(mode=mode)))[
                "tool_choice"
            ]
            == mode
        )  # type: ignore[arg-type]


def test_tool_result_images_and_errors_become_text() -> None:
    body = render_request(
        ChatRequest(
            model="m",
            messages=[
                Message(
                    role="tool",
                    content=[
                        ToolResult(
                            call_id="c1",
                            content=[
                                Text(text="shot:"),
                                Image(mime="image/png", data="AAAA"),
                                Image(url="https://x/y.png"),
                                File(filename="r.pdf", mime="application/pdf", data="AA"),
                            ],
                        ),
                        ToolResult(call_id="c2", content=[Text(text="boom")], is_error=True),
                        ToolResult(call_id="c3", is_error=True),
                        ToolResult(call_id="c4"),
                    ],
                )
            ],
        )
    )
    assert body["messages"] == [
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": [
                {"type": "text", "text": "shot:"},
                {"type": "text", "text": "[image omitted: image/png]"},
                {"type": "text", "text": "[image: https://x/y.png]"},
                {"type": "text", "text": "[file omitted: r.pdf]"},
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "Error: boom"},
        {"role": "tool", "tool_call_id": "c3", "content": "Error"},
        {"role": "tool", "tool_call_id": "c4", "content": ""},
    ]


def test_non_canonical_tool_results_in_user_message_go_first() -> None:
    body = render_request(
        ChatRequest(
            model="m",
            messages=[
                Message(
                    role="user",
                    content=[ToolResult(call_id="c1", content=[Text(text="r")]), Text(text="next")],
                )
            ],
        )
    )
    assert body["messages"] == [
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
        {"role": "user", "content": "next"},
    ]


def test_files_and_own_opaque_parts() -> None:
    body = render_request(
        ChatRequest(
            model="m",
            messages=[
                Message(
                    role="user",
                    content=[
                        File(mime="application/pdf", data="JVBE", filename="a.pdf"),
                        File(file_id="file-1"),
                        File(data="raw64"),
                        File(url="https://x/doc.pdf"),
                        Opaque(
                            dialect="openai_chat", data={"type": "input_audio", "input_audio": {}}
                        ),
                        Opaque(dialect="anthropic_messages", data={"type": "x"}),
                    ],
                )
            ],
        )
    )
    assert body["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
        },
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "file", "file": {"file_data": "raw64"}},
        {"type": "text", "text": "[document: https://x/doc.pdf]"},
        {"type": "input_audio", "input_audio": {}},
    ]


def test_response_format_and_reasoning_forms() -> None:
    rf = render_request(
        ChatRequest(
            model="m", response_format=ResponseFormat(type="json_schema", schema={"type": "object"})
        )
    )["response_format"]
    assert rf == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object"}},
    }
    assert render_request(
        ChatRequest(model="m", response_format=ResponseFormat(type="json_object"))
    )["response_format"] == {"type": "json_object"}
    assert "reasoning_effort" not in render_request(
        ChatRequest(model="m", reasoning=Reasoning(mode="adaptive"))
    )
    assert "reasoning_effort" not in render_request(
        ChatRequest(model="m", reasoning=Reasoning(mode="disabled", budget_tokens=2000))
    )
    assert (
        render_request(ChatRequest(model="m", reasoning=Reasoning(effort="none")))[
            "reasoning_effort"
        ]
        == "none"
    )


def test_assistant_without_anything_sends_empty_string() -> None:
    body = render_request(
        ChatRequest(
            model="m",
            messages=[
                Message(role="assistant", content=[Thinking(text="only thoughts")], name="bot")
            ],
        )
    )
    assert body["messages"] == [{"role": "assistant", "content": "", "name": "bot"}]


# --- parse_response -------------------------------------------------------------------------


def test_parse_openai_tool_call_response() -> None:
    body = {
        "id": "chatcmpl-9x",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_abc",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "annotations": [],
                    "tool_calls": [
                        {
                            "id": "call_a1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 82,
            "completion_tokens": 18,
            "total_tokens": 100,
            "prompt_tokens_details": {"cached_tokens": 5, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }
    resp = parse_response(body)
    assert (
        resp.id == "chatcmpl-9x"
        and resp.model == "gpt-4o-2024-08-06"
        and resp.created == 1741569952
    )
    assert resp.content == [
        ToolCall(id="call_a1", name="get_weather", arguments='{"city":"Paris"}')
    ]
    assert resp.stop_reason is StopReason.TOOL_USE
    assert resp.usage == Usage(
        input_tokens=82, output_tokens=18, cached_tokens=5, reasoning_tokens=2
    )


@pytest.mark.parametrize(
    ("message", "finish", "content", "reason"),
    [
        ({"content": "hi"}, "stop", [Text(text="hi")], StopReason.END_TURN),
        ({"content": "hi"}, "length", [Text(text="hi")], StopReason.MAX_TOKENS),
        ({"content": "hi"}, "model_length", [Text(text="hi")], StopReason.MAX_TOKENS),
        ({"content": ""}, "content_filter", [], StopReason.CONTENT_FILTER),
        ({"content": None, "refusal": "no"}, "stop", [Refusal(text="no")], StopReason.REFUSAL),
        ({"content": "x"}, None, [Text(text="x")], StopReason.END_TURN),
        ({"content": "x"}, "weird", [Text(text="x")], StopReason.END_TURN),
        ({"content": "x"}, "error", [Text(text="x")], StopReason.ERROR),
        (
            {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            "stop",
            [Text(text="ab")],
            StopReason.END_TURN,
        ),
        (
            {"content": "x", "reasoning_content": "think"},
            "stop",
            [Thinking(text="think"), Text(text="x")],
            StopReason.END_TURN,
        ),
        (
            {"content": "x", "reasoning": "think"},
            "stop",
            [Thinking(text="think"), Text(text="x")],
            StopReason.END_TURN,
        ),
        # forced named function: OpenAI says "stop" although the turn is a tool call
        (
            {
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]
            },
            "stop",
            [ToolCall(id="c", name="f", arguments="{}")],
            StopReason.TOOL_USE,
        ),
        (
            {
                "tool_calls": [
                    {"id": "c", "type": "custom", "custom": {"name": "p", "input": "raw"}}
                ]
            },
            "tool_calls",
            [ToolCall(id="c", name="p", arguments="raw", kind="custom")],
            StopReason.TOOL_USE,
        ),
    ],
)
def test_parse_response_variants(
    message: dict[str, Any], finish: Any, content: list[Any], reason: StopReason
) -> None:
    resp = parse_response(
        {
            "id": "x",
            "model": "m",
            "choices": [
                {"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}}
            ],
        }
    )
    assert resp.content == content
    assert resp.stop_reason is reason
    assert resp.usage == Usage()


def test_parse_response_deprecated_function_call_and_garbage() -> None:
    resp = parse_response(
        {
            "choices": [
                {
                    "finish_reason": "function_call",
                    "message": {"function_call": {"name": "f", "arguments": "{}"}},
                }
            ]
        }
    )
    call = resp.content[0]
    assert isinstance(call, ToolCall) and call.name == "f" and call.id.startswith("call_")
    assert resp.stop_reason is StopReason.TOOL_USE
    weird = parse_response({"choices": "x", "usage": {"prompt_tokens": "many"}, "created": True})
    assert weird.content == [] and weird.usage == Usage() and weird.created == 0
    with pytest.raises(UpstreamError):
        parse_response([1])
    with pytest.raises(RateLimited):
        parse_response(
            {"error": {"message": "slow", "type": "requests", "code": "rate_limit_exceeded"}}
        )


# --- StreamParser ---------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **kw: Any) -> str:
    c: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
    }
    c["choices"] = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
    )
    c.update(kw)
    return json.dumps(c)


def parse(datas: list[str], close: bool = True) -> list[StreamEvent]:
    p = StreamParser()
    out: list[StreamEvent] = []
    for d in datas:
        out.extend(p.feed(None, d))
    if close:
        out.extend(p.close())
    return out


USAGE_JSON = {
    "prompt_tokens": 82,
    "completion_tokens": 31,
    "total_tokens": 113,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}


def test_protocol_example_stream() -> None:
    events = parse(
        [
            chunk({"role": "assistant", "content": "", "refusal": None}, usage=None),
            chunk({"content": "Checking"}, usage=None),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                },
                usage=None,
            ),
            chunk(
                {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, usage=None
            ),
            chunk(
                {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, usage=None
            ),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b2",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        }
                    ]
                },
                usage=None,
            ),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, usage=None),
            chunk({}, "tool_calls", usage=None),
            chunk(None, usage=USAGE_JSON),
            "[DONE]",
        ]
    )
    assert events == [
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


def test_finish_waits_for_done_so_late_usage_is_kept() -> None:
    p = StreamParser()
    assert p.feed(None, chunk({"content": "hi"})) == [TextDelta(text="hi")]
    assert p.feed(None, chunk({}, "stop")) == []
    assert p.feed(None, chunk(None, usage=USAGE_JSON)) == []
    assert p.feed(None, "[DONE]") == [
        UsageUpdate(usage=Usage(input_tokens=82, output_tokens=31)),
        Finish(stop_reason=StopReason.END_TURN),
    ]
    assert p.feed(None, chunk({"content": "late"})) == []
    assert p.close() == []


def test_usage_on_finish_chunk_last_wins_and_close_without_done() -> None:
    events = parse(
        [
            chunk({"content": "a"}, usage={"prompt_tokens": 1, "completion_tokens": 1}),
            chunk({}, "length", usage={"prompt_tokens": 5, "completion_tokens": 9}),
        ]
    )
    assert events[-2:] == [
        UsageUpdate(usage=Usage(input_tokens=5, output_tokens=9)),
        Finish(stop_reason=StopReason.MAX_TOKENS),
    ]


def test_truncated_stream_is_an_error() -> None:
    events = parse([chunk({"content": "a"})])
    assert events[0] == TextDelta(text="a")
    assert isinstance(events[-1], StreamError) and isinstance(events[-1].error, TransportError)
    assert "ended before completion" in events[-1].error.message


def test_azure_empty_first_chunk_and_unknown_keys() -> None:
    events = parse(
        [
            json.dumps(
                {
                    "id": "",
                    "object": "",
                    "created": 0,
                    "model": "",
                    "choices": [],
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                }
            ),
            chunk({"role": "assistant", "content": "ok", "weird": 1}, obfuscation="xx"),
            chunk({}, "stop"),
            "[DONE]",
        ]
    )
    assert events == [TextDelta(text="ok"), Finish()]


def test_reasoning_deltas_become_thinking() -> None:
    events = parse(
        [
            chunk({"reasoning_content": "hm"}),
            chunk({"reasoning": "m"}),
            chunk({"content": "ans"}),
            chunk({"reasoning_content": "again"}),
            chunk({}, "stop"),
            "[DONE]",
        ]
    )
    assert events == [
        ThinkingDelta(text="hm"),
        ThinkingDelta(text="m"),
        ThinkingEnd(),
        TextDelta(text="ans"),
        ThinkingDelta(text="again"),
        ThinkingEnd(),
        Finish(),
    ]
    assert collect(events, "x", "m").content == [
        Thinking(text="hmm"),
        Text(text="ans"),
        Thinking(text="again"),
    ]


def test_error_frame_is_stream_error() -> None:
    events = parse(
        [
            chunk({"content": "a"}),
            json.dumps(
                {
                    "error": {
                        "message": "overloaded",
                        "type": "server_error",
                        "code": "server_is_overloaded",
                    }
                }
            ),
            "[DONE]",
        ]
    )
    assert isinstance(events[-1], StreamError) and isinstance(events[-1].error, Overloaded)
    assert events[-1].error.message == "overloaded"


def test_malformed_chunk_is_stream_error() -> None:
    events = parse(["{not json"])
    assert len(events) == 1 and isinstance(events[0], StreamError)


def test_tool_call_name_in_later_fragment_and_missing_ids() -> None:
    events = parse(
        [
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_x",
                            "type": "function",
                            "function": {"arguments": '{"a"'},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]}),
            chunk({"tool_calls": [{"index": 1, "function": {"name": "g", "arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    assert events[:4] == [
        ToolCallStart(id="call_x", name="f"),
        ToolCallDelta(id="call_x", arguments='{"a"'),
        ToolCallDelta(id="call_x", arguments=":1}"),
        ToolCallEnd(id="call_x"),
    ]
    start = events[4]
    assert isinstance(start, ToolCallStart) and start.name == "g" and start.id.startswith("call_")
    resp = collect(events, "x", "m")
    assert [(c.name, c.arguments) for c in resp.tool_calls()] == [("f", '{"a":1}'), ("g", "{}")]


def test_servers_without_index_send_whole_calls() -> None:
    events = parse(
        [
            chunk(
                {
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "b",
                            "type": "function",
                            "function": {"name": "g", "arguments": '{"x":1}'},
                        },
                    ]
                }
            ),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    resp = collect(events, "x", "m")
    assert resp.tool_calls() == [
        ToolCall(id="a", name="f", arguments="{}"),
        ToolCall(id="b", name="g", arguments='{"x":1}'),
    ]


def test_custom_tool_call_fragments() -> None:
    events = parse(
        [
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_p",
                            "type": "custom",
                            "custom": {"name": "apply_patch", "input": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "custom": {"input": "*** Begin"}}]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    assert events[:3] == [
        ToolCallStart(id="call_p", name="apply_patch", kind="custom"),
        ToolCallDelta(id="call_p", arguments="*** Begin"),
        ToolCallEnd(id="call_p"),
    ]


def test_refusal_deltas() -> None:
    events = parse([chunk({"refusal": "I can't"}), chunk({}, "stop"), "[DONE]"])
    assert events == [RefusalDelta(text="I can't"), Finish(stop_reason=StopReason.REFUSAL)]


def test_done_without_finish_reason_finishes() -> None:
    assert parse([chunk({"content": "a"}), "[DONE]"])[-1] == Finish()


def test_ignores_other_choices_and_non_objects() -> None:
    p = StreamParser()
    assert p.feed(None, json.dumps({"choices": [{"index": 1, "delta": {"content": "no"}}]})) == []
    assert p.feed(None, "[1, 2]") == []
    assert p.feed(None, "   ") == []
    assert p.feed("message", chunk({"content": "yes"})) == [TextDelta(text="yes")]


# --- parse_error ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (
            429,
            {
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            RateLimited,
            "Rate limit reached",
        ),
        (
            400,
            {
                "error": {
                    "message": "too long",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                    "param": "messages",
                }
            },
            ContextLengthExceeded,
            "too long",
        ),
        (
            400,
            {
                "error": {
                    "message": "bad temp",
                    "type": "invalid_request_error",
                    "param": "temperature",
                    "code": None,
                }
            },
            InvalidRequest,
            "bad temp",
        ),
        (404, {"error": {"message": "no model", "code": "model_not_found"}}, NotFound, "no model"),
        (401, {"error": {"message": "Incorrect API key"}}, UpstreamError, "Incorrect API key"),
        (503, {"error": {"message": "busy"}}, Overloaded, "busy"),
        (504, {"error": "gateway timeout"}, UpstreamTimeout, "gateway timeout"),
        (
            400,
            {"object": "error", "message": "vllm says no", "code": 400},
            InvalidRequest,
            "vllm says no",
        ),
    ],
)
def test_parse_error(status: int, body: Any, cls: type, message: str) -> None:
    err = parse_error(status, json.dumps(body).encode())
    assert type(err) is cls
    assert message in err.message


def test_parse_error_keeps_param_and_code() -> None:
    err = parse_error(
        400,
        b'{"error":{"message":"m","type":"invalid_request_error",'
        b'"param":"tools[0]","code":"invalid_value"}}',
    )
    assert err.param == "tools[0]" and err.code == "invalid_value" and err.status == 400


def test_parse_error_non_json_uses_short_excerpt() -> None:
    err = parse_error(502, b"<html>" + b"x" * 5000 + b"</html>")
    assert isinstance(err, UpstreamError)
    assert err.message.startswith("upstream returned HTTP 502: <html>xxx")
    assert len(err.message) <= 300
    assert parse_error(500, b"").message == "upstream returned HTTP 500"
    assert isinstance(parse_error(500, b"\xff\xfe"), UpstreamError)


def test_servers_without_index_stream_a_call_across_chunks() -> None:
    events = parse(
        [
            chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}),
            chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
            chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "["}}]}),
            chunk({"tool_calls": [{"function": {"arguments": "]"}}]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    assert collect(events, "x", "m").tool_calls() == [
        ToolCall(id="a", name="f", arguments="{}"),
        ToolCall(id="b", name="g", arguments="[]"),
    ]


def test_interleaved_fragments_for_a_closed_call_are_still_forwarded() -> None:
    events = parse(
        [
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ]
    )
    assert ToolCallDelta(id="a", arguments="}") in events
    assert events.index(ToolCallDelta(id="a", arguments="}")) > events.index(ToolCallEnd(id="a"))
