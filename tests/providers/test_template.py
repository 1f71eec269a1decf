"""The HTTP-generic template language: typed whole-value substitution, text
interpolation, defaults, absent values dropped, unknown names refused with their path."""

from __future__ import annotations

import pytest

from dragoman.core import (
    ChatRequest,
    Image,
    Message,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from dragoman.providers.template import RequestTemplate, TemplateError, request_values


def render(template: object, req: ChatRequest, stream: bool = False) -> object:
    t = RequestTemplate(template)
    return t.render(request_values(req, t.names, model="up-model", stream=stream))


REQ = ChatRequest(model="client-name", system=[Text(text="Be brief.")], messages=[
    Message(role="user", content=[Text(text="first")]),
    Message(role="assistant", content=[Text(text="ok")]),
    Message(role="user", content=[Text(text="second "), Text(text="question")]),
], max_tokens=50, temperature=0.2, stop=["END"])


def test_whole_values_keep_their_types() -> None:
    body = render({"model": "{{model}}", "n": "{{max_tokens}}", "t": "{{ temperature }}",
                   "stop": "{{stop}}", "stream": "{{stream}}", "p": "{{prompt}}"}, REQ, True)
    assert body == {"model": "up-model", "n": 50, "t": 0.2, "stop": ["END"], "stream": True,
                    "p": "second question"}


def test_absent_values_drop_their_key_or_element_and_defaults_fill_in() -> None:
    req = ChatRequest(model="m", messages=[Message(role="user", content=[Text(text="hi")])])
    body = render({"opts": {"temperature": "{{temperature}}", "top_k": "{{top_k:-40}}",
                            "mode": "{{seed:-fast}}", "keep": 1},
                   "list": ["{{top_p}}", "x", "{{user}}"]}, req)
    assert body == {"opts": {"top_k": 40, "mode": "fast", "keep": 1}, "list": ["x"]}


def test_interpolation_inside_text() -> None:
    body = render({"inputs": "[INST] {{system}} {{prompt}} [/INST] max={{max_tokens}}"
                             "{{top_k}}|{{top_p:-0.9}}"}, REQ)
    assert body == {"inputs": "[INST] Be brief. second question [/INST] max=50|0.9"}


def test_constant_subtrees_are_shared_not_rebuilt() -> None:
    const = {"deep": {"a": [1, 2, {"b": "c"}]}}
    t = RequestTemplate({"fixed": const, "p": "{{prompt}}"})
    out = t.render({"prompt": "x"})
    assert out["fixed"] is const["deep"] or out["fixed"] == const
    assert out == {"fixed": const, "p": "x"}
    assert RequestTemplate(const).render({}) is const


def test_messages_forms() -> None:
    req = ChatRequest(model="m", system=[Text(text="S1")], messages=[
        Message(role="developer", content=[Text(text="S2")]),
        Message(role="user", content=[Text(text="weather?")]),
        Message(role="assistant", content=[Text(text="checking"), ToolCall(
            id="c1", name="get_weather", arguments='{"city":"Paris"}')]),
        Message(role="tool", content=[ToolResult(call_id="c1", content=[Text(text="18C")]),
                                      ToolResult(call_id="c2", is_error=True,
                                                 content=[Text(text="boom")])]),
    ])
    body = render({"m": "{{messages}}", "ms": "{{messages_with_system}}", "s": "{{system}}"},
                  req)
    assert isinstance(body, dict)
    convo = [{"role": "user", "content": "weather?"},
             {"role": "assistant", "content": "checking", "tool_calls": [
                 {"id": "c1", "type": "function",
                  "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
             {"role": "tool", "tool_call_id": "c1", "content": "18C"},
             {"role": "tool", "tool_call_id": "c2", "content": "Error: boom"}]
    assert body["m"] == convo
    assert body["ms"] == [{"role": "system", "content": "S1\n\nS2"}, *convo]
    assert body["s"] == "S1\n\nS2"


def test_tools_choice_format_and_images() -> None:
    req = ChatRequest(model="m", messages=[Message(role="user", content=[
        Text(text="look"), Image(mime="image/png", data="iVBORw0KGgo="),
        Image(url="https://example.com/a.png")])],
        tools=[Tool(name="f", description="does f", parameters={"type": "object"})],
        tool_choice=ToolChoice(mode="tool", name="f"),
        response_format=ResponseFormat(type="json_schema", name="ans",
                                       schema={"type": "object"}, strict=True))
    body = render({"tools": "{{tools}}", "choice": "{{tool_choice}}",
                   "rf": "{{response_format}}", "images": "{{images}}"}, req)
    assert body == {
        "tools": [{"type": "function", "function": {"name": "f", "description": "does f",
                                                    "parameters": {"type": "object"}}}],
        "choice": {"type": "function", "function": {"name": "f"}},
        "rf": {"type": "json_schema", "json_schema": {"name": "ans",
                                                      "schema": {"type": "object"},
                                                      "strict": True}},
        "images": ["data:image/png;base64,iVBORw0KGgo=", "https://example.com/a.png"]}
    # none of them when the request has none
    assert render({"tools": "{{tools}}", "choice": "{{tool_choice}}", "rf": "{{response_format}}",
                   "images": "{{images}}"}, REQ) == {}


def test_unknown_placeholder_is_refused_with_its_path() -> None:
    with pytest.raises(TemplateError, match=r"\{\{promt\}\}.*\$\.template\.a\[1\]\.b"):
        RequestTemplate({"a": [1, {"b": "{{promt}}"}]})


def test_no_evaluation_happens() -> None:
    # Anything that is not a plain name is left as literal text.
    body = render({"x": "{{ __import__('os').system('true') }}", "y": "{{1+1}}"}, REQ)
    assert body == {"x": "{{ __import__('os').system('true') }}", "y": "{{1+1}}"}
