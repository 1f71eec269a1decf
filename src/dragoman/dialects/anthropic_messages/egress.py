"""Neutral → upstream: render a Messages request body for an Anthropic-family upstream."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ...core import (
    ChatRequest,
    File,
    Image,
    Message,
    Opaque,
    Part,
    RedactedThinking,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolResult,
)
from ..data_urls import split_data_url
from ..effort import budget_for_effort
from ..tool_args import CUSTOM_TOOL_SCHEMA, custom_tool_description
from ..tool_args import object_from_arguments as input_from_arguments
from .wire import NAME, ORIGIN, TOOL_EXTRAS_KEY

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when the neutral request has none (the Messages API requires one)."""

DERIVED_MAX_TOKENS_CAP = 32000
"""Upper bound for a ``max_tokens`` the gateway derives itself to fit a thinking budget
(the smallest output limit of thinking-capable Claude models)."""

COUNT_TOKENS_FIELDS = frozenset({
    "model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
    "cache_control", "context_management", "mcp_servers",
})


def render_request(req: ChatRequest, *, inline_system: bool = False) -> dict[str, Any]:
    """The upstream ``POST /v1/messages`` body.

    System text: ``req.system`` plus every system/developer message becomes the top-level
    ``system`` blocks, in order (cache markers kept). With ``inline_system=True``, system
    messages that follow the first user/assistant turn are instead kept in place as
    ``role: "system"`` messages, as Claude Code sends them (first-party API only; it keeps
    the cached prompt prefix stable).
    """
    same = req.dialect == NAME
    body: dict[str, Any] = {"model": req.model}
    thinking, effort, max_tokens = _render_reasoning(req, same)
    body["max_tokens"] = max_tokens

    system: list[dict[str, Any]] = [_text_block(t) for t in req.system or () if t.text]
    body["messages"] = _render_messages(req.messages, system, inline_system)
    if system:
        body["system"] = system

    tools = _render_tools(req, same)
    if tools:
        body["tools"] = tools
        choice = _render_tool_choice(req)
        if choice is not None:
            body["tool_choice"] = choice

    if thinking is not None:
        body["thinking"] = thinking
    output_config: dict[str, Any] = {}
    if effort is not None:
        output_config["effort"] = effort
    rf = req.response_format
    if rf is not None and rf.type == "json_schema" and rf.schema is not None:
        output_config["format"] = {"type": "json_schema", "schema": rf.schema}
    if output_config:
        body["output_config"] = output_config

    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None:
        body["top_k"] = req.top_k
    metadata: dict[str, Any] = dict(req.metadata or {}) if same else {}
    if req.user is not None:
        metadata["user_id"] = req.user
    if metadata:
        body["metadata"] = metadata
    if req.stream:
        body["stream"] = True

    if same and req.extra:
        for k, v in req.extra.items():
            if k == TOOL_EXTRAS_KEY:
                continue
            cur = body.get(k)
            if cur is None:
                body[k] = v
            elif isinstance(cur, dict) and isinstance(v, dict):
                for sk, sv in v.items():
                    cur.setdefault(sk, sv)
    return body


def render_count_tokens_request(req: ChatRequest) -> dict[str, Any]:
    """The upstream ``POST /v1/messages/count_tokens`` body."""
    body = render_request(req)
    return {k: v for k, v in body.items() if k in COUNT_TOKENS_FIELDS}


# --- reasoning -------------------------------------------------------------------------------


def _render_reasoning(
    req: ChatRequest, same: bool
) -> tuple[dict[str, Any] | None, str | None, int]:
    """(thinking, output_config.effort, max_tokens)."""
    max_tokens = req.max_tokens
    r = req.reasoning
    if r is None:
        return None, None, max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
    if same:
        # Faithful: an Anthropic client's own settings.
        thinking: dict[str, Any] | None = None
        if r.mode is not None:
            thinking = {"type": r.mode}
            if r.mode == "enabled":
                thinking["budget_tokens"] = (r.budget_tokens if r.budget_tokens is not None
                                             else budget_for_effort(r.effort or "medium",
                                                                    max_tokens) or 1024)
            if r.summary is not None and r.mode != "disabled":
                thinking["display"] = r.summary
        if max_tokens is None:
            max_tokens = _fit(DEFAULT_MAX_TOKENS, thinking)
        return thinking, r.effort, max_tokens

    # Another dialect's reasoning settings: translate to a thinking budget.
    if r.mode == "disabled" or r.effort == "none":
        return None, None, max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
    if r.mode == "adaptive":
        thinking = {"type": "adaptive"}
        return thinking, None, max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
    budget = r.budget_tokens
    if budget is None and r.effort is not None:
        budget = budget_for_effort(r.effort, max_tokens)
    elif budget is None and r.mode == "enabled":
        budget = budget_for_effort("medium", max_tokens)
    if budget is None:
        return None, None, max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS
    if max_tokens is None:
        max_tokens = max(DEFAULT_MAX_TOKENS, min(budget + DEFAULT_MAX_TOKENS,
                                                 DERIVED_MAX_TOKENS_CAP))
        budget = min(budget, max_tokens - 1024)
    elif budget >= max_tokens:
        budget = max_tokens - 1
    if budget < 1024:
        return None, None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, None, max_tokens


