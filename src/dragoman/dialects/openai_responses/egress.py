"""Egress: a neutral request as the Responses body sent to an upstream (OpenAI, the Codex
backend)."""

from __future__ import annotations

from typing import Any

from ...core import (
    ChatRequest,
    Thinking,
)
from .items import input_items
from .wire import (
    NAME,
    ORIGIN,
    custom_names,
    format_dict,
    namespaces,
    reasoning_dict,
    render_tool_choice,
    render_tools,
)

_ENCRYPTED = "reasoning.encrypted_content"


def _replays_reasoning(req: ChatRequest) -> bool:
    return any(isinstance(p, Thinking) and p.origin == ORIGIN and p.signature is not None
               for m in req.messages if m.role == "assistant" for p in m.content)


def render_request(req: ChatRequest) -> dict[str, Any]:
    """The upstream body. Stateless: ``store: false`` (the gateway keeps history itself),
    reasoning replayed through ``encrypted_content``; ``previous_response_id`` never sent."""
    ours = req.dialect == NAME
    body: dict[str, Any] = {"model": req.model}
    if req.system:
        body["instructions"] = "\n\n".join(t.text for t in req.system)
    body["input"] = input_items(req.messages, namespaces(req))
    tools = render_tools(req.tools, req.hosted_tools, foreign=not ours)
    if tools:
        body["tools"] = tools
    if req.tool_choice is not None:
        body["tool_choice"] = render_tool_choice(req.tool_choice, custom_names(req))
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.response_format is not None:
        body["text"] = {"format": format_dict(req.response_format)}
    reasoning = reasoning_dict(req.reasoning, foreign=not ours)
    if reasoning is not None:
        body["reasoning"] = reasoning
    if req.stream:
        body["stream"] = True
    if req.metadata is not None:
        body["metadata"] = req.metadata
    if req.user is not None:
        body["user"] = req.user
    body["store"] = False
    if _replays_reasoning(req) or (reasoning is not None and
                                   reasoning.get("effort", "medium") != "none"):
        body["include"] = [_ENCRYPTED]
    if ours and req.extra:
        _merge_extra(body, req.extra)
    return body


def _merge_extra(body: dict[str, Any], extra: dict[str, Any]) -> None:
    """A same-dialect client's unknown fields, never overriding what was rendered — except
    the sub-keys of ``text``/``include`` (merged) and an explicit ``store``."""
    for k, v in extra.items():
        if k == "text" and isinstance(v, dict):
            body["text"] = {**v, **body.get("text", {})}
        elif k == "include" and isinstance(v, list):
            have = body.get("include", [])
            body["include"] = have + [x for x in v if x not in have]
        elif k == "store" or k not in body:
            body[k] = v
