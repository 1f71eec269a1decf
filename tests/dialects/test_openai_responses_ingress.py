"""OpenAI Responses dialect, ingress: client requests → the neutral model."""

from __future__ import annotations

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
    Refusal,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from dragoman.dialects.openai_responses import DIALECT, parse_request

from .captures import captured_posts

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJ"
       "RU5ErkJggg==")


CAPTURED = [(i, body) for i, _, body in
            captured_posts(lambda path: path.endswith("/responses"))]


@pytest.mark.parametrize(("scenario", "body"), CAPTURED, ids=[c[0] for c in CAPTURED])
def test_every_captured_client_request_parses(scenario: str, body: dict[str, Any]) -> None:
    req = parse_request(body)
    assert req.dialect == "openai_responses"
    assert req.model == body["model"]
    assert req.stream is bool(body.get("stream"))
    assert req.messages and req.messages[-1].role in ("user", "tool")
    if isinstance(body["input"], str):
        assert req.messages == [Message(role="user", content=[Text(text=body["input"])])]
    if "tools" in body:
        hosted = [t for t in body["tools"] if t["type"] not in ("function", "custom", "namespace")]
        assert [h.data for h in req.hosted_tools or []] == hosted
        flat = sum(len(t["tools"]) if t["type"] == "namespace" else 1
                   for t in body["tools"] if t["type"] != "web_search"
                   and t["type"] != "tool_search")
        assert len(req.tools or []) == flat
    if "instructions" in body:
        assert req.system == [Text(text=body["instructions"])]
    for key in ("include", "prompt_cache_key", "client_metadata"):
        if key in body:
            assert req.extra is not None and req.extra[key] == body[key]


