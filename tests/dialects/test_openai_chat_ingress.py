"""OpenAI Chat dialect, ingress: parsing client requests into the neutral model."""

from __future__ import annotations

from typing import Any

import pytest

from dragoman.core import (
    File,
    HostedTool,
    Image,
    InvalidRequest,
    Message,
    Reasoning,
    Refusal,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from dragoman.dialects.openai_chat import DIALECT, parse_request

from .captures import captured_posts

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJ"
    "RU5ErkJggg=="
)


CAPTURED = [(i, body) for i, _, body in
            captured_posts(lambda path: path.endswith("/chat/completions"))]


@pytest.mark.parametrize(("scenario", "body"), CAPTURED, ids=[c[0] for c in CAPTURED])
def test_every_captured_client_request_parses(scenario: str, body: dict[str, Any]) -> None:
    req = parse_request(body)
    assert req.dialect == "openai_chat"
    assert req.model == body["model"]
    assert req.messages[0].role == "user"
    assert req.stream is bool(body.get("stream"))
    assert req.include_usage is bool(body.get("stream_options", {}).get("include_usage"))
    if "tools" in body:
        assert req.tools and req.tools[0].name == body["tools"][0]["function"]["name"]
        assert req.tools[0].parameters == body["tools"][0]["function"]["parameters"]
    if body.get("tool_choice") == "auto":
        assert req.tool_choice == ToolChoice(mode="auto")
    assert req.extra is None  # every field the clients send is mapped


def test_dialect_record() -> None:
    assert DIALECT.name == "openai_chat"
    assert DIALECT.id_prefix == "chatcmpl-"
    assert DIALECT.parse_request is parse_request


def _req(messages: list[Any], **kw: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": messages, **kw}


def test_roles_and_content_forms() -> None:
    req = parse_request(
        _req(
            [
                {"role": "developer", "content": "be brief"},
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    "name": "sys",
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                        {
                            "type": "file",
                            "file": {
                                "file_data": "data:application/pdf;base64,JVBERi0=",
                                "filename": "a.pdf",
                            },
                        },
                        {"type": "file", "file": {"file_id": "file-abc"}},
                    ],
                    "name": "bob",
                },
            ]
        )
    )
    assert req.messages == [
        Message(role="developer", content=[Text(text="be brief")]),
        Message(role="system", content=[Text(text="a"), Text(text="b")], name="sys"),
        Message(
            role="user",
            name="bob",
            content=[
                Text(text="look"),
                Image(mime="image/png", data=PNG, detail="high"),
                Image(url="https://example.com/cat.png"),
                File(mime="application/pdf", data="JVBERi0=", filename="a.pdf"),
                File(file_id="file-abc"),
            ],
        ),
    ]
    assert req.system is None  # system messages stay where the client put them


def test_tool_round_trip_history_is_canonical() -> None:
    req = parse_request(
        _req(
            [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_b2",
                            "type": "custom",
                            "custom": {"name": "apply_patch", "input": "*** Begin"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a1", "content": "18C"},
                {
                    "role": "tool",
                    "tool_call_id": "call_b2",
                    "content": [{"type": "text", "text": "ok"}],
                },
                {"role": "assistant", "content": "It is 18C."},
            ]
        )
    )
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "assistant"]
    assert req.messages[1].content == [
        ToolCall(id="call_a1", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(id="call_b2", name="apply_patch", arguments="*** Begin", kind="custom"),
    ]
    assert req.messages[2].content == [
        ToolResult(call_id="call_a1", content=[Text(text="18C")]),
        ToolResult(call_id="call_b2", content=[Text(text="ok")], kind="custom"),
    ]


def test_tool_call_ids_kept_byte_for_byte() -> None:
    weird = "call_ÄÖ/+==\u2603 x"
    req = parse_request(
        _req(
            [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": weird,
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": weird, "content": "r"},
            ]
        )
    )
    call = req.messages[0].content[0]
    result = req.messages[1].content[0]
    assert isinstance(call, ToolCall) and call.id == weird
    assert isinstance(result, ToolResult) and result.call_id == weird


def test_consecutive_assistant_messages_merge_and_refusal_and_reasoning() -> None:
    req = parse_request(
        _req(
            [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "part one", "reasoning_content": "thinking..."},
                {
                    "role": "assistant",
                    "content": [{"type": "refusal", "refusal": "no"}],
                    "refusal": "nope",
                },
            ]
        )
    )
    assert req.messages[1] == Message(
        role="assistant",
        content=[
            Thinking(text="thinking..."),
            Text(text="part one"),
            Refusal(text="no"),
            Refusal(text="nope"),
        ],
    )


