"""The upstream dialect an ``http_generic`` config describes: compiled once, then driven
by the same HTTP provider machinery as every built-in dialect (``base.py``,
``upstream_call.py``).

A request is the configured template rendered (``template.py``); a whole answer, an error
body and each stream frame are read with JSON pointers (``json_pointer.py``); a stream is
framed as OpenAI-style SSE (``data: {...}``, ``[DONE]``) or NDJSON, and ends at its end
marker (``[DONE]``, or the ``done`` pointer equal to ``done_value``). Pure, like the
dialects in ``dragoman.dialects``: no I/O here.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..core import (
    ChatRequest,
    ChatResponse,
    DragomanError,
    Finish,
    Part,
    StopReason,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    TransportError,
    UpstreamError,
    Usage,
    UsageUpdate,
    error_for_status,
    new_id,
)
from ..dialects.contract import UpstreamDialect
from ..net import SseDecoder
from .frames import FrameDecoder, NdjsonFrames
from .json_pointer import MISSING, JsonPointer, JsonPointerError
from .registry import OptionsError
from .template import RequestTemplate, TemplateError, request_values

NAME = "http_generic"

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


# --- configuration ----------------------------------------------------------------------


class ResponseMap(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """JSON pointers into a whole (non-streamed) answer."""

    text: str
    finish_reason: str | None = None
    input_tokens: str | None = None
    output_tokens: str | None = None
    cached_tokens: str | None = None
    tool_calls: str | None = None
    error: str | None = None
    """Where an error body keeps its message; on a 2xx answer a value here is a failure."""


class StreamMap(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How a streamed answer looks: its framing and JSON pointers into each frame."""

    format: Literal["openai_sse", "ndjson"]
    delta: str
    done: str | None = None
    done_value: Any = True
    finish_reason: str | None = None
    input_tokens: str | None = None
    output_tokens: str | None = None
    cached_tokens: str | None = None
    error: str | None = "/error"
    url: str | None = None
    path: str | None = None
    template: dict[str, Any] | list[Any] | None = None
    """A separate request template for streaming calls (default: the main one)."""


#: upstream finish values → neutral stop reasons (configured ``stop_reasons`` add to it)
DEFAULT_STOP_REASONS: dict[str, StopReason] = {
    "stop": StopReason.END_TURN, "end_turn": StopReason.END_TURN, "eos": StopReason.END_TURN,
    "eos_token": StopReason.END_TURN, "complete": StopReason.END_TURN,
    "length": StopReason.MAX_TOKENS, "max_tokens": StopReason.MAX_TOKENS,
    "tool_calls": StopReason.TOOL_USE, "tool_use": StopReason.TOOL_USE,
    "function_call": StopReason.TOOL_USE, "stop_sequence": StopReason.STOP_SEQUENCE,
    "content_filter": StopReason.CONTENT_FILTER, "refusal": StopReason.REFUSAL,
}

_ERROR_MESSAGE_AT = tuple(JsonPointer(p) for p in ("/error/message", "/error", "/message",
                                                     "/detail", "/error_message"))


def convert(value: Any, typ: type[Any]) -> Any:
    """A config mapping → its struct, a mistake reported as a config error."""
    try:
        return msgspec.convert(value, typ)
    except msgspec.ValidationError as e:
        raise OptionsError(str(e)) from None


def _pointer(text: str | None, where: str) -> JsonPointer | None:
    if text is None:
        return None
    try:
        return JsonPointer(text)
    except JsonPointerError as e:
        raise OptionsError(f"{e} - at `{where}`") from None


def _required_pointer(text: str, where: str) -> JsonPointer:
    ptr = _pointer(text, where)
    assert ptr is not None
    return ptr


def _compile(template: Any, where: str) -> RequestTemplate:
    try:
        return RequestTemplate(template, where)
    except TemplateError as e:
        raise OptionsError(str(e)) from None


class _Extract:
    """The pointers shared by whole answers and stream frames, compiled once."""

    __slots__ = ("cached", "error", "finish", "input", "output")

    def __init__(self, m: ResponseMap | StreamMap, where: str) -> None:
        self.finish = _pointer(m.finish_reason, f"{where}.finish_reason")
        self.input = _pointer(m.input_tokens, f"{where}.input_tokens")
        self.output = _pointer(m.output_tokens, f"{where}.output_tokens")
        self.cached = _pointer(m.cached_tokens, f"{where}.cached_tokens")
        self.error = _pointer(m.error, f"{where}.error")

    @property
    def has_usage(self) -> bool:
        return self.input is not None or self.output is not None or self.cached is not None

    def usage(self, doc: Any, into: Usage) -> bool:
        """Copy every token count present in ``doc`` into ``into``; True if any was."""
        found = False
        for ptr, field in ((self.input, "input_tokens"), (self.output, "output_tokens"),
                           (self.cached, "cached_tokens")):
            if ptr is None:
                continue
            v = ptr.get(doc)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
                setattr(into, field, int(v))
                found = True
        return found