def _fit(max_tokens: int, thinking: dict[str, Any] | None) -> int:
    budget = thinking.get("budget_tokens") if thinking else None
    if isinstance(budget, int) and budget >= max_tokens:
        return budget + DEFAULT_MAX_TOKENS
    return max_tokens


# --- messages --------------------------------------------------------------------------------


def _text_block(t: Text) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "text", "text": t.text}
    if t.cache_control is not None:
        b["cache_control"] = t.cache_control
    return b


def _render_messages(
    messages: list[Message], system: list[dict[str, Any]], inline_system: bool
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen_turn = False
    pending_results: list[dict[str, Any]] = []  # tool results waiting for the next user turn

    def flush_results() -> None:
        if pending_results:
            out.append({"role": "user", "content": list(pending_results)})
            pending_results.clear()

    for m in messages:
        if m.is_system:
            blocks = [_text_block(p) for p in m.content if isinstance(p, Text) and p.text]
            if inline_system and seen_turn:
                if blocks:
                    flush_results()
                    out.append({"role": "system", "content": blocks})
            else:
                system.extend(blocks)
            continue
        seen_turn = True
        if m.role == "tool":
            for p in m.content:
                if isinstance(p, ToolResult):
                    pending_results.append(_tool_result_block(p))
            trailing = [b for p in m.content if not isinstance(p, ToolResult)
                        if (b := _user_part(p)) is not None]
            if trailing:
                out.append({"role": "user", "content": [*pending_results, *trailing]})
                pending_results.clear()
            continue
        if m.role == "user":
            results = [_tool_result_block(p) for p in m.content if isinstance(p, ToolResult)]
            blocks = [b for p in m.content if not isinstance(p, ToolResult)
                      if (b := _user_part(p)) is not None]
            content = [*pending_results, *results, *blocks]
            pending_results.clear()
            if content:
                out.append({"role": "user", "content": content})
            continue
        # assistant
        flush_results()
        blocks = [b for p in m.content if (b := _assistant_part(p)) is not None]
        if blocks:
            out.append({"role": "assistant", "content": blocks})
    flush_results()
    return out


def _user_part(p: Part) -> dict[str, Any] | None:
    if isinstance(p, Text):
        return _text_block(p)
    if isinstance(p, Image):
        return _image_block(p)
    if isinstance(p, File):
        return _document_block(p)
    if isinstance(p, Opaque):
        return p.data if p.dialect == NAME else None
    return None  # tool calls / thinking have no place in a user turn


def _assistant_part(p: Part) -> dict[str, Any] | None:
    if isinstance(p, Text):
        return _text_block(p)
    if isinstance(p, ToolCall):
        b: dict[str, Any] = {"type": "tool_use", "id": p.id, "name": p.name,
                             "input": input_from_arguments(p.arguments, p.kind == "custom")}
        if p.cache_control is not None:
            b["cache_control"] = p.cache_control
        return b
    if isinstance(p, Thinking):
        if p.origin != ORIGIN or p.signature is None:
            return None  # signatures are provider-bound: never replay another family's
        return {"type": "thinking", "thinking": p.text, "signature": p.signature}
    if isinstance(p, RedactedThinking):
        if p.origin != ORIGIN:
            return None
        return {"type": "redacted_thinking", "data": p.data}
    if isinstance(p, Opaque):
        return p.data if p.dialect == NAME else None
    return None  # images/files/tool results have no place in an assistant turn


def _tool_result_block(r: ToolResult) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "tool_result", "tool_use_id": r.call_id}
    c = r.content
    if len(c) == 1 and isinstance(c[0], Text) and c[0].cache_control is None:
        b["content"] = c[0].text
    elif c:
        blocks = [x for p in c if (x := _user_part(p)) is not None]
        if blocks:
            b["content"] = blocks
    if r.is_error:
        b["is_error"] = True
    if r.cache_control is not None:
        b["cache_control"] = r.cache_control
    return b


