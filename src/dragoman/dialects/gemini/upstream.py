"""Upstream → neutral: ``generateContent`` answers, ``streamGenerateContent?alt=sse``
chunks and the ``{"error": {code, message, status, details}}`` envelope.

A stream chunk and a whole answer have the same shape (a ``GenerateContentResponse``
carrying only new parts), so one reader serves both: the non-stream answer is read as a
one-chunk stream and collected. Function calls arrive whole; ids Gemini leaves out are
synthesized (``_common.synthesize_call_id``). A ``thoughtSignature`` becomes a
``ThinkingEnd`` (``origin="gemini"``) right before the part that carried it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from ...core import (
    ChatResponse,
    Collector,
    ContextLengthExceeded,
    DragomanError,
    Finish,
    Opaque,
    OpaqueItem,
    StopReason,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    TransportError,
    UpstreamError,
    Usage,
    UsageUpdate,
    error_for_status,
)
from ..tool_args import arguments_from_object, custom_input
from ._common import NAME, ORIGIN, stop_from_wire, synthesize_call_id, usage_from_wire

_decode = msgspec.json.decode

DEFAULT_CALL_PREFIX = "call_"


class StreamParser:
    """One SSE ``data:`` payload (a JSON ``GenerateContentResponse``) at a time → neutral
    events. Gemini has no terminal event: the stream is complete when it ends after a
    chunk with a ``finishReason`` (or a blocked prompt); anything else is a cut stream.

    ``custom_tools`` names the request's free-text tools (emulated as a function with one
    ``input`` string) whose calls are turned back into custom calls; ``call_prefix`` starts
    synthesized call ids (``toolu_`` for Anthropic clients, ``call_`` for OpenAI ones).
    """

    __slots__ = ("_blocked", "_call_prefix", "_calls", "_custom", "_done", "_finish",
                 "_response_id", "_thinking", "_usage")

    def __init__(self, custom_tools: Collection[str] = (),
                 call_prefix: str = DEFAULT_CALL_PREFIX) -> None:
        self._custom = custom_tools
        self._call_prefix = call_prefix
        self._response_id: str | None = None
        self._calls = 0
        self._thinking = False
        self._finish: str | None = None
        self._blocked = False
        self._usage: Usage | None = None
        self._done = False

    @property
    def response_id(self) -> str | None:
        return self._response_id

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        if self._done:
            return []
        if isinstance(data, (str, bytes)):
            if not data.strip() or data == "[DONE]":
                return []  # keep-alives; "[DONE]" from OpenAI-lookalike proxies
            try:
                data = _decode(data)
            except (msgspec.DecodeError, ValueError):
                self._done = True
                return [StreamError(error=UpstreamError(
                    "upstream sent a malformed stream chunk (not JSON)"))]
        if isinstance(data, list):  # a JSON-array stream (no ``alt=sse``): same objects
            out: list[StreamEvent] = []
            for item in data:
                out += self.feed(event, item)
            return out
        if not isinstance(data, dict):
            self._done = True
            return [StreamError(error=UpstreamError(
                "upstream sent a malformed stream chunk (not an object)"))]
        return self._chunk(data)

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        if self._finish is None and not self._blocked:
            return [StreamError(error=TransportError("upstream stream ended before completion"))]
        return [self._finish_event()]

    def finish(self) -> list[StreamEvent]:
        """End of a whole (non-stream) answer: a missing ``finishReason`` is not a cut."""
        if self._done:
            return []
        self._done = True
        return [self._finish_event()]

    def _finish_event(self) -> Finish:
        if self._blocked:
            return Finish(stop_reason=StopReason.CONTENT_FILTER)
        return Finish(stop_reason=stop_from_wire(self._finish, self._calls > 0))

    # --- one chunk --------------------------------------------------------------------

    def _chunk(self, obj: dict[str, Any]) -> list[StreamEvent]:
        err = obj.get("error")
        if err is not None and not obj.get("candidates"):
            self._done = True
            return [StreamError(error=error_from_payload(500, err))]
        rid = obj.get("responseId")
        if self._response_id is None and isinstance(rid, str) and rid:
            self._response_id = rid
        out: list[StreamEvent] = []
        cands = obj.get("candidates")
        cand = cands[0] if isinstance(cands, list) and cands else None
        if isinstance(cand, dict):
            content = cand.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(parts, list):
                for p in parts:
                    if isinstance(p, dict):
                        self._part(p, out)
            fr = cand.get("finishReason")
            if isinstance(fr, str) and fr:
                self._finish = fr
        else:
            fb = obj.get("promptFeedback")
            if isinstance(fb, dict) and fb.get("blockReason"):
                self._blocked = True  # a 200 with no candidates: the prompt was refused
        usage = usage_from_wire(obj.get("usageMetadata"))
        if usage is not None and usage != self._usage:
            self._usage = usage  # cumulative: the last one wins
            out.append(UsageUpdate(usage=usage))
        return out

    def _part(self, p: dict[str, Any], out: list[StreamEvent]) -> None:
        sig = p.get("thoughtSignature")
        sig = sig if isinstance(sig, str) and sig else None
        text = p.get("text")
        if p.get("thought") is True:
            if isinstance(text, str) and text:
                self._thinking = True
                out.append(ThinkingDelta(text=text))
            if sig is not None:
                self._thinking = False
                out.append(ThinkingEnd(signature=sig, origin=ORIGIN))
            return
        if sig is not None:
            out.append(ThinkingEnd(signature=sig, origin=ORIGIN))
        self._thinking = False
        if isinstance(text, str):
            if text:
                out.append(TextDelta(text=text))
            return
        fc = p.get("functionCall")
        if isinstance(fc, dict):
            self._call(fc, out)
            return
        data = {k: v for k, v in p.items() if k != "thoughtSignature"}
        if data:
            # executableCode, codeExecutionResult, inlineData (generated images)…: only a
            # Gemini upstream understands them; kept whole for a replay.
            out.append(OpaqueItem(part=Opaque(dialect=NAME, data=data)))

    def _call(self, fc: dict[str, Any], out: list[StreamEvent]) -> None:
        name = fc.get("name")
        if not isinstance(name, str) or not name:
            return
        cid = fc.get("id")
        if not isinstance(cid, str) or not cid:
            cid = synthesize_call_id(self._call_prefix, self._response_id, self._calls)
        self._calls += 1
        args = fc.get("args")
        raw = custom_input(args) if name in self._custom else None
        if raw is not None:
            out.append(ToolCallStart(id=cid, name=name, kind="custom"))
            if raw:
                out.append(ToolCallDelta(id=cid, arguments=raw))
        else:
            out.append(ToolCallStart(id=cid, name=name))
            out.append(ToolCallDelta(id=cid, arguments=arguments_from_object(
                args if isinstance(args, dict) else {})))
        out.append(ToolCallEnd(id=cid))


def parse_response(body: Any, custom_tools: Collection[str] = (),
                   call_prefix: str = DEFAULT_CALL_PREFIX) -> ChatResponse:
    """A non-stream ``generateContent`` answer."""
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a malformed response body")
    if body.get("error") is not None and not body.get("candidates"):
        raise error_from_payload(502, body["error"])
    cands = body.get("candidates")
    fb = body.get("promptFeedback")
    blocked = isinstance(fb, dict) and bool(fb.get("blockReason"))
    if not (isinstance(cands, list) and cands) and not blocked:
        raise UpstreamError("upstream returned a response without candidates")
    parser = StreamParser(custom_tools, call_prefix)
    c = Collector()
    for ev in parser.feed(None, body):
        c.feed(ev)
    for ev in parser.finish():
        c.feed(ev)
    model = body.get("modelVersion")
    return c.response(parser.response_id or "", model if isinstance(model, str) else "")


# --- errors ----------------------------------------------------------------------------------

_CREDENTIAL_REASONS = frozenset({
    "API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED",
    "ACCESS_TOKEN_TYPE_UNSUPPORTED", "CREDENTIALS_MISSING",
})


def _excerpt(body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text or "(empty body)"


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


def parse_error(status: int, body: bytes) -> DragomanError:
    """Classify an upstream HTTP failure, keeping Google's message and retry delay."""
    try:
        data = _decode(body)
    except (msgspec.DecodeError, ValueError):
        return error_for_status(status, f"upstream error (HTTP {status}): {_excerpt(body)}")
    if isinstance(data, list) and data:
        data = data[0]  # streaming endpoints may wrap the envelope in an array
    if isinstance(data, dict) and "error" in data:
        return error_from_payload(status, data["error"])
    return error_for_status(status, f"upstream error (HTTP {status}): {_excerpt(body)}")
