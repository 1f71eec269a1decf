"""Pieces shared by the ingress and egress halves of the Responses dialect: names,
content-part conversion, tool rendering, usage and error-code tables."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ...core import (
    BudgetExhausted,
    ChatRequest,
    ContextLengthExceeded,
    DragomanError,
    ErrorKind,
    File,
    HostedTool,
    Image,
    InvalidRequest,
    Opaque,
    Overloaded,
    RateLimited,
    Reasoning,
    ResponseFormat,
    Text,
    Tool,
    ToolChoice,
    UpstreamError,
    UpstreamTimeout,
    Usage,
)
from ..data_urls import data_url
from ..effort import effort_for_budget

NAME = "openai_responses"
ORIGIN = "openai"

#: Output/input item types this dialect translates; every other item is Opaque.
KNOWN_ITEMS = frozenset({
    "message", "reasoning", "function_call", "function_call_output",
    "custom_tool_call", "custom_tool_call_output",
})


# --- content parts ------------------------------------------------------------------------


def render_part(p: Any, assistant: bool, listing: bool = False) -> dict[str, Any] | None:
    """One neutral content part as a Responses content part (None: no Responses form)."""
    if isinstance(p, Text):
        if assistant:
            if listing:
                return {"type": "output_text", "text": p.text, "annotations": [],
                        "logprobs": []}
            return {"type": "output_text", "text": p.text, "annotations": []}
        return {"type": "input_text", "text": p.text}
    if isinstance(p, Image):
        img: dict[str, Any] = {"type": "input_image"}
        if p.data is not None:
            img["image_url"] = data_url(p.mime, p.data)
        elif p.url is not None:
            img["image_url"] = p.url
        if p.detail is not None:
            img["detail"] = p.detail
        elif listing:
            img["detail"] = "auto"
        return img
    if isinstance(p, File):
        f: dict[str, Any] = {"type": "input_file"}
        if p.data is not None:
            f["file_data"] = data_url(p.mime, p.data)
        if p.file_id is not None:
            f["file_id"] = p.file_id
        if p.url is not None:
            f["file_url"] = p.url
        if p.filename is not None:
            f["filename"] = p.filename
        return f
    if isinstance(p, Opaque) and p.dialect == NAME:
        return p.data
    return None


def split_data(url: str) -> tuple[str | None, str] | None:
    """``data:<mime>;base64,<data>`` → (mime, data); None when ``url`` is no base64 data URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[5:-7] or None, data


# --- tools --------------------------------------------------------------------------------


def render_tool(t: Tool, foreign: bool) -> dict[str, Any]:
    """A neutral tool in the flat Responses shape. ``foreign``: the request came from
    another dialect, so unset ``strict``/``parameters`` take that dialect's meaning
    (non-strict, no arguments) instead of being omitted."""
    if t.kind == "custom":
        d: dict[str, Any] = {"type": "custom", "name": t.name}
        if t.description is not None:
            d["description"] = t.description
        if t.format is not None:
            d["format"] = t.format
        return d
    d = {"type": "function", "name": t.name}
    if t.description is not None:
        d["description"] = t.description
    if t.parameters is not None:
        d["parameters"] = t.parameters
    elif foreign:
        d["parameters"] = {"type": "object", "properties": {}}
    if t.strict is not None:
        d["strict"] = t.strict
    elif foreign:
        d["strict"] = False
    return d


def render_tools(tools: list[Tool] | None, hosted: list[HostedTool] | None,
                 foreign: bool) -> list[dict[str, Any]]:
    """Function/custom tools in order (namespaced ones regrouped under one ``namespace``
    tool at the place of the first), then this dialect's hosted tools verbatim."""
    out: list[dict[str, Any]] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in tools or ():
        d = render_tool(t, foreign)
        if t.namespace is None:
            out.append(d)
            continue
        group = groups.get(t.namespace)
        if group is None:
            group = groups[t.namespace] = []
            out.append({"type": "namespace", "name": t.namespace,
                        "description": t.namespace_description or "", "tools": group})
        group.append(d)
    for h in hosted or ():
        if h.dialect == NAME:
            out.append(h.data)
    return out


def namespaces(req: ChatRequest | None) -> dict[str, str]:
    """Tool name → namespace for the client's namespaced tools (calls must name it)."""
    if req is None or not req.tools:
        return {}
    return {t.name: t.namespace for t in req.tools if t.namespace is not None}


def custom_names(req: ChatRequest | None) -> frozenset[str]:
    return req.custom_tool_names() if req is not None else frozenset()


def custom_input(arguments: str) -> str:
    """The free text of a custom-tool call that an upstream without custom tools made
    through the emulating function (one string argument, ``{"input": "..."}``)."""
    try:
        args = msgspec.json.decode(arguments)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return arguments
    if isinstance(args, dict):
        val = args.get("input")
        if isinstance(val, str):
            return val
        if len(args) == 1:
            (only,) = args.values()
            if isinstance(only, str):
                return only
    return arguments


def render_tool_choice(tc: ToolChoice, custom: frozenset[str]) -> Any:
    if tc.allowed is not None and tc.mode != "none":
        return {"type": "allowed_tools",
                "mode": "required" if tc.mode in ("required", "tool") else "auto",
                "tools": [{"type": "custom" if n in custom else "function", "name": n}
                          for n in tc.allowed]}
    if tc.mode == "tool" and tc.name is not None:
        return {"type": "custom" if tc.name in custom else "function", "name": tc.name}
    if tc.mode == "tool":
        return "required"
    return tc.mode