def test_empty_string_content_gives_no_part() -> None:
    req = parse_request(
        _req(
            [
                {"role": "user", "content": ""},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
            ]
        )
    )
    assert req.messages[0].content == []
    assert req.messages[1].content == [ToolCall(id="c", name="f", arguments="{}")]


def test_deprecated_functions_and_function_role() -> None:
    req = parse_request(
        _req(
            [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "lookup", "arguments": "{}"},
                },
                {"role": "function", "name": "lookup", "content": "found"},
            ],
            functions=[{"name": "lookup", "description": "d", "parameters": {"type": "object"}}],
            function_call={"name": "lookup"},
        )
    )
    call = req.messages[1].content[0]
    assert isinstance(call, ToolCall) and call.name == "lookup" and call.id.startswith("call_")
    assert req.messages[2].content == [ToolResult(call_id=call.id, content=[Text(text="found")])]
    assert req.tools == [Tool(name="lookup", description="d", parameters={"type": "object"})]
    assert req.tool_choice == ToolChoice(mode="tool", name="lookup")
    assert parse_request(
        _req([{"role": "user", "content": "x"}], function_call="none")
    ).tool_choice == ToolChoice(mode="none")


def test_generation_parameters() -> None:
    req = parse_request(
        _req(
            [{"role": "user", "content": "x"}],
            max_tokens=50,
            max_completion_tokens=70,
            stop="END",
            temperature=0.2,
            top_p=1,
            seed=7,
            user="u1",
            metadata={"k": "v"},
            reasoning_effort="high",
            n=1,
            parallel_tool_calls=False,
            stream=True,
            stream_options={"include_usage": True, "include_obfuscation": False},
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {"type": "object"},
                    "strict": True,
                    "description": "d",
                },
            },
            presence_penalty=0.5,
            logit_bias={"1": 2},
            service_tier="flex",
            store=True,
        )
    )
    assert req.max_tokens == 70
    assert req.stop == ["END"]
    assert (req.temperature, req.top_p, req.seed, req.user) == (0.2, 1, 7, "u1")
    assert req.metadata == {"k": "v"}
    assert req.reasoning == Reasoning(effort="high")
    assert req.parallel_tool_calls is False
    assert req.stream and req.include_usage
    assert req.response_format == ResponseFormat(
        type="json_schema", name="answer", schema={"type": "object"}, strict=True, description="d"
    )
    assert req.extra == {
        "presence_penalty": 0.5,
        "logit_bias": {"1": 2},
        "service_tier": "flex",
        "store": True,
        "stream_options": {"include_obfuscation": False},
    }
    assert parse_request(_req([{"role": "user", "content": "x"}], max_tokens=9)).max_tokens == 9
    assert parse_request(_req([{"role": "user", "content": "x"}], stop=["a", "b"])).stop == [
        "a",
        "b",
    ]
    assert parse_request(
        _req([{"role": "user", "content": "x"}], response_format={"type": "json_object"})
    ).response_format == ResponseFormat(type="json_object")


def test_tools_and_tool_choice_forms() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": True,
            },
        },
        {
            "type": "custom",
            "custom": {
                "name": "patch",
                "description": "p",
                "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": "x"}},
            },
        },
        {"type": "web_search_preview"},
    ]
    base = [{"role": "user", "content": "x"}]
    req = parse_request(_req(base, tools=tools))
    assert req.tools == [
        Tool(name="f", description="d", parameters={"type": "object"}, strict=True),
        Tool(
            name="patch",
            description="p",
            kind="custom",
            # Neutral form is the flat Responses shape; Chat's nesting is undone on parse.
            format={"type": "grammar", "syntax": "lark", "definition": "x"},
        ),
    ]
    assert req.hosted_tools == [
        HostedTool(dialect="openai_chat", data={"type": "web_search_preview"})
    ]
    cases: list[tuple[Any, ToolChoice]] = [
        ("auto", ToolChoice(mode="auto")),
        ("none", ToolChoice(mode="none")),
        ("required", ToolChoice(mode="required")),
        ({"type": "function", "function": {"name": "f"}}, ToolChoice(mode="tool", name="f")),
        ({"type": "custom", "custom": {"name": "patch"}}, ToolChoice(mode="tool", name="patch")),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [
                        {"type": "function", "function": {"name": "f"}},
                        {"type": "custom", "custom": {"name": "patch"}},
                    ],
                },
            },
            ToolChoice(mode="required", allowed=["f", "patch"]),
        ),
    ]
    for raw, expected in cases:
        assert parse_request(_req(base, tools=tools, tool_choice=raw)).tool_choice == expected


