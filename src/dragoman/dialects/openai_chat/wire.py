"""Shared tables of the OpenAI Chat Completions dialect: finish reasons, usage, error types."""

from __future__ import annotations

from typing import Any

from ...core import (
    Citation,
    ContextLengthExceeded,
    DragomanError,
    ErrorKind,
    InvalidRequest,
    Overloaded,
    RateLimited,
    StopReason,
    Text,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    error_for_status,
)

NAME = "openai_chat"
ID_PREFIX = "chatcmpl-"

# --- finish reasons (mapping.md §6) ---------------------------------------------------------

FINISH_REASON: dict[StopReason, str] = {
    StopReason.END_TURN: "stop",
    StopReason.STOP_SEQUENCE: "stop",
    StopReason.REFUSAL: "stop",
    StopReason.ERROR: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.MAX_STEPS: "length",
    StopReason.TOOL_USE: "tool_calls",
    StopReason.CONTENT_FILTER: "content_filter",
}

_STOP_REASON: dict[str, StopReason] = {
    "stop": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS,
    "model_length": StopReason.MAX_TOKENS,  # Mistral
    "tool_calls": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE,
    "content_filter": StopReason.CONTENT_FILTER,
    "error": StopReason.ERROR,  # Mistral, OpenRouter
}


# --- citations: ``message.annotations`` (url_citation is Chat's only kind) --------------------


def citation_of(annotation: Any) -> Citation | None:
    """A ``url_citation`` annotation → a neutral citation (offsets into the content)."""
    if not isinstance(annotation, dict) or annotation.get("type") != "url_citation":
        return None
    uc = annotation.get("url_citation")
    if not isinstance(uc, dict) or not isinstance(uc.get("url"), str):
        return None
    start, end, title = uc.get("start_index"), uc.get("end_index"), uc.get("title")
    return Citation(url=uc["url"], title=title if isinstance(title, str) else None,
                    start=start if isinstance(start, int) else None,
                    end=end if isinstance(end, int) else None, dialect=NAME, data=annotation)


def annotations_json(texts: list[Text]) -> list[dict[str, Any]]:
    """The url citations of ``texts`` as annotations of their concatenation (the message
    ``content``). Citations without a URL (documents, search results without one) have no
    Chat form."""
    out: list[dict[str, Any]] = []
    offset = 0
    for t in texts:
        for c in t.citations or ():
            if c.url is not None:
                start, end = c.span(len(t.text))
                out.append({"type": "url_citation", "url_citation": {
                    "start_index": offset + start, "end_index": offset + end,
                    "url": c.url, "title": c.title or c.url}})
        offset += len(t.text)
    return out


def finish_reason_for(reason: StopReason, has_tool_calls: bool) -> str:
    """The Chat ``finish_reason`` for a neutral stop reason. A natural end of a turn that
    called tools is ``tool_calls`` (clients look at it to run their tool loop)."""
    fr = FINISH_REASON.get(reason, "stop")
    if has_tool_calls and reason in (StopReason.END_TURN, StopReason.STOP_SEQUENCE):
        return "tool_calls"
    return fr


#: (an enum member read off its class costs a lookup through the enum's metaclass on
#: every call in Python 3.11: once here, for every whole answer and stream)
_END_TURN, _TOOL_USE, _REFUSAL = StopReason.END_TURN, StopReason.TOOL_USE, StopReason.REFUSAL


def stop_reason_for(finish_reason: Any, has_tool_calls: bool, refused: bool) -> StopReason:
    """Neutral stop reason for an upstream ``finish_reason`` (unknown values end the turn).
    ``stop`` with tool calls is ``tool_use`` (OpenAI answers a forced named tool that way);
    ``stop`` with a refusal is ``refusal``."""
    reason = _STOP_REASON.get(finish_reason, _END_TURN) if isinstance(
        finish_reason, str) else _END_TURN
    if reason is _END_TURN:
        if has_tool_calls:
            return _TOOL_USE
        if refused:
            return _REFUSAL
    return reason


def reasoning_text(obj: dict[str, Any]) -> str:
    """Non-standard reasoning text (vLLM, DeepSeek: ``reasoning_content``; OpenRouter,
    newer vLLM: ``reasoning``) of a message or delta."""
    for key in ("reasoning_content", "reasoning"):
        val = obj.get(key)
        if isinstance(val, str) and val:
            return val
    return ""


# --- usage (mapping.md §7) -------------------------------------------------------------------


