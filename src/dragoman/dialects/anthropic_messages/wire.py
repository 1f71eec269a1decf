"""Shared tables and small helpers of the Anthropic Messages dialect."""

from __future__ import annotations

from typing import Any

from ...core import (
    ContextLengthExceeded,
    DragomanError,
    ErrorKind,
    InvalidRequest,
    NotFound,
    Overloaded,
    RateLimited,
    RequestTooLarge,
    StopReason,
    UpstreamError,
    UpstreamTimeout,
    Usage,
)

NAME = "anthropic_messages"
"""Dialect name (``ChatRequest.dialect``, ``HostedTool.dialect``, ``Opaque.dialect``)."""

ORIGIN = "anthropic"
"""``Thinking.origin`` / ``RedactedThinking.origin`` family of Anthropic signatures."""

ID_PREFIX = "msg_"
TOOL_ID_PREFIX = "toolu_"

TOOL_EXTRAS_KEY = "_anthropic_tool_extras"
"""Reserved key of ``ChatRequest.extra``: per-tool fields the neutral ``Tool`` has no slot
for (``defer_loading``, ``eager_input_streaming``, ``input_examples``…), by tool name.
Only this dialect's ``render_request`` reads it (extra is forwarded to same-dialect
upstreams only) and it never reaches the wire under that name."""


# Content block types that have no neutral meaning and travel as ``Opaque`` parts
# (besides any type ending in ``_tool_use`` / ``_tool_result``).
OPAQUE_BLOCK_TYPES = frozenset({
    "server_tool_use", "mcp_tool_use", "mcp_tool_result", "container_upload",
    "search_result", "compaction",
})


def is_opaque_block_type(t: str) -> bool:
    return t in OPAQUE_BLOCK_TYPES or t.endswith(("_tool_use", "_tool_result"))


# --- stop reasons ------------------------------------------------------------------------

_STOP_FROM_WIRE: dict[str, StopReason] = {
    "end_turn": StopReason.END_TURN,
    "max_tokens": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "tool_use": StopReason.TOOL_USE,
    "refusal": StopReason.REFUSAL,
    "model_context_window_exceeded": StopReason.MAX_TOKENS,
    # A paused server-tool turn has no neutral form; the closest is a normal end.
    "pause_turn": StopReason.END_TURN,
}

_STOP_TO_WIRE: dict[StopReason, str] = {
    StopReason.END_TURN: "end_turn",
    StopReason.MAX_TOKENS: "max_tokens",
    StopReason.MAX_STEPS: "max_tokens",
    StopReason.TOOL_USE: "tool_use",
    StopReason.STOP_SEQUENCE: "stop_sequence",
    StopReason.CONTENT_FILTER: "refusal",
    StopReason.REFUSAL: "refusal",
    # A failed turn that still produced a response body: nothing closer than end_turn.
    StopReason.ERROR: "end_turn",
}


def stop_from_wire(value: Any) -> StopReason:
    if isinstance(value, str):
        return _STOP_FROM_WIRE.get(value, StopReason.END_TURN)
    return StopReason.END_TURN


def stop_to_wire(reason: StopReason, sequence: str | None) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence). ``stop_sequence`` without the matched string is
    reported as ``end_turn`` (mapping.md §6)."""
    if reason is StopReason.STOP_SEQUENCE:
        if sequence is None:
            return "end_turn", None
        return "stop_sequence", sequence
    return _STOP_TO_WIRE.get(reason, "end_turn"), None


# --- usage -------------------------------------------------------------------------------


def usage_to_wire(u: Usage) -> dict[str, Any]:
    """Neutral → Anthropic: Anthropic ``input_tokens`` exclude cache reads and writes."""
    out: dict[str, Any] = {
        "input_tokens": max(0, u.input_tokens - u.cached_tokens - u.cache_write_tokens),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
    }
    if u.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return out


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


class WireUsage:
    """Anthropic usage counters merged across ``message_start`` and ``message_delta``
    (the latter is cumulative: present fields overwrite)."""

    __slots__ = ("cache_creation", "cache_read", "input", "output", "thinking")

    def __init__(self) -> None:
        self.input = 0
        self.output = 0
        self.cache_creation = 0
        self.cache_read = 0
        self.thinking = 0

    def merge(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        if raw.get("input_tokens") is not None:
            self.input = _int(raw["input_tokens"])
        if raw.get("output_tokens") is not None:
            self.output = _int(raw["output_tokens"])
        if raw.get("cache_creation_input_tokens") is not None:
            self.cache_creation = _int(raw["cache_creation_input_tokens"])
        if raw.get("cache_read_input_tokens") is not None:
            self.cache_read = _int(raw["cache_read_input_tokens"])
        details = raw.get("output_tokens_details")
        if isinstance(details, dict) and details.get("thinking_tokens") is not None:
            self.thinking = _int(details["thinking_tokens"])

    def neutral(self) -> Usage:
        return Usage(
            input_tokens=self.input + self.cache_creation + self.cache_read,
            output_tokens=self.output,
            cached_tokens=self.cache_read,
            cache_write_tokens=self.cache_creation,
            reasoning_tokens=self.thinking,
        )


def usage_from_wire(raw: Any) -> Usage:
    w = WireUsage()
    w.merge(raw)
    return w.neutral()


# --- errors ------------------------------------------------------------------------------

ERROR_TYPE: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.CONTEXT_LENGTH: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.CONFLICT: "invalid_request_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMITED: "rate_limit_error",
    ErrorKind.BUDGET_EXHAUSTED: "billing_error",
    ErrorKind.OVERLOADED: "overloaded_error",
    ErrorKind.CIRCUIT_OPEN: "overloaded_error",
    ErrorKind.UPSTREAM: "api_error",
    ErrorKind.TRANSPORT: "api_error",
    ErrorKind.TIMEOUT: "timeout_error",
}

ERROR_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.CONTEXT_LENGTH: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.BUDGET_EXHAUSTED: 429,
    ErrorKind.OVERLOADED: 529,
    ErrorKind.CIRCUIT_OPEN: 529,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.TRANSPORT: 502,
    ErrorKind.TIMEOUT: 504,
}


def error_envelope(err: DragomanError) -> dict[str, Any]:
    return {"type": "error",
            "error": {"type": ERROR_TYPE.get(err.kind, "api_error"), "message": err.message}}


def is_context_length_message(message: str) -> bool:
    m = message.lower()
    return ("prompt is too long" in m or "context window" in m
            or "context length" in m or "too many tokens" in m)


def error_for_type(etype: str, message: str) -> DragomanError:
    """Classify an in-band ``event: error`` by its ``error.type`` (no HTTP status).

    The type is not copied to ``code`` (that field holds OpenAI-style codes)."""
    if etype == "overloaded_error":
        return Overloaded(message)
    if etype == "rate_limit_error":
        return RateLimited(message)
    if etype == "timeout_error":
        return UpstreamTimeout(message)
    if etype == "not_found_error":
        return NotFound(message)
    if etype == "request_too_large":
        return RequestTooLarge(message)
    if etype == "invalid_request_error":
        if is_context_length_message(message):
            return ContextLengthExceeded(message)
        return InvalidRequest(message)
    if etype in ("authentication_error", "permission_error", "billing_error"):
        # The gateway's own upstream credentials/account, never the client's.
        return UpstreamError(f"upstream rejected the gateway's credentials: {message}")
    return UpstreamError(message)


# Kinds of content block, shared by the stream parser and the stream renderer.
_TEXT, _THINKING, _TOOL, _CUSTOM, _OPAQUE, _SKIP = 1, 2, 3, 4, 5, 6