def _error(body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_request(body)
    return info.value


U = {"role": "user", "content": "x"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": 3, "messages": [U]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": {}}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [U, {"role": "wizard", "content": "x"}]}, "messages[1].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": [5]}]}, "messages[0].content[0]"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "nope"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "system",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x"}}],
                    }
                ],
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}],
            },
            "messages[0].content[0].text",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].image_url",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}
                        ],
                    }
                ],
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}],
            },
            "messages[0].content[0].file",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": {}}]},
            "messages[0].tool_calls",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"type": "function", "function": {"name": "f"}}],
                    }
                ],
            },
            "messages[0].tool_calls[0].id",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}
                ],
            },
            "messages[0].tool_calls[0].function",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": 3},
                            }
                        ],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "magic"}]}],
            },
            "messages[0].tool_calls[0].type",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "r"}]},
            "messages[0].tool_call_id",
        ),
        ({"model": "m", "messages": [{"role": "function", "content": "r"}]}, "messages[0].name"),
        ({"model": "m", "messages": [U], "n": 2}, "n"),
        ({"model": "m", "messages": [U], "n": 0}, "n"),
        ({"model": "m", "messages": [U], "max_tokens": "9"}, "max_tokens"),
        ({"model": "m", "messages": [U], "max_completion_tokens": 0}, "max_completion_tokens"),
        ({"model": "m", "messages": [U], "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": [U], "temperature": True}, "temperature"),
        ({"model": "m", "messages": [U], "stop": [1]}, "stop"),
        ({"model": "m", "messages": [U], "stream": "yes"}, "stream"),
        ({"model": "m", "messages": [U], "stream_options": []}, "stream_options"),
        ({"model": "m", "messages": [U], "seed": 1.5}, "seed"),
        ({"model": "m", "messages": [U], "tools": {}}, "tools"),
        ({"model": "m", "messages": [U], "tools": [3]}, "tools[0]"),
        ({"model": "m", "messages": [U], "tools": [{"type": "function"}]}, "tools[0].function"),
        (
            {"model": "m", "messages": [U], "tools": [{"type": "function", "function": {}}]},
            "tools[0].function.name",
        ),
        (
            {
                "model": "m",
                "messages": [U],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": []}}],
            },
            "tools[0].function.parameters",
        ),
        ({"model": "m", "messages": [U], "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "messages": [U], "tool_choice": 1}, "tool_choice"),
        (
            {"model": "m", "messages": [U], "tool_choice": {"type": "function", "function": {}}},
            "tool_choice.function.name",
        ),
        (
            {
                "model": "m",
                "messages": [U],
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {"mode": "x", "tools": []},
                },
            },
            "tool_choice.allowed_tools.mode",
        ),
        (
            {"model": "m", "messages": [U], "response_format": {"type": "yaml"}},
            "response_format.type",
        ),
        (
            {"model": "m", "messages": [U], "response_format": {"type": "json_schema"}},
            "response_format.json_schema",
        ),
        ({"model": "m", "messages": [U], "reasoning_effort": 3}, "reasoning_effort"),
        ({"model": "m", "messages": [U], "parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"model": "m", "messages": [U], "metadata": []}, "metadata"),
    ],
)
def test_invalid_requests_name_the_field(body: Any, param: str) -> None:
    err = _error(body)
    assert err.param == param, err.message
    assert err.status == 400


def test_a_missing_model_is_left_to_the_server() -> None:
    # The server picks `server.default_model`, or answers OpenAI's 400 (test_bad_input).
    assert DIALECT.parse_request({"messages": [U]}).model == ""


def test_body_must_be_object() -> None:
    assert "JSON object" in _error([1, 2]).message


def test_audio_input_is_rejected_clearly() -> None:
    err = _error(
        _req(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
                    ],
                }
            ]
        )
    )
    assert err.message == "audio input is not supported"
    assert err.param == "messages[0].content[0].type"


def test_lenient_forms_clients_send() -> None:
    req = parse_request(
        _req(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": "https://example.com/a.png"}],
                },
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}],
                },
                {
                    "role": "tool",
                    "tool_call_id": "c",
                    "content": [
                        {"type": "text", "text": "see"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    ],
                },
            ],
            stream_options={"include_usage": True},
        )
    )
    assert req.messages[0].content == [Image(url="https://example.com/a.png")]
    assert req.messages[1].content == [ToolCall(id="c", name="f", arguments='{"a":1}')]
    assert req.messages[2].content == [
        ToolResult(call_id="c", content=[Text(text="see"), Image(mime="image/png", data=PNG)])
    ]
    assert req.include_usage is False  # stream_options without stream: nothing to include
