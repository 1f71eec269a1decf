"""Shared tables and small helpers of the Gemini ``generateContent`` dialect: names, stop
reasons, usage, synthesized call ids and the error envelope."""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from ...core import (
    ContextLengthExceeded,
    DragomanError,
    StopReason,
    Usage,
    error_for_status,
)

NAME = "gemini"
"""Dialect name (``ChatRequest.dialect``, ``Opaque.dialect``)."""


ORIGIN = "gemini"
"""``Thinking.origin`` of a Gemini ``thoughtSignature`` (Gemini API and Vertex AI alike)."""


SKIP_SIGNATURE = "skip_thought_signature_validator"
"""The value Google documents for a function call whose real thought signature is unknown
(history made by another model, or a signature that could not travel through the client's
dialect): Gemini 3 answers 400 when the first ``functionCall`` of a model turn has none."""


_SYNTH_MARK = "gemini_"


_SYNTHESIZED = re.compile(r"^[a-z]*_?gemini_[0-9a-f]{16}$")


def synthesize_call_id(prefix: str, response_id: str | None, index: int) -> str:
    """An id for a ``functionCall`` Gemini sent without one: ``<prefix>gemini_<16 hex>``.

    Derived from the response id and the call's position, so the same upstream answer
    always maps to the same ids; random when the answer has no id."""
    if response_id:
        digest = hashlib.blake2b(f"{response_id}\x00{index}".encode(), digest_size=8).hexdigest()
    else:
        digest = os.urandom(8).hex()
    return f"{prefix}{_SYNTH_MARK}{digest}"


def is_synthesized(call_id: str) -> bool:
    """Ids dragoman made up are not Gemini's: they are never sent back as ``id``."""
    return _SYNTHESIZED.match(call_id) is not None


_FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR",
})


_FAILED = frozenset({
    "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
    "MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE",
})


def stop_from_wire(value: Any, has_calls: bool) -> StopReason:
    """``finishReason`` → neutral (mapping.md §6). Gemini says ``STOP`` even when the turn
    ends in function calls, so the caller tells whether it saw any."""
    if value == "MAX_TOKENS":
        return StopReason.MAX_TOKENS
    if value in _FILTERED or (isinstance(value, str) and value.startswith("IMAGE_")
                              and value != "IMAGE_OTHER"):
        return StopReason.CONTENT_FILTER
    if value in _FAILED:
        return StopReason.ERROR
    return StopReason.TOOL_USE if has_calls else StopReason.END_TURN


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def usage_from_wire(raw: Any) -> Usage | None:
    """``usageMetadata`` → neutral. ``promptTokenCount`` already includes the cached
    tokens; output is candidates + thoughts (reasoning is part of output, as OpenAI counts
    it); tool-use prompt tokens (code execution results fed back) are input."""
    if not isinstance(raw, dict):
        return None
    thoughts = _int(raw.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=_int(raw.get("promptTokenCount")) + _int(raw.get("toolUsePromptTokenCount")),
        output_tokens=_int(raw.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(raw.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


_CREDENTIAL_REASONS = frozenset({
    "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED",
    "ACCESS_TOKEN_TYPE_UNSUPPORTED", "CREDENTIALS_MISSING",
})


def _duration(value: Any) -> float | None:
    """A protobuf Duration in JSON (``"37s"``, ``"1.5s"``) → seconds."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None


def is_context_length_message(message: str) -> bool:
    m = message.lower()
    return ("input token count" in m and "exceeds" in m) or "too many tokens" in m \
        or "context window" in m


def error_from_payload(status: int, err: Any) -> DragomanError:
    """The ``error`` object of a Google API error → core error. ``status`` is the HTTP
    status (the body's own ``code`` wins when it is a real one)."""
    if not isinstance(err, dict):
        return error_for_status(status, str(err)[:200] if err else f"upstream error "
                                f"(HTTP {status})")
    code = err.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        status = code
    msg = err.get("message")
    message = msg if isinstance(msg, str) and msg else f"upstream error (HTTP {status})"
    retry_after: float | None = None
    details = err.get("details")
    for d in details if isinstance(details, list) else ():
        if not isinstance(d, dict):
            continue
        kind = d.get("@type")
        if isinstance(kind, str) and kind.endswith("google.rpc.RetryInfo"):
            retry_after = _duration(d.get("retryDelay"))
        elif d.get("reason") in _CREDENTIAL_REASONS:
            status = 401  # the Gemini API answers a bad key with 400 INVALID_ARGUMENT
    if err.get("status") == "UNAUTHENTICATED":
        status = 401
    if status == 400 and is_context_length_message(message):
        return ContextLengthExceeded(message)
    return error_for_status(status, message, retry_after=retry_after)