# A Codex-shaped conversation (shapes from the captures, our own text).
CODEX_TURN_2: dict[str, Any] = {
    "model": "gpt-5.5",
    "stream": True,
    "input": [
        {"type": "message", "id": "msg_dev", "role": "developer",
         "content": [{"type": "input_text", "text": "You are a careful coding agent."}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "Fix the bug."},
                     {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}],
         "internal_chat_message_metadata_passthrough": {"turn_id": "t1"}},
        {"type": "reasoning", "id": "rs_1",
         "summary": [{"type": "summary_text", "text": "**Plan**"},
                     {"type": "summary_text", "text": "Look first."}],
         "encrypted_content": "gAAAAenc"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Looking.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "status": "completed", "name": "exec_command",
         "arguments": "{\"cmd\":\"ls\"}", "call_id": "call_A"},
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_B", "name": "apply_patch",
         "input": "*** Begin Patch\n*** End Patch"},
        {"type": "local_shell_call", "id": "lsh_1", "call_id": "call_C", "status": "completed",
         "action": {"type": "exec", "command": ["ls"], "env": {}}},
        {"type": "function_call_output", "id": "fco_1", "call_id": "call_A",
         "output": "a.txt\nb.txt"},
        {"type": "custom_tool_call_output", "call_id": "call_B", "output": "Done"},
        {"type": "function_call_output", "call_id": "call_D",
         "output": [{"type": "input_text", "text": "see"},
                    {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"}]},
        {"type": "message", "role": "user", "content": "thanks"},
    ],
    "tools": [
        {"type": "function", "name": "exec_command", "description": "Run a command.",
         "strict": False, "parameters": {"type": "object", "properties": {
             "cmd": {"type": "string"}}, "required": ["cmd"]}},
        {"type": "namespace", "name": "agents", "description": "Sub-agents.", "tools": [
            {"type": "function", "name": "spawn", "description": "Spawn one.", "strict": False,
             "parameters": {"type": "object", "properties": {}}},
            {"type": "function", "name": "wait", "strict": False,
             "parameters": {"type": "object", "properties": {}}}]},
        {"type": "custom", "name": "apply_patch", "description": "Patch files.",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
        {"type": "web_search", "external_web_access": False},
        {"type": "tool_search", "execution": "client"},
        {"type": "brand_new_tool", "whatever": [1, 2]},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "high", "summary": "auto"},
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "thread-1",
    "text": {"verbosity": "low",
             "format": {"type": "json_schema", "strict": True, "name": "codex_output_schema",
                        "schema": {"type": "object"}}},
    "client_metadata": {"turn_id": "t1"},
}


def test_codex_conversation_becomes_canonical_messages() -> None:
    req = parse_request(CODEX_TURN_2)
    assert [m.role for m in req.messages] == ["developer", "user", "assistant", "tool", "user"]
    assert req.messages[0].content == [Text(text="You are a careful coding agent.")]
    assert req.messages[1].content == [Text(text="Fix the bug."), Image(mime="image/png",
                                                                        data=PNG)]
    assistant = req.messages[2].content
    assert assistant[0] == Thinking(text="**Plan**\n\nLook first.", signature="gAAAAenc",
                                    origin="openai", id="rs_1")
    assert assistant[1] == Text(text="Looking.")
    assert assistant[2] == ToolCall(id="call_A", name="exec_command", arguments='{"cmd":"ls"}')
    assert assistant[3] == ToolCall(id="call_B", name="apply_patch",
                                    arguments="*** Begin Patch\n*** End Patch", kind="custom")
    assert assistant[4] == Opaque(dialect="openai_responses", data={
        "type": "local_shell_call", "call_id": "call_C", "status": "completed",
        "action": {"type": "exec", "command": ["ls"], "env": {}}})  # item id dropped
    assert req.messages[3].content == [
        ToolResult(call_id="call_A", content=[Text(text="a.txt\nb.txt")]),
        ToolResult(call_id="call_B", content=[Text(text="Done")], kind="custom"),
        ToolResult(call_id="call_D", content=[Text(text="see"),
                                              Image(url="https://x.test/a.png", detail="low")]),
    ]
    assert req.messages[4] == Message(role="user", content=[Text(text="thanks")])


def test_codex_tools_settings_and_extra() -> None:
    req = parse_request(CODEX_TURN_2)
    assert req.tools is not None
    assert [t.name for t in req.tools] == ["exec_command", "spawn", "wait", "apply_patch"]
    assert req.tools[0] == Tool(name="exec_command", description="Run a command.",
                                parameters=CODEX_TURN_2["tools"][0]["parameters"], strict=False)
    assert req.tools[1].namespace == "agents"
    assert req.tools[1].namespace_description == "Sub-agents."
    assert req.tools[2].namespace == "agents" and req.tools[2].description is None
    assert req.tools[3] == Tool(name="apply_patch", description="Patch files.", kind="custom",
                                format=CODEX_TURN_2["tools"][2]["format"])
    assert req.hosted_tools == [HostedTool(dialect="openai_responses", data=t)
                                for t in CODEX_TURN_2["tools"][3:]]
    assert req.tool_choice == ToolChoice(mode="auto")
    assert req.parallel_tool_calls is True
    assert req.reasoning == Reasoning(effort="high", summary="auto")
    assert req.response_format == ResponseFormat(type="json_schema", name="codex_output_schema",
                                                 schema={"type": "object"}, strict=True)
    assert req.store is False
    assert req.extra == {"include": ["reasoning.encrypted_content"],
                         "prompt_cache_key": "thread-1", "client_metadata": {"turn_id": "t1"},
                         "text": {"verbosity": "low"}}


def test_easy_messages_and_settings() -> None:
    req = parse_request({
        "model": "m", "instructions": "Be terse.",
        "input": [{"role": "system", "content": "sys"},
                  {"role": "user", "content": [
                      {"type": "input_file", "file_data": f"data:application/pdf;base64,{PNG}",
                       "filename": "a.pdf"},
                      {"type": "input_file", "file_id": "file-1"},
                      {"type": "input_image", "file_id": "file-2", "detail": "auto"}]},
                  {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
                  {"role": "assistant", "content": "second"}],
        "max_output_tokens": 100, "temperature": 0.5, "top_p": 1, "metadata": {"k": "v"},
        "user": "u1", "previous_response_id": "resp_1", "store": True,
        "reasoning": {"generate_summary": "concise"},
        "tool_choice": {"type": "function", "name": "f"},
    })
    assert req.system == [Text(text="Be terse.")]
    assert req.messages == [
        Message(role="system", content=[Text(text="sys")]),
        Message(role="user", content=[
            File(mime="application/pdf", data=PNG, filename="a.pdf"), File(file_id="file-1"),
            Opaque(dialect="openai_responses",
                   data={"type": "input_image", "file_id": "file-2", "detail": "auto"})]),
        Message(role="assistant", content=[Refusal(text="No."), Text(text="second")]),
    ]
    assert (req.max_tokens, req.temperature, req.top_p) == (100, 0.5, 1)
    assert req.metadata == {"k": "v"} and req.user == "u1"
    assert req.previous_response_id == "resp_1" and req.store is True
    assert req.reasoning == Reasoning(summary="concise")
    assert req.tool_choice == ToolChoice(mode="tool", name="f")
    assert req.extra is None


@pytest.mark.parametrize(("choice", "expected", "extra"), [
    ("none", ToolChoice(mode="none"), None),
    ("required", ToolChoice(mode="required"), None),
    ({"type": "custom", "name": "apply_patch"}, ToolChoice(mode="tool", name="apply_patch"), None),
    ({"type": "allowed_tools", "mode": "required",
      "tools": [{"type": "function", "name": "a"}, {"type": "web_search"}]},
     ToolChoice(mode="required", allowed=["a"]), None),
    ({"type": "web_search_preview"}, None, {"type": "web_search_preview"}),
    ({"type": "mcp", "server_label": "wiki"}, None, {"type": "mcp", "server_label": "wiki"}),
])
def test_tool_choice_forms(choice: Any, expected: ToolChoice | None, extra: Any) -> None:
    req = parse_request({"model": "m", "input": "hi", "tool_choice": choice})
    assert req.tool_choice == expected
    assert (req.extra or {}).get("tool_choice") == extra


def test_item_reference_keeps_its_id_and_unknown_items_pass_through() -> None:
    req = parse_request({"model": "m", "input": [
        {"type": "item_reference", "id": "msg_123"},
        {"type": "compaction", "id": "cmp_1", "encrypted_content": "zzz"},
        {"role": "user", "content": "go on"}]})
    assert req.messages[0] == Message(role="assistant", content=[
        Opaque(dialect="openai_responses", data={"type": "item_reference", "id": "msg_123"}),
        Opaque(dialect="openai_responses", data={"type": "compaction", "encrypted_content": "zzz"}),
    ])


def test_hosted_only_namespace_passes_through_whole() -> None:
    ns = {"type": "namespace", "name": "n", "description": "d",
          "tools": [{"type": "web_search"}]}
    req = parse_request({"model": "m", "input": "x", "tools": [ns]})
    assert req.tools is None
    assert req.hosted_tools == [HostedTool(dialect="openai_responses", data=ns)]


def test_text_format_variants() -> None:
    for fmt, rf in [({"type": "text"}, ResponseFormat(type="text")),
                    ({"type": "json_object"}, ResponseFormat(type="json_object"))]:
        assert parse_request({"model": "m", "text": {"format": fmt}}).response_format == rf


def test_missing_input_is_an_empty_conversation() -> None:
    req = parse_request({"model": "m", "previous_response_id": "resp_1"})
    assert req.messages == [] and req.previous_response_id == "resp_1"


def test_dialect_record() -> None:
    assert DIALECT.name == "openai_responses" and DIALECT.id_prefix == "resp_"
    assert DIALECT.parse_request is parse_request


@pytest.mark.parametrize(("body", "param"), [
    ([], None),
    ({}, "model"),
    ({"model": 3}, "model"),
    ({"model": "m", "input": 5}, "input"),
    ({"model": "m", "input": [1]}, "input[0]"),
    ({"model": "m", "input": [{"foo": 1}]}, "input[0].type"),
    ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"role": "user"}]}, "input[0].content"),
    ({"model": "m", "input": [{"role": "user", "content": 7}]}, "input[0].content"),
    ({"model": "m", "input": [{"role": "user", "content": ["x"]}]}, "input[0].content[0]"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "input[0].content[0].type"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
     "input[0].content[0].text"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
     "input[0].content[0].image_url"),
    ({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "data:image/png,abc"}]}]},
     "input[0].content[0].image_url"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
     "input[0].content[0].file_data"),
    ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                                "arguments": {}}]}, "input[0].arguments"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]},
     "input[0].output"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
     "input[0].output"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": [{"type": "summary_text"}]}]},
     "input[0].summary[0].text"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": "x"}]}, "input[0].summary"),
    ({"model": "m", "tools": {}}, "tools"),
    ({"model": "m", "tools": [{"name": "f"}]}, "tools[0].type"),
    ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"model": "m", "tools": [{"type": "function", "name": "f", "parameters": []}]},
     "tools[0].parameters"),
    ({"model": "m", "tools": [{"type": "namespace", "name": "n"}]}, "tools[0].tools"),
    ({"model": "m", "tools": [{"type": "namespace", "name": "n", "tools": [
        {"type": "function"}]}]}, "tools[0].tools[0].name"),
    ({"model": "m", "tool_choice": "any"}, "tool_choice"),
    ({"model": "m", "tool_choice": {"type": "function"}}, "tool_choice.name"),
    ({"model": "m", "tool_choice": {"type": "allowed_tools", "mode": "x", "tools": []}},
     "tool_choice.mode"),
    ({"model": "m", "text": "json"}, "text"),
    ({"model": "m", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"model": "m", "text": {"format": {"type": "json_schema", "name": "n"}}},
     "text.format.schema"),
    ({"model": "m", "reasoning": "high"}, "reasoning"),
    ({"model": "m", "reasoning": {"effort": 3}}, "reasoning.effort"),
    ({"model": "m", "max_output_tokens": "10"}, "max_output_tokens"),
    ({"model": "m", "max_output_tokens": True}, "max_output_tokens"),
    ({"model": "m", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "temperature": "hot"}, "temperature"),
    ({"model": "m", "stream": "yes"}, "stream"),
    ({"model": "m", "metadata": []}, "metadata"),
    ({"model": "m", "instructions": ["x"]}, "instructions"),
    ({"model": "m", "parallel_tool_calls": 1}, "parallel_tool_calls"),
])
def test_invalid_requests_name_the_field(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as ei:
        parse_request(body)
    assert ei.value.param == param
    assert ei.value.status == 400
