"""Egress: a neutral request as the body of Ollama's native chat API (``POST /api/chat``).

- ``stream`` defaults to true upstream: the body always says which one it wants.
- Images travel as raw base64 in the message's ``images``; Ollama cannot take a URL, so
  URL images must have been inlined before rendering (the provider fetches them) and a
  remaining one is refused here.
- Tool results go back as ``role: "tool"`` messages carrying ``tool_name`` (looked up
  from the call in the history) and ``tool_call_id``.
- ``think`` turns reasoning on or off (a bool here; the provider may turn it into a level
  for models that take one).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ...core import (
    ChatRequest,
    File,
    Image,
    InvalidRequest,
    Message,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolResult,
)
from ..tool_args import (
    CUSTOM_TOOL_SCHEMA,
    custom_tool_description,
    object_from_arguments,
)


def _text(parts: list[str]) -> str:
    return "\n\n".join(parts)


def _image(p: Image, where: str) -> str:
    if p.data is None:
        raise InvalidRequest(f"Ollama takes images inline only; the image at {where} is a URL "
                             "that was not fetched.", param=where)
    return p.data


def _call_names(messages: list[Message]) -> dict[str, str]:
    return {p.id: p.name for m in messages if m.role == "assistant"
            for p in m.content if isinstance(p, ToolCall)}


def _tool_message(r: ToolResult, names: dict[str, str], where: str) -> dict[str, Any]:
    texts = [p.text for p in r.content if isinstance(p, Text)]
    images = [_image(p, where) for p in r.content if isinstance(p, Image)]
    content = _text(texts)
    if r.is_error:
        content = "Error: " + content if content else "Error"
    msg: dict[str, Any] = {"role": "tool", "content": content}
    if images:
        msg["images"] = images
    name = names.get(r.call_id)
    if name:
        msg["tool_name"] = name
    msg["tool_call_id"] = r.call_id
    return msg


def _messages(req: ChatRequest, custom: Collection[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        out.append({"role": "system", "content": _text([t.text for t in req.system])})
    names = _call_names(req.messages)
    for i, m in enumerate(req.messages):
        where = f"messages[{i}]"
        texts: list[str] = []
        images: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        for p in m.content:
            if isinstance(p, ToolResult):
                out.append(_tool_message(p, names, where))
            elif isinstance(p, Text):
                texts.append(p.text)
            elif isinstance(p, Image):
                images.append(_image(p, where))
            elif isinstance(p, File):
                raise InvalidRequest(f"Ollama cannot take documents ({where}).", param=where)
            elif isinstance(p, Thinking) and m.role == "assistant" and p.text:
                thinking.append(p.text)
            elif isinstance(p, ToolCall) and m.role == "assistant":
                fn = {"name": p.name, "arguments": object_from_arguments(
                    p.arguments, p.kind == "custom" or p.name in custom)}
                calls.append({"id": p.id, "function": fn})
            # RedactedThinking / Opaque: nothing Ollama can replay
        if m.role == "tool" or (not texts and not images and not thinking and not calls
                                and any(isinstance(p, ToolResult) for p in m.content)):
            continue
        role = "system" if m.is_system else m.role
        msg: dict[str, Any] = {"role": role, "content": "".join(texts) if role == "assistant"
                               else _text(texts)}
        if images:
            msg["images"] = images
        if thinking:
            msg["thinking"] = "".join(thinking)
        if calls:
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def _tool_json(t: Tool) -> dict[str, Any]:
    if t.kind == "custom":
        fn: dict[str, Any] = {"name": t.name, "parameters": CUSTOM_TOOL_SCHEMA}
        desc = custom_tool_description(t)
    else:
        fn = {"name": t.name, "parameters": t.parameters or {"type": "object",
                                                             "properties": {}}}
        desc = t.description
    if desc:
        fn["description"] = desc
    return {"type": "function", "function": fn}


def _tools(req: ChatRequest) -> list[dict[str, Any]]:
    """Ollama has no ``tool_choice``: ``none`` sends no tools, ``allowed`` only those;
    ``required`` / a named tool cannot be enforced and fall back to offering the tools."""
    tc = req.tool_choice
    tools = req.tools or []
    if tc is not None:
        if tc.mode == "none":
            return []
        if tc.allowed is not None:
            tools = [t for t in tools if t.name in tc.allowed]
    return [_tool_json(t) for t in tools]


def think_value(req: ChatRequest) -> bool | None:
    """``think`` for the request: False when reasoning is off, True when asked for, None to
    leave the model's default."""
    r = req.reasoning
    if r is None:
        return None
    if r.mode == "disabled" or r.effort == "none":
        return False
    if r.mode is not None or r.effort is not None or r.budget_tokens is not None:
        return True
    return None


def render_request(req: ChatRequest) -> dict[str, Any]:
    custom = req.custom_tool_names()
    body: dict[str, Any] = {"model": req.model, "messages": _messages(req, custom),
                            "stream": req.stream}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    rf = req.response_format
    if rf is not None and rf.type != "text":
        body["format"] = rf.schema if rf.type == "json_schema" and rf.schema else "json"
    think = think_value(req)
    if think is not None:
        body["think"] = think
    options: dict[str, Any] = {}
    for key, val in (("temperature", req.temperature), ("top_p", req.top_p),
                     ("top_k", req.top_k), ("num_predict", req.max_tokens),
                     ("stop", req.stop or None), ("seed", req.seed)):
        if val is not None:
            options[key] = val
    if options:
        body["options"] = options
    return body