_MAGIC = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"),
          ("UklGR", "image/webp"))


def _guess_image_mime(data: str) -> str:
    for prefix, mime in _MAGIC:
        if data.startswith(prefix):
            return mime
    return "image/png"


def _image_block(p: Image) -> dict[str, Any] | None:
    src: dict[str, Any]
    if p.data is not None:
        src = {"type": "base64", "media_type": p.mime or _guess_image_mime(p.data),
               "data": p.data}
    elif p.url is not None:
        inline = split_data_url(p.url)
        if inline is not None:
            src = {"type": "base64", "media_type": inline[0], "data": inline[1]}
        else:
            src = {"type": "url", "url": p.url}
    else:
        return None
    b: dict[str, Any] = {"type": "image", "source": src}
    if p.cache_control is not None:
        b["cache_control"] = p.cache_control
    return b


def _document_block(p: File) -> dict[str, Any] | None:
    src: dict[str, Any]
    if p.file_id is not None:
        src = {"type": "file", "file_id": p.file_id}
    elif p.data is not None:
        src = _inline_document(p.mime, p.data)
    elif p.url is not None:
        inline = split_data_url(p.url)
        src = _inline_document(*inline) if inline else {"type": "url", "url": p.url}
    else:
        return None
    b: dict[str, Any] = {"type": "document", "source": src}
    if p.filename is not None:
        b["title"] = p.filename
    if p.cache_control is not None:
        b["cache_control"] = p.cache_control
    return b


def _inline_document(mime: str | None, data: str) -> dict[str, Any]:
    if mime is not None and mime.startswith("text/"):
        try:
            text = base64.b64decode(data, validate=True).decode()
        except (binascii.Error, ValueError):
            pass
        else:
            return {"type": "text", "media_type": "text/plain", "data": text}
    return {"type": "base64", "media_type": mime or "application/pdf", "data": data}


# --- tools -----------------------------------------------------------------------------------


def _render_tools(req: ChatRequest, same: bool) -> list[dict[str, Any]]:
    allowed = req.tool_choice.allowed if req.tool_choice is not None else None
    extras: dict[str, Any] = {}
    if same and req.extra and isinstance(req.extra.get(TOOL_EXTRAS_KEY), dict):
        extras = req.extra[TOOL_EXTRAS_KEY]
    out: list[dict[str, Any]] = []
    for t in req.tools or ():
        if allowed is not None and t.name not in allowed:
            continue  # OpenAI ``allowed_tools``: Anthropic can only narrow the list itself
        out.append(_tool(t, same, extras.get(t.name)))
    for h in req.hosted_tools or ():
        if h.dialect == NAME:
            out.append(h.data)
    return out


def _tool(t: Tool, same: bool, extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name}
    if t.kind == "custom":
        desc = custom_tool_description(t)
        if desc:
            d["description"] = desc
        d["input_schema"] = CUSTOM_TOOL_SCHEMA
    else:
        if t.description is not None:
            d["description"] = t.description
        d["input_schema"] = (t.parameters if t.parameters is not None
                             else {"type": "object", "properties": {}})
        if t.strict is True or (same and t.strict is not None):
            d["strict"] = t.strict
    if t.cache_control is not None:
        d["cache_control"] = t.cache_control
    if isinstance(extra, dict):
        for k, v in extra.items():
            d.setdefault(k, v)
    return d


def _render_tool_choice(req: ChatRequest) -> dict[str, Any] | None:
    tc = req.tool_choice
    choice: dict[str, Any] | None
    if tc is None:
        choice = None
    elif tc.mode == "tool" and tc.name is not None:
        choice = {"type": "tool", "name": tc.name}
    elif tc.mode == "required":
        choice = {"type": "any"}
    elif tc.mode == "none":
        return {"type": "none"}
    else:
        choice = {"type": "auto"}
    if req.parallel_tool_calls is False:
        choice = choice or {"type": "auto"}
        choice["disable_parallel_tool_use"] = True
    elif req.parallel_tool_calls is True and choice is not None:
        choice["disable_parallel_tool_use"] = False
    return choice
