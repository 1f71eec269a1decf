"""Egress: a neutral request as the Chat Completions body sent to an upstream (OpenAI, Azure,
Mistral, vLLM…)."""

from __future__ import annotations

from typing import Any

from ...core import (
    ChatRequest,
    File,
    Image,
    Message,
    Opaque,
    Part,
    Reasoning,
    Refusal,
    SearchResult,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from ..data_urls import data_url
from ..effort import effort_for_budget
from ..sampling import Sampling
from .render import tool_call_json
from .tools import nested_format
from .wire import NAME

SAMPLING = Sampling(NAME)


def _part_json(p: Part) -> dict[str, Any] | None:
    """A user/system/tool content part; None for parts Chat cannot carry there."""
    if isinstance(p, Text):
        return {"type": "text", "text": p.text}
    if isinstance(p, Image):
        url = data_url(p.mime, p.data) if p.data is not None else p.url
        if not url:
            return None
        img: dict[str, Any] = {"url": url}
        if p.detail is not None:
            img["detail"] = p.detail
        return {"type": "image_url", "image_url": img}
    if isinstance(p, File):
        f: dict[str, Any] = {}
        if p.data is not None:
            f["file_data"] = data_url(p.mime, p.data) if p.mime else p.data
        if p.file_id is not None:
            f["file_id"] = p.file_id
        if p.filename is not None:
            f["filename"] = p.filename
        if not f:  # a URL-only document: Chat has no form for it
            return {"type": "text", "text": f"[document: {p.url}]"} if p.url else None
        return {"type": "file", "file": f}
    if isinstance(p, SearchResult):  # Chat has no search results: their text, with source
        return {"type": "text", "text": p.as_text()}
    if isinstance(p, Opaque) and p.dialect == NAME:
        return p.data
    return None


def _content_json(parts: list[Any]) -> str | list[dict[str, Any]]:
    """One text part → a string; anything else → an array of parts; nothing → ""."""
    if len(parts) == 1 and parts[0].get("type") == "text":
        return str(parts[0]["text"])
    return parts if parts else ""


def _tool_result_content(r: ToolResult) -> str | list[dict[str, Any]]:
    """Chat tool messages carry text only: images and files become a short text note."""
    parts: list[dict[str, Any]] = []
    for p in r.content:
        if isinstance(p, Text):
            parts.append({"type": "text", "text": p.text})
        elif isinstance(p, Image):
            parts.append({"type": "text", "text": f"[image: {p.url}]" if p.url and p.data is None
                          else f"[image omitted: {p.mime or 'inline data'}]"})
        elif isinstance(p, File):
            what = p.filename or p.url or p.file_id or "inline data"
            parts.append({"type": "text", "text": f"[file omitted: {what}]"})
        else:  # search results, tool references: shown as text
            parts.append({"type": "text", "text": p.as_text()})
    if r.is_error:
        if parts:
            parts[0] = {"type": "text", "text": "Error: " + parts[0]["text"]}
        else:
            parts.append({"type": "text", "text": "Error"})
    return _content_json(parts)


def _messages_json(req: ChatRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        out.append({"role": "system", "content": _content_json(
            [{"type": "text", "text": t.text} for t in req.system])})
    for m in req.messages:
        content = m.content
        # The commonest turn, one text part and no name: its text is the content (what
        # ``_message_json`` makes of it), with no loop over parts and no part objects.
        if len(content) == 1 and type(content[0]) is Text and m.name is None \
                and m.role != "tool":
            out.append({"role": m.role, "content": content[0].text})
        else:
            _message_json(m, out)
    return out


def _message_json(m: Message, out: list[dict[str, Any]]) -> None:
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    refusals: list[str] = []
    for p in m.content:
        if isinstance(p, ToolResult):  # results first (canonical form keeps them in "tool")
            out.append({"role": "tool", "tool_call_id": p.call_id,
                        "content": _tool_result_content(p)})
        elif isinstance(p, ToolCall):
            if m.role == "assistant":
                calls.append(tool_call_json(p))
        elif m.role == "assistant":
            if isinstance(p, Text):
                parts.append({"type": "text", "text": p.text})
            elif isinstance(p, Refusal):
                refusals.append(p.text)
            elif isinstance(p, Opaque) and p.dialect == NAME:
                parts.append(p.data)
            # Thinking / RedactedThinking: Chat cannot replay reasoning; dropped.
        elif m.role != "tool":
            pj = _part_json(p)
            if pj is not None and (m.role == "user" or pj.get("type") == "text"):
                parts.append(pj)
    if m.role == "tool":
        return
    msg: dict[str, Any] = {"role": m.role}
    if m.role == "assistant":
        msg["content"] = _content_json(parts) if parts or not (calls or refusals) else None
        if refusals:
            msg["refusal"] = "".join(refusals)
        if calls:
            msg["tool_calls"] = calls
    else:
        if not parts and any(isinstance(p, ToolResult) for p in m.content):
            return  # a user turn that only carried tool results
        msg["content"] = _content_json(parts)
    if m.name is not None:
        msg["name"] = m.name
    out.append(msg)


def _tool_json(t: Tool) -> dict[str, Any]:
    if t.kind == "custom":
        c: dict[str, Any] = {"name": t.name}
        if t.description is not None:
            c["description"] = t.description
        if t.format is not None:
            c["format"] = nested_format(t.format)
        return {"type": "custom", "custom": c}
    fn: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        fn["description"] = t.description
    if t.parameters is not None:
        fn["parameters"] = t.parameters
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def _named_json(name: str, custom: set[str]) -> dict[str, Any]:
    if name in custom:
        return {"type": "custom", "custom": {"name": name}}
    return {"type": "function", "function": {"name": name}}


def _tool_choice_json(tc: ToolChoice, custom: set[str]) -> Any:
    if tc.mode == "tool" and tc.name:
        return _named_json(tc.name, custom)
    if tc.allowed is not None and tc.mode in ("auto", "required"):
        return {"type": "allowed_tools", "allowed_tools": {
            "mode": tc.mode, "tools": [_named_json(n, custom) for n in tc.allowed]}}
    return tc.mode if tc.mode != "tool" else "required"


def _reasoning_effort(r: Reasoning) -> str | None:
    """``effort`` as given, else the effort covering ``budget_tokens``; ``disabled`` and
    ``adaptive`` without either leave the model's default."""
    if r.effort is not None:
        return r.effort
    if r.budget_tokens is not None and r.mode != "disabled":
        return effort_for_budget(r.budget_tokens)
    return None


def render_request(req: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": req.model, "messages": _messages_json(req)}
    tools: list[dict[str, Any]] = []
    if req.tools or req.hosted_tools:  # (most requests have none: no comprehension)
        tools = [_tool_json(t) for t in req.tools or ()]
        tools.extend(h.data for h in req.hosted_tools or () if h.dialect == NAME)
    if tools:
        body["tools"] = tools
        custom = {t.name for t in req.tools or () if t.kind == "custom"}
        if req.tool_choice is not None:
            body["tool_choice"] = _tool_choice_json(req.tool_choice, custom)
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    SAMPLING.render(req, body)
    rf = req.response_format
    if rf is not None:
        if rf.type == "json_schema":
            js: dict[str, Any] = {"name": rf.name or "response"}
            for key in ("schema", "strict", "description"):
                val = getattr(rf, key)
                if val is not None:
                    js[key] = val
            body["response_format"] = {"type": "json_schema", "json_schema": js}
        else:
            body["response_format"] = {"type": rf.type}
    if req.reasoning is not None:
        effort = _reasoning_effort(req.reasoning)
        if effort is not None:
            body["reasoning_effort"] = effort
    same = req.dialect == NAME
    if req.metadata is not None and same:
        # OpenAI accepts metadata only with store:true, which only a Chat client sets.
        body["metadata"] = req.metadata
    if req.stream:
        body["stream"] = True
        so = req.extra.get("stream_options") if same and req.extra else None
        body["stream_options"] = {**(so if isinstance(so, dict) else {}), "include_usage": True}
    if same and req.extra:
        for k, v in req.extra.items():
            if k not in body and k != "stream_options":
                body[k] = v
    return body