# --- text format, reasoning ----------------------------------------------------------------


def format_dict(rf: ResponseFormat) -> dict[str, Any]:
    """``text.format`` (flat, unlike Chat's nested ``json_schema``)."""
    if rf.type != "json_schema":
        return {"type": rf.type}
    d: dict[str, Any] = {"type": "json_schema", "name": rf.name or "response",
                         "schema": rf.schema if rf.schema is not None else {}}
    if rf.strict is not None:
        d["strict"] = rf.strict
    if rf.description is not None:
        d["description"] = rf.description
    return d


_SUMMARIES = frozenset({"auto", "concise", "detailed"})


def reasoning_dict(r: Reasoning | None, foreign: bool) -> dict[str, Any] | None:
    """``reasoning`` from the neutral settings (a budget becomes the covering effort)."""
    if r is None:
        return None
    effort = r.effort
    if effort is None:
        if r.mode == "disabled":
            effort = "none"
        elif r.budget_tokens is not None:
            effort = effort_for_budget(r.budget_tokens)
    d: dict[str, Any] = {}
    if effort is not None:
        d["effort"] = effort
    if r.summary is not None and (not foreign or r.summary in _SUMMARIES):
        d["summary"] = r.summary
    return d or None


# --- usage --------------------------------------------------------------------------------


def render_usage(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens,
                                 "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def parse_usage(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    ind = u.get("input_tokens_details")
    outd = u.get("output_tokens_details")
    ind = ind if isinstance(ind, dict) else {}
    outd = outd if isinstance(outd, dict) else {}
    return Usage(
        input_tokens=_int(u.get("input_tokens")),
        output_tokens=_int(u.get("output_tokens")),
        cached_tokens=_int(ind.get("cached_tokens")),
        cache_write_tokens=_int(ind.get("cache_write_tokens")),
        reasoning_tokens=_int(outd.get("reasoning_tokens")),
    )


# --- errors -------------------------------------------------------------------------------

#: ``response.error.code`` values a Responses client knows (the SDK literal plus the ones
#: Codex recognises); a ``DragomanError.code`` among them is passed through as is.
KNOWN_CODES = frozenset({
    "server_error", "rate_limit_exceeded", "invalid_prompt", "data_residency_mismatch",
    "bio_policy", "misalignment_policy_violation", "vector_store_timeout", "invalid_image",
    "invalid_image_format", "invalid_base64_image", "invalid_image_url", "image_too_large",
    "image_too_small", "image_parse_error", "image_content_policy_violation",
    "invalid_image_mode", "image_file_too_large", "unsupported_image_media_type",
    "empty_image_file", "failed_to_download_image", "image_file_not_found",
    "context_length_exceeded", "insufficient_quota", "usage_not_included",
    "usage_limit_reached", "server_is_overloaded", "slow_down",
})

_KIND_CODE = {
    ErrorKind.RATE_LIMITED: "rate_limit_exceeded",
    ErrorKind.BUDGET_EXHAUSTED: "insufficient_quota",
    ErrorKind.CONTEXT_LENGTH: "context_length_exceeded",
    ErrorKind.INVALID_REQUEST: "invalid_prompt",
    ErrorKind.REQUEST_TOO_LARGE: "invalid_prompt",
}

_QUOTA = frozenset({"insufficient_quota", "usage_limit_reached", "usage_not_included"})
_OVERLOAD = frozenset({"server_is_overloaded", "slow_down", "overloaded", "overloaded_error"})
_CLIENT_FAULT = frozenset({
    "data_residency_mismatch", "bio_policy", "misalignment_policy_violation",
    "unsupported_image_media_type", "empty_image_file", "failed_to_download_image",
})
_RETRY_RE = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)


def failure_code(err: DragomanError) -> str:
    """The in-band ``error.code`` for a failure."""
    if err.code is not None and err.code in KNOWN_CODES:
        return err.code
    return _KIND_CODE.get(err.kind, "server_error")


def failure_message(err: DragomanError) -> str:
    """The error message, with the retry hint Codex parses when a delay is known."""
    msg = err.message
    if err.retry_after is not None and "try again in" not in msg.lower():
        msg = f"{msg} Please try again in {err.retry_after:g}s."
    return msg


def retry_after(message: str) -> float | None:
    m = _RETRY_RE.search(message)
    if m is None:
        return None
    val = float(m.group(1))
    return val / 1000.0 if m.group(2).lower() == "ms" else val


def error_for_code(code: str | None, message: str) -> DragomanError:
    """Classify an in-band failure (``response.failed`` / ``error`` event) by its code."""
    c = code or ""
    if c == "rate_limit_exceeded":
        return RateLimited(message, retry_after=retry_after(message), code=c)
    if c in _QUOTA:
        return BudgetExhausted(message, code=c)
    if c == "context_length_exceeded":
        return ContextLengthExceeded(message, code=c)
    if c in _OVERLOAD:
        return Overloaded(message, retry_after=retry_after(message), code=c)
    if c == "timeout":
        return UpstreamTimeout(message, code=c)
    if c.startswith(("invalid_", "image_")) or c in _CLIENT_FAULT:
        return InvalidRequest(message, code=c)
    return UpstreamError(message, code=c or None)