def usage_json(u: Usage) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": u.cached_tokens, "audio_tokens": 0}
    if u.cache_write_tokens:
        prompt_details["cache_write_tokens"] = u.cache_write_tokens
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _int(obj: Any, key: str) -> int:
    if not isinstance(obj, dict):
        return 0
    v = obj.get(key)
    if type(v) is int:  # the usual case, answered without the checks below
        return v if v > 0 else 0
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return 0
    return max(int(v), 0)


def parse_usage(obj: Any) -> Usage | None:
    """Lenient: any missing or malformed count is 0; None when ``obj`` is not an object."""
    if not isinstance(obj, dict):
        return None
    prompt = obj.get("prompt_tokens_details")
    completion = obj.get("completion_tokens_details")
    return Usage(
        input_tokens=_int(obj, "prompt_tokens"),
        output_tokens=_int(obj, "completion_tokens"),
        # (details absent, as from many OpenAI-compatible servers: 0 without the calls)
        cached_tokens=_int(prompt, "cached_tokens") if prompt else 0,
        cache_write_tokens=_int(prompt, "cache_write_tokens") if prompt else 0,
        reasoning_tokens=_int(completion, "reasoning_tokens") if completion else 0,
    )


# --- errors (mapping.md §10) -----------------------------------------------------------------

#: kind → (error.type, default error.code)
ERROR_TYPE: dict[ErrorKind, tuple[str, str | None]] = {
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.CONTEXT_LENGTH: ("invalid_request_error", "context_length_exceeded"),
    ErrorKind.AUTHENTICATION: ("invalid_request_error", "invalid_api_key"),
    ErrorKind.PERMISSION: ("permission_error", None),
    # OpenAI's own 404 for a missing object has no code; a missing model says
    # ``model_not_found`` itself (``router.unknown_model``)
    ErrorKind.NOT_FOUND: ("invalid_request_error", None),
    ErrorKind.CONFLICT: ("invalid_request_error", "conflict"),
    ErrorKind.REQUEST_TOO_LARGE: ("invalid_request_error", "request_too_large"),
    ErrorKind.RATE_LIMITED: ("rate_limit_error", "rate_limit_exceeded"),
    ErrorKind.BUDGET_EXHAUSTED: ("insufficient_quota", "insufficient_quota"),
    ErrorKind.OVERLOADED: ("server_error", None),
    ErrorKind.CIRCUIT_OPEN: ("server_error", None),
    ErrorKind.UPSTREAM: ("server_error", None),
    ErrorKind.TRANSPORT: ("server_error", None),
    ErrorKind.TIMEOUT: ("server_error", "timeout"),
}


def error_object(err: DragomanError) -> dict[str, Any]:
    typ, code = ERROR_TYPE.get(err.kind, ("server_error", None))
    return {"message": err.message, "type": typ, "param": err.param, "code": err.code or code}


def error_from_payload(obj: Any, status: int | None = None) -> DragomanError:
    """Classify an OpenAI-style ``error`` value (object or bare string) from an upstream."""
    if isinstance(obj, str):
        message, typ, code, param = obj, None, None, None
    elif isinstance(obj, dict):
        m = obj.get("message")
        message = m if isinstance(m, str) and m else "upstream error"
        t, c, p = obj.get("type"), obj.get("code"), obj.get("param")
        typ = t if isinstance(t, str) else None
        code = c if isinstance(c, str) else None
        param = p if isinstance(p, str) else None
        if status is None and isinstance(c, int) and not isinstance(c, bool) and 400 <= c < 600:
            status = c
    else:
        message, typ, code, param = "upstream error", None, None, None
    message = message[:2000]
    err: DragomanError
    if code == "context_length_exceeded":
        err = ContextLengthExceeded(message, code=code)
    elif status is not None:
        err = error_for_status(status, message, code=code)
    elif code in ("rate_limit_exceeded", "insufficient_quota") or typ in (
            "rate_limit_error", "requests", "tokens", "insufficient_quota"):
        err = RateLimited(message, code=code)
    elif code == "server_is_overloaded" or typ == "overloaded_error":
        err = Overloaded(message, code=code)
    elif code == "timeout" or typ == "timeout_error":
        err = UpstreamTimeout(message, code=code)
    elif typ == "invalid_request_error":
        err = InvalidRequest(message, code=code)
    else:
        err = UpstreamError(message, code=code)
    err.param = param
    return err
