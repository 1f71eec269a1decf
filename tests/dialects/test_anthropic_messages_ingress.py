"""Anthropic Messages dialect: parsing client requests (captures, mappings, validation)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from dragoman.core import (
    File,
    HostedTool,
    Image,
    InvalidRequest,
    Message,
    Opaque,
    Reasoning,
    RedactedThinking,
    ResponseFormat,
    SearchResult,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from dragoman.dialects.anthropic_messages import (
    parse_count_tokens_request,
    parse_request,
    render_request,
)

from .captures import captured_posts

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
       "AAAABJRU5ErkJggg==")


CAPTURED = captured_posts(lambda path: "/messages" in path)


@pytest.mark.parametrize(("path", "body"), [(p, b) for _, p, b in CAPTURED],
                         ids=[i for i, _, _ in CAPTURED])
def test_every_captured_request_parses(path: str, body: dict[str, Any]) -> None:
    if path.endswith("/count_tokens"):
        req = parse_count_tokens_request(body)
    else:
        req = parse_request(body)
    assert req.dialect == "anthropic_messages"
    assert req.model == body["model"]
    # Rendering back to an Anthropic upstream keeps every field the client sent.
    out = render_request(req, inline_system=True)
    for key in body:
        if key == "tools" and not body[key]:
            continue
        assert key in out, key
    if "system" in body and isinstance(body["system"], list):
        assert out["system"][: len(body["system"])] == body["system"]
    for key in ("metadata", "thinking", "output_config", "context_management", "tools",
                "max_tokens", "stream"):
        if body.get(key):
            assert out[key] == body[key], key


# --- Claude Code shapes (text replaced by our own) ---------------------------------------------

CC_TOOL: dict[str, Any] = {
    "name": "Bash",
    "description": "Run a shell command.",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"command": {"type": "string", "description": "The command"}},
        "required": ["command"],
        "additionalProperties": False,
    },
}


def claude_code_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-opus-4-8",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                {"type": "text", "text": "Use a tool", "cache_control": {"type": "ephemeral"}},
            ]},
            {"role": "system", "content": "Environment notes for the agent."},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls", "signature": "EqQBsig=="},
                {"type": "tool_use", "id": "toolu_2dfc13fc61c145298abd8895", "name": "Bash",
                 "input": {"command": "ls"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_2dfc13fc61c145298abd8895",
                 "content": "a.txt", "is_error": True, "cache_control": {"type": "ephemeral"}},
            ]},
        ],
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.671; "
                                     "cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [CC_TOOL],
        "metadata": {"user_id": '{"device_id":"abc","session_id":"s1"}'},
        "max_tokens": 64000,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "stream": True,
    }
    body.update(over)
    return body


def test_claude_code_request_maps_to_neutral() -> None:
    req = parse_request(claude_code_body())
    assert req.system == [
        Text(text="x-anthropic-billing-header: cc_version=2.1.197.671; cc_entrypoint=sdk-cli;"),
        Text(text="You are an agent.", cache_control={"type": "ephemeral"}),
    ]
    assert [m.role for m in req.messages] == ["user", "system", "assistant", "tool"]
    assert req.messages[0].content[1] == Text(text="Use a tool",
                                              cache_control={"type": "ephemeral"})
    assert req.messages[1] == Message(role="system",
                                      content=[Text(text="Environment notes for the agent.")])
    assert req.messages[2].content == [
        Thinking(text="I should run ls", signature="EqQBsig==", origin="anthropic"),
        ToolCall(id="toolu_2dfc13fc61c145298abd8895", name="Bash", arguments='{"command":"ls"}'),
    ]
    assert req.messages[3].content == [
        ToolResult(call_id="toolu_2dfc13fc61c145298abd8895", content=[Text(text="a.txt")],
                   is_error=True, cache_control={"type": "ephemeral"}),
    ]
    assert req.tools == [Tool(name="Bash", description="Run a shell command.",
                              parameters=CC_TOOL["input_schema"])]
    assert req.reasoning == Reasoning(mode="adaptive", effort="high")
    assert req.user == '{"device_id":"abc","session_id":"s1"}'
    assert req.metadata == {"user_id": '{"device_id":"abc","session_id":"s1"}'}
    assert req.max_tokens == 64000 and req.stream is True
    assert req.extra == {"context_management": claude_code_body()["context_management"]}


def test_claude_code_title_call_structured_output() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}},
              "required": ["title"], "additionalProperties": False}
    req = parse_request(claude_code_body(
        tools=[], thinking={"type": "disabled"},
        output_config={"effort": "high", "format": {"type": "json_schema", "schema": schema}}))
    assert req.reasoning == Reasoning(mode="disabled", effort="high")
    assert req.response_format == ResponseFormat(type="json_schema", schema=schema)
    assert req.tools is None


def test_tool_results_plus_text_split_into_tool_then_user() -> None:
    req = parse_request({"model": "m", "max_tokens": 5, "messages": [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}},
            {"type": "tool_use", "id": "toolu_2", "name": "b", "input": {"x": [1, 2]}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "text", "text": "see"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": PNG}}]},
            {"type": "tool_result", "tool_use_id": "toolu_2"},
            {"type": "text", "text": "now continue"},
        ]},
    ]})
    assert [m.role for m in req.messages] == ["assistant", "tool", "user"]
    assert req.messages[0].content[1] == ToolCall(id="toolu_2", name="b",
                                                  arguments='{"x":[1,2]}')
    assert req.messages[1].content == [
        ToolResult(call_id="toolu_1", content=[Text(text="see"),
                                               Image(mime="image/png", data=PNG)]),
        ToolResult(call_id="toolu_2"),
    ]
    assert req.messages[2].content == [Text(text="now continue")]


def test_consecutive_assistant_turns_merge_and_tool_results_group() -> None:
    req = parse_request({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Let me check."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "a",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": "1"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2",
                                      "content": "2"}]},
    ]})
    assert [m.role for m in req.messages] == ["user", "assistant", "tool"]
    assert len(req.messages[1].content) == 2
    assert [p.call_id for p in req.messages[2].content if isinstance(p, ToolResult)] == \
        ["t1", "t2"]


def test_content_block_kinds() -> None:
    pdf = base64.b64encode(b"%PDF-1.4 test").decode()
    req = parse_request({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://ex.com/cat.jpg"},
             "cache_control": {"type": "ephemeral"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                            "data": pdf}, "title": "doc.pdf"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "plain text"}},
            {"type": "document", "source": {"type": "url", "url": "https://ex.com/a.pdf"}},
            {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "search_result", "source": "s", "title": "t", "content": []},
        ]},
        {"role": "assistant", "content": [
            {"type": "redacted_thinking", "data": "EmwKAhgB"},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
             "input": {"query": "q"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "text", "text": "done"},
        ]},
    ]})
    user, asst = req.messages
    assert user.content[0] == Image(url="https://ex.com/cat.jpg",
                                    cache_control={"type": "ephemeral"})
    assert user.content[1] == File(mime="application/pdf", data=pdf, filename="doc.pdf")
    assert user.content[2] == File(mime="text/plain",
                                   data=base64.b64encode(b"plain text").decode())
    assert user.content[3] == File(url="https://ex.com/a.pdf")
    assert user.content[4] == File(file_id="file_1")
    assert user.content[5] == SearchResult(source="s", title="t", content=[])
    assert asst.content[0] == RedactedThinking(data="EmwKAhgB", origin="anthropic")
    assert asst.content[1] == Opaque(dialect="anthropic_messages", data={
        "type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
        "input": {"query": "q"}})
    assert isinstance(asst.content[2], Opaque)
    assert asst.content[3] == Text(text="done")


def test_thinking_without_signature_is_not_replayable() -> None:
    req = parse_request({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t",
                                           "signature": ""}]},
    ]})
    assert req.messages[1].content == [Thinking(text="t")]


def test_tools_hosted_tools_and_choice() -> None:
    web = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    editor = {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}
    req = parse_request({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "q"}],
        "tools": [
            {"type": "custom", "name": "f", "input_schema": {"type": "object"},
             "cache_control": {"type": "ephemeral"}, "strict": True},
            {"name": "g", "input_schema": {"type": "object"}, "defer_loading": True},
            web, editor],
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
    })
    assert req.tools == [
        Tool(name="f", parameters={"type": "object"}, strict=True,
             cache_control={"type": "ephemeral"}),
        Tool(name="g", parameters={"type": "object"}),
    ]
    assert req.hosted_tools == [HostedTool(dialect="anthropic_messages", data=web),
                                HostedTool(dialect="anthropic_messages", data=editor)]
    assert req.tool_choice == ToolChoice(mode="tool", name="f")
    assert req.parallel_tool_calls is False
    # per-tool fields without a neutral slot survive a same-dialect round trip
    out = render_request(req)
    assert out["tools"][1] == {"name": "g", "input_schema": {"type": "object"},
                               "defer_loading": True}
    assert "_anthropic_tool_extras" not in out


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, ToolChoice(mode="auto")),
    ({"type": "any"}, ToolChoice(mode="required")),
    ({"type": "none"}, ToolChoice(mode="none")),
])
def test_tool_choice_modes(choice: dict[str, Any], expected: ToolChoice) -> None:
    req = parse_request({"model": "m", "max_tokens": 5, "tool_choice": choice,
                         "messages": [{"role": "user", "content": "q"}]})
    assert req.tool_choice == expected and req.parallel_tool_calls is None


def test_thinking_and_sampling_fields() -> None:
    req = parse_request({"model": "m", "max_tokens": 5000,
                         "messages": [{"role": "user", "content": "q"}],
                         "thinking": {"type": "enabled", "budget_tokens": 2048,
                                      "display": "summarized"},
                         "stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9,
                         "top_k": 40, "service_tier": "auto", "cache_control":
                         {"type": "ephemeral"}, "container": "c1"})
    assert req.reasoning == Reasoning(mode="enabled", budget_tokens=2048, summary="summarized")
    assert req.stop == ["END"] and req.temperature == 0.5 and req.top_p == 0.9
    assert req.top_k == 40
    assert req.extra == {"service_tier": "auto", "cache_control": {"type": "ephemeral"},
                         "container": "c1"}
    assert req.stream is False


def test_unknown_thinking_mode_goes_to_extra() -> None:
    req = parse_request({"model": "m", "max_tokens": 5, "thinking": {"type": "between_tools"},
                         "messages": [{"role": "user", "content": "q"}]})
    assert req.reasoning is None
    assert req.extra == {"thinking": {"type": "between_tools"}}
    assert render_request(req)["thinking"] == {"type": "between_tools"}


def test_count_tokens_does_not_require_max_tokens() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Reply PONG"}]}
    assert parse_count_tokens_request(body).max_tokens is None
    with pytest.raises(InvalidRequest) as ei:
        parse_request(body)
    assert ei.value.param == "max_tokens"


# --- validation ---------------------------------------------------------------------------------

BASE: dict[str, Any] = {"model": "m", "max_tokens": 10,
                        "messages": [{"role": "user", "content": "hi"}]}


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    cur: Any = body
    for k in path[:-1]:
        cur = cur[k]
    cur[path[-1]] = value
    return body


@pytest.mark.parametrize(("body", "param"), [
    ([], None),
    ({"max_tokens": 1, "messages": []}, "model"),
    (_with(["model"], 3), "model"),
    (_with(["max_tokens"], "10"), "max_tokens"),
    (_with(["max_tokens"], True), "max_tokens"),
    (_with(["max_tokens"], 0), "max_tokens"),
    (_with(["messages"], []), "messages"),
    (_with(["messages"], {"role": "user"}), "messages"),
    (_with(["messages", 0], "hi"), "messages[0]"),
    (_with(["messages", 0, "role"], "tool"), "messages[0].role"),
    (_with(["messages", 0, "content"], None), "messages[0].content"),
    (_with(["messages", 0, "content"], 5), "messages[0].content"),
    (_with(["messages", 0, "content"], [5]), "messages[0].content[0]"),
    (_with(["messages", 0, "content"], [{"type": 5}]), "messages[0].content[0].type"),
    (_with(["messages", 0, "content"], [{"type": "bogus"}]), "messages[0].content[0].type"),
    (_with(["messages", 0, "content"], [{"type": "text"}]), "messages[0].content[0].text"),
    (_with(["messages", 0, "content"], [{"type": "text", "text": "a", "cache_control": 1}]),
     "messages[0].content[0].cache_control"),
    (_with(["messages", 0, "content"], [{"type": "tool_use", "id": "a", "name": "b",
                                         "input": {}}]), "messages[0].content[0].type"),
    (_with(["messages", 0, "content"], [{"type": "image", "source": {"type": "ftp"}}]),
     "messages[0].content[0].source.type"),
    (_with(["messages", 0, "content"], [{"type": "tool_result", "tool_use_id": "a",
                                         "content": [{"type": "tool_reference"}]}]),
     "messages[0].content[0].content[0].tool_name"),
    (_with(["messages", 0, "content"], [{"type": "tool_result", "tool_use_id": "a",
                                         "content": [{"type": "thinking"}]}]),
     "messages[0].content[0].content[0].type"),
    (_with(["messages", 0, "content"], [{"type": "tool_result", "tool_use_id": "a",
                                         "is_error": "yes"}]),
     "messages[0].content[0].is_error"),
    (_with(["system"], 5), "system"),
    (_with(["system"], [{"type": "image"}]), "system[0].type"),
    (_with(["stop_sequences"], ["a", 1]), "stop_sequences[1]"),
    (_with(["temperature"], "hot"), "temperature"),
    (_with(["top_k"], 1.5), "top_k"),
    (_with(["metadata"], {"user_id": 5}), "metadata.user_id"),
    (_with(["tools"], {}), "tools"),
    (_with(["tools"], [{"name": "a"}]), "tools[0].input_schema"),
    (_with(["tools"], [{"type": "web_search_20250305"}]), "tools[0].name"),
    (_with(["tool_choice"], {"type": "sometimes"}), "tool_choice.type"),
    (_with(["tool_choice"], {"type": "tool"}), "tool_choice.name"),
    (_with(["thinking"], {"type": "enabled"}), "thinking.budget_tokens"),
    (_with(["thinking"], "on"), "thinking"),
    (_with(["output_config"], {"format": {"type": "json_schema"}}),
     "output_config.format.schema"),
    (_with(["stream"], "yes"), "stream"),
])
def test_invalid_requests_name_the_field(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as ei:
        parse_request(body)
    assert ei.value.param == param
    assert ei.value.status == 400


def test_system_message_accepts_only_text() -> None:
    body = _with(["messages"], [{"role": "user", "content": "a"},
                                {"role": "system", "content": [{"type": "image"}]}])
    with pytest.raises(InvalidRequest) as ei:
        parse_request(body)
    assert ei.value.param == "messages[1].content[0].type"