# --- reading answers ---------------------------------------------------------------------


def _message_of(value: Any) -> str | None:
    if value is MISSING or value is None or value is False:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return str(value["message"])
    return _encode(value).decode()


def _tool_calls(value: Any) -> list[Part]:
    """OpenAI-shaped calls (``{id, function: {name, arguments}}``) or flat ones
    (``{id, name, arguments|input}``); arguments may be JSON text or an object."""
    out: list[Part] = []
    if not isinstance(value, list):
        return out
    for c in value:
        if not isinstance(c, dict):
            continue
        fn = c["function"] if isinstance(c.get("function"), dict) else c
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            continue
        args = fn.get("arguments", fn.get("input"))
        text = args if isinstance(args, str) else "{}" if args is None \
            else _encode(args).decode()
        cid = c.get("id")
        out.append(ToolCall(id=cid if isinstance(cid, str) and cid else new_id("call_"),
                            name=name, arguments=text))
    return out


class _Stream:
    """The compiled ``stream`` section."""

    __slots__ = ("delta", "done", "done_value", "frame", "needs_end_marker", "sse",
                 "template")

    def __init__(self, m: StreamMap, default_template: RequestTemplate) -> None:
        self.sse = m.format == "openai_sse"
        self.delta = _required_pointer(m.delta, "$.stream.delta")
        self.done = _pointer(m.done, "$.stream.done")
        self.done_value = m.done_value
        self.frame = _Extract(m, "$.stream")
        self.template = default_template if m.template is None \
            else _compile(m.template, "$.stream.template")
        # Without an end marker (ndjson, no `done` pointer) the end of the body is the end
        # of the answer; otherwise it must have been seen.
        self.needs_end_marker = self.sse or self.done is not None


