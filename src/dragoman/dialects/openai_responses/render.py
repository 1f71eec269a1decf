"""Ingress rendering: the Response object, error envelopes and input-item listings."""

from __future__ import annotations

from typing import Any

from ...core import (
    ChatResponse,
    DragomanError,
    ErrorKind,
    Message,
    StopReason,
    Usage,
)
from ..contract import RenderContext
from ..framing import dumps
from .items import listed_input_items, response_output
from .wire import (
    NAME,
    custom_names,
    failure_message,
    format_dict,
    namespaces,
    reasoning_dict,
    render_tool_choice,
    render_tools,
    render_usage,
)

#: Request settings the Response object echoes from ``extra`` (same-dialect clients only),
#: with the API's defaults.
_ECHO_EXTRA: dict[str, Any] = {
    "background": False, "max_tool_calls": None, "prompt_cache_key": None,
    "safety_identifier": None, "service_tier": "default", "top_logprobs": 0,
    "truncation": "disabled",
}


def echo(ctx: RenderContext) -> dict[str, Any]:
    """The request settings every Response object repeats (computed once per response)."""
    r = ctx.request
    if r is None:
        d: dict[str, Any] = {
            "instructions": None, "max_output_tokens": None, "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
            "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}},
            "tool_choice": "auto", "tools": [], "top_p": 1.0, "user": None, "metadata": {},
        }
        d.update(_ECHO_EXTRA)
        return d
    extra = (r.extra or {}) if r.dialect == NAME else {}
    if r.tool_choice is not None:
        tool_choice: Any = render_tool_choice(r.tool_choice, custom_names(r))
    else:
        tool_choice = extra.get("tool_choice", "auto")
    text: dict[str, Any] = {"format": format_dict(r.response_format)
                            if r.response_format is not None else {"type": "text"}}
    extra_text = extra.get("text")
    if isinstance(extra_text, dict):
        text.update((k, v) for k, v in extra_text.items() if k != "format")
    reasoning = reasoning_dict(r.reasoning, foreign=r.dialect != NAME) or {}
    d = {
        "instructions": "\n\n".join(t.text for t in r.system) if r.system else None,
        "max_output_tokens": r.max_tokens,
        "parallel_tool_calls": r.parallel_tool_calls if r.parallel_tool_calls is not None
        else True,
        "previous_response_id": r.previous_response_id,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": r.store if r.store is not None else True,
        "temperature": r.temperature if r.temperature is not None else 1.0,
        "text": text,
        "tool_choice": tool_choice,
        "tools": render_tools(r.tools, r.hosted_tools, foreign=r.dialect != NAME),
        "top_p": r.top_p if r.top_p is not None else 1.0,
        "user": r.user,
        "metadata": r.metadata if r.metadata is not None else {},
    }
    for k, default in _ECHO_EXTRA.items():
        d[k] = extra.get(k, default)
    return d


def response_dict(ctx: RenderContext, settings: dict[str, Any], *, status: str,
                  output: list[dict[str, Any]], usage: Usage | None,
                  incomplete: str | None = None,
                  error: dict[str, Any] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": ctx.id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "completed_at": ctx.created if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete is not None else None,
        "model": ctx.model,
        "output": output,
        "usage": render_usage(usage) if usage is not None else None,
    }
    d.update(settings)
    return d


def terminal_status(stop: StopReason) -> tuple[str, str | None]:
    """Response ``status`` and ``incomplete_details.reason`` for a stop reason."""
    if stop in (StopReason.MAX_TOKENS, StopReason.MAX_STEPS):
        return "incomplete", "max_output_tokens"
    if stop == StopReason.CONTENT_FILTER:
        return "incomplete", "content_filter"
    if stop == StopReason.ERROR:
        return "failed", None
    return "completed", None


GENERIC_FAILURE = {"code": "server_error", "message": "The model failed to generate a response."}


def render_response_object(resp: ChatResponse, ctx: RenderContext,
                           status: str | None = None) -> dict[str, Any]:
    """The Response object as a dict (``GET /v1/responses/{id}``, stream payloads)."""
    st, reason = terminal_status(resp.stop_reason)
    if status is not None:
        st = status
    output = response_output(resp, ctx.id, namespaces(ctx.request), custom_names(ctx.request))
    return response_dict(
        ctx, echo(ctx), status=st, output=output,
        usage=resp.usage, incomplete=reason if st == "incomplete" else None,
        error=dict(GENERIC_FAILURE) if st == "failed" else None)


def render_response(resp: ChatResponse, ctx: RenderContext) -> bytes:
    return dumps(render_response_object(resp, ctx))


def render_input_items(messages: list[Message], response_id: str) -> list[dict[str, Any]]:
    """Input items in the shape ``GET /v1/responses/{id}/input_items`` lists them."""
    return listed_input_items(messages, response_id)


# --- errors ---------------------------------------------------------------------------------

_ENVELOPE: dict[ErrorKind, tuple[str, str | None]] = {
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.CONTEXT_LENGTH: ("invalid_request_error", "context_length_exceeded"),
    ErrorKind.AUTHENTICATION: ("invalid_request_error", "invalid_api_key"),
    ErrorKind.PERMISSION: ("permission_error", None),
    # OpenAI's own 404 for a missing object has no code; a missing model says
    # ``model_not_found`` itself (``router.unknown_model``)
    ErrorKind.NOT_FOUND: ("invalid_request_error", None),
    ErrorKind.CONFLICT: ("invalid_request_error", None),
    ErrorKind.REQUEST_TOO_LARGE: ("invalid_request_error", None),
    ErrorKind.RATE_LIMITED: ("rate_limit_error", "rate_limit_exceeded"),
    ErrorKind.BUDGET_EXHAUSTED: ("insufficient_quota", "insufficient_quota"),
    ErrorKind.CIRCUIT_OPEN: ("server_error", None),
    ErrorKind.OVERLOADED: ("server_error", None),
    ErrorKind.UPSTREAM: ("server_error", None),
    ErrorKind.TRANSPORT: ("server_error", None),
    ErrorKind.TIMEOUT: ("server_error", "timeout"),
}


def render_error(err: DragomanError) -> tuple[int, bytes]:
    typ, code = _ENVELOPE.get(err.kind, ("server_error", None))
    return err.status, dumps({"error": {
        "message": failure_message(err), "type": typ, "param": err.param,
        "code": err.code if err.code is not None else code,
    }})
