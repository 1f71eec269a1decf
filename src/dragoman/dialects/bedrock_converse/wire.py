"""Shared tables of the Bedrock Converse dialect: names, stop reasons, usage, errors."""

from __future__ import annotations

from typing import Any

from ...core import (
    ContextLengthExceeded,
    DragomanError,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    RequestTooLarge,
    StopReason,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    error_for_status,
)

NAME = "bedrock_converse"
"""Dialect name (``ChatRequest.dialect``, ``Opaque.dialect``)."""

ORIGIN = "bedrock"
"""``Thinking.origin`` of reasoning signed by Bedrock: replayed to Bedrock only."""

_STOP_FROM_WIRE: dict[str, StopReason] = {
    "end_turn": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_USE,
    "max_tokens": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "guardrail_intervened": StopReason.CONTENT_FILTER,
    "content_filtered": StopReason.CONTENT_FILTER,
    "malformed_model_output": StopReason.ERROR,
    "malformed_tool_use": StopReason.ERROR,
    "model_context_window_exceeded": StopReason.MAX_TOKENS,
}


def stop_from_wire(value: Any) -> StopReason:
    if isinstance(value, str):
        return _STOP_FROM_WIRE.get(value, StopReason.END_TURN)
    return StopReason.END_TURN


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def usage_from_wire(raw: Any) -> Usage:
    """Converse ``usage``: ``inputTokens`` excludes cache reads and writes (as Anthropic
    counts), neutral ``input_tokens`` is the whole prompt."""
    if not isinstance(raw, dict):
        return Usage()
    read = _int(raw.get("cacheReadInputTokens"))
    write = _int(raw.get("cacheWriteInputTokens"))
    return Usage(input_tokens=_int(raw.get("inputTokens")) + read + write,
                 output_tokens=_int(raw.get("outputTokens")),
                 cached_tokens=read, cache_write_tokens=write)


# --- errors ----------------------------------------------------------------------------------


def _is_context_length(message: str) -> bool:
    m = message.lower()
    return ("too long" in m or "context window" in m or "context length" in m
            or "too many tokens" in m or "max input tokens" in m)


def error_for_type(etype: str, message: str, status: int | None = None) -> DragomanError:
    """A Bedrock error type (HTTP ``x-amzn-ErrorType`` / ``__type``, or an in-stream
    ``:exception-type``, compared case-insensitively) → core error. Unknown types fall back
    to the HTTP status, then to a generic upstream error."""
    t = etype.lower()
    if t == "validationexception":
        if _is_context_length(message):
            return ContextLengthExceeded(message)
        return InvalidRequest(message)
    if t in ("throttlingexception", "servicequotaexceededexception"):
        return RateLimited(message)
    if t in ("serviceunavailableexception", "modelnotreadyexception"):
        return Overloaded(message)
    if t == "modeltimeoutexception":
        return UpstreamTimeout(message)
    if t == "resourcenotfoundexception":
        return NotFound(message)
    if t in ("modelerrorexception", "modelstreamerrorexception", "internalserverexception",
             "internalfailure"):
        return UpstreamError(message)
    if t in ("accessdeniedexception", "unrecognizedclientexception",
             "expiredtokenexception", "invalidsignatureexception",
             "incompletesignatureexception", "missingauthenticationtokenexception"):
        return UpstreamError(f"upstream rejected the gateway's credentials: {message}")
    if t == "requestentitytoolargeexception":
        return RequestTooLarge(message)
    if status is not None:
        if status == 400 and _is_context_length(message):
            return ContextLengthExceeded(message)
        return error_for_status(status, message)
    return UpstreamError(message)


def clean_error_type(raw: str | None) -> str:
    """``ValidationException:http://internal…`` / ``com.amazon.coral#ValidationException``
    → ``ValidationException``."""
    if not raw:
        return ""
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()