class GenericWire:
    """One ``http_generic`` config's wire, compiled: ``dialect`` is its ``UpstreamDialect``.
    ``secret`` (the upstream key) is scrubbed from any upstream message quoted in an
    error."""

    __slots__ = ("_calls", "_secret", "_stop", "_text", "_whole", "dialect", "model", "stream",
                 "template")

    def __init__(self, *, template: Any, response: ResponseMap, stream: StreamMap | None,
                 stop_reasons: dict[str, StopReason] | None = None, model: str = "",
                 secret: str | None = None) -> None:
        self.model = model
        self.template = _compile(template, "$.template")
        self._text = _required_pointer(response.text, "$.response.text")
        self._calls = _pointer(response.tool_calls, "$.response.tool_calls")
        self._whole = _Extract(response, "$.response")
        self.stream = None if stream is None else _Stream(stream, self.template)
        self._stop = {**DEFAULT_STOP_REASONS, **(stop_reasons or {})}
        self._secret = secret
        self.dialect = UpstreamDialect(
            name=NAME, render_request=self.render_request, parse_response=self.parse_response,
            stream_parser=self.stream_parser, parse_error=self.parse_error)

    def __repr__(self) -> str:  # never the secret
        return f"GenericWire(template={sorted(self.template.names)!r})"

    @property
    def reads_tool_calls(self) -> bool:
        return self._calls is not None

    # --- egress -------------------------------------------------------------------------

    def render_request(self, req: ChatRequest) -> dict[str, Any]:
        """The template (the stream one when ``req.stream``) filled from ``req``."""
        stream = bool(req.stream)
        template = self.stream.template if stream and self.stream is not None \
            else self.template
        rendered: dict[str, Any] = template.render(
            request_values(req, template.names, model=req.model, stream=stream))
        return rendered

    # --- whole answers ------------------------------------------------------------------

    def parse_response(self, doc: Any) -> ChatResponse:
        return self.parse_answer(doc, self.model)

    def parse_answer(self, doc: Any, model: str) -> ChatResponse:
        w = self._whole
        if w.error is not None:
            self.check_failure(w.error.get(doc))
        content: list[Part] = []
        text = self._text.get(doc)
        calls = _tool_calls(self._calls.get(doc)) if self._calls is not None else []
        if isinstance(text, str):
            if text:
                content.append(Text(text=text))
        elif not calls and text is not None:
            what = "nothing" if text is MISSING else f"a {type(text).__name__}"
            raise UpstreamError(f"upstream answer has no text at '{self._text.text}' "
                                f"(found {what})")
        content.extend(calls)
        usage = Usage()
        w.usage(doc, usage)
        finish = w.finish.get(doc) if w.finish is not None else MISSING
        return ChatResponse(id=new_id("gen_"), model=model, content=content,
                            stop_reason=self.stop_reason(finish, bool(calls)), usage=usage)

    def stop_reason(self, finish: Any, has_calls: bool) -> StopReason:
        if isinstance(finish, str) and finish in self._stop:
            return self._stop[finish]
        return StopReason.TOOL_USE if has_calls else StopReason.END_TURN

    # --- errors -------------------------------------------------------------------------

    def parse_error(self, status: int, raw: bytes) -> DragomanError:
        """An HTTP failure of a whole-answer call (message at ``response.error``)."""
        return self._http_error(status, raw, self._whole.error)

    def parse_stream_error(self, status: int, raw: bytes) -> DragomanError:
        """An HTTP failure of a streaming call (message at ``stream.error``)."""
        return self._http_error(status, raw,
                                self.stream.frame.error if self.stream is not None else None)

    def _http_error(self, status: int, raw: bytes,
                    pointer: JsonPointer | None) -> DragomanError:
        if status in (401, 403):
            # The upstream is complaining about the gateway's key: say so, quote nothing.
            message = f"HTTP {status}"
        else:
            message = self._error_message(raw, pointer) or f"upstream returned HTTP {status}"
        return error_for_status(status, message)

    def _error_message(self, raw: bytes, pointer: JsonPointer | None) -> str | None:
        try:
            doc = _decode(raw)
        except msgspec.DecodeError:
            text = raw[:300].decode("utf-8", "replace").strip()
            return self._scrub(f"upstream error: {text}") if text else None
        for ptr in (pointer,) if pointer is not None else _ERROR_MESSAGE_AT:
            msg = _message_of(ptr.get(doc))
            if msg:
                return self._scrub(msg[:1000])
        return None

    def check_failure(self, value: Any) -> None:
        """An error the upstream reported inside a 2xx answer or a stream frame."""
        failure = _message_of(value)
        if failure:
            raise UpstreamError(self._scrub(failure[:1000]))

    def _scrub(self, message: str) -> str:
        key = self._secret
        return message.replace(key, "***") if key and key in message else message

    # --- streams ------------------------------------------------------------------------

    def frame_decoder(self) -> FrameDecoder:
        """The stream's framing: SSE frames, or one NDJSON line per frame."""
        return SseDecoder() if self.stream is not None and self.stream.sse else NdjsonFrames()

    def stream_parser(self) -> GenericStreamParser:
        if self.stream is None:
            raise UpstreamError("this http_generic upstream has no `stream` configured")
        return GenericStreamParser(self, self.stream)


class GenericStreamParser:
    """Frames of a configured stream → neutral events: a text delta per frame, then the
    usage seen and the finish at the end marker. Frames after the end marker are
    ignored; a body that ends before it is a transport error."""

    __slots__ = ("_done", "_finish", "_seen_usage", "_stream", "_usage", "_wire")

    def __init__(self, wire: GenericWire, stream: _Stream) -> None:
        self._wire = wire
        self._stream = stream
        self._usage = Usage()
        self._seen_usage = False
        self._finish: Any = MISSING
        self._done = False

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        if self._done:
            return []
        s = self._stream
        if s.sse:
            if data == "[DONE]":
                self._done = True
                return []
            try:
                doc = _decode(data)
            except msgspec.DecodeError:
                raise UpstreamError("upstream sent a stream frame that is not JSON") from None
        else:
            doc = data  # NDJSON frames arrive decoded
        frame = s.frame
        if frame.error is not None:
            self._wire.check_failure(frame.error.get(doc))
        out: list[StreamEvent] = []
        text = s.delta.get(doc)
        if isinstance(text, str) and text:
            out.append(TextDelta(text=text))
        if frame.finish is not None:
            f = frame.finish.get(doc)
            if f is not MISSING and f is not None:
                self._finish = f
        if frame.has_usage and frame.usage(doc, self._usage):
            self._seen_usage = True
        if s.done is not None and s.done.get(doc) == s.done_value:
            self._done = True
        return out

    def close(self) -> list[StreamEvent]:
        if not self._done and self._stream.needs_end_marker:
            raise TransportError("upstream stream ended before its end marker")
        out: list[StreamEvent] = [UsageUpdate(usage=self._usage)] if self._seen_usage else []
        out.append(Finish(stop_reason=self._wire.stop_reason(self._finish, False)))
        return out
