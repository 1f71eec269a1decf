"""HTTP-generic upstream: any JSON-in/JSON-out endpoint, described entirely in config.

A request is the configured ``template`` (see ``template.py`` for the placeholder
language) sent to ``url`` (or ``base_url`` + ``path``); the answer is read with JSON
pointers (RFC 6901, ``json_pointer.py``)::

    - name: my-llm
      provider: http_generic
      model: llm-7b
      base_url: https://llm.internal.example
      path: /generate
      api_key: ${LLM_KEY}            # sent as "Authorization: Bearer …" (or api_key_header)
      template:
        model: "{{model}}"
        inputs: "{{prompt}}"
        parameters: {max_new_tokens: "{{max_tokens:-256}}", temperature: "{{temperature}}"}
        stream: "{{stream}}"
      response:                      # pointers into the JSON answer
        text: /generated_text
        finish_reason: /details/finish_reason
        input_tokens: /details/prompt_tokens
        output_tokens: /details/generated_tokens
      stream:                        # optional: how streamed answers look
        format: ndjson               # or openai_sse ("data: {...}" frames, "[DONE]")
        delta: /token/text
        done: /done                  # the stream is over when this pointer...
        done_value: true             # ...equals this value
        output_tokens: /details/generated_tokens

Upstream HTTP failures are classified by status (``core.error_for_status``), with the
message read from the error body (``response.error`` pointer, else the usual places).
Capabilities follow from what is configured: streaming needs ``stream``; tools need a
``{{tools}}`` placeholder and a ``response.tool_calls`` pointer (tool calls are read from
whole answers; a streaming request with tools is answered whole and replayed as a
stream); vision needs ``{{images}}``; JSON mode needs ``{{response_format}}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import msgspec

from ..core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    ChatResponse,
    DragomanError,
    Finish,
    Part,
    RequestContext,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    TransportError,
    UpstreamError,
    Usage,
    UsageUpdate,
    error_for_status,
    events_of,
    new_id,
)
from ..net import HttpClient, NdjsonDecoder, SseDecoder, Timeouts
from ..net.http import DEFAULT_POOL
from ..net.retry import retry_after_seconds
from .json_pointer import MISSING, JsonPointer, JsonPointerError
from .registry import OptionsError, ProviderSpec
from .template import RequestTemplate, TemplateError, request_values

log = logging.getLogger("dragoman.providers.http_generic")

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


class HttpGenericOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    template: Any
    response: ResponseMap
    url: str | None = None
    path: str = ""
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    stream: StreamMap | None = None
    api_key_header: str | None = None
    stop_reasons: dict[str, StopReason] = msgspec.field(default_factory=dict)


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


def _pointer(text: str | None, where: str) -> JsonPointer | None:
    if text is None:
        return None
    try:
        return JsonPointer(text)
    except JsonPointerError as e:
        raise OptionsError(f"{e} - at `{where}`") from None


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


class HttpGeneric:
    """See the module docstring. Build it from config, or directly::

        HttpGeneric(name="x", url="http://host/generate", template={...},
                    response={"text": "/text"}, stream={"format": "ndjson", ...})
    """

    def __init__(self, *, name: str, url: str, template: Any,
                 response: ResponseMap | Mapping[str, Any],
                 stream: StreamMap | Mapping[str, Any] | None = None, model: str = "",
                 method: str = "POST", headers: Mapping[str, str] | None = None,
                 api_key: str | None = None, api_key_header: str | None = None,
                 capabilities: Capabilities | None = None, timeouts: Timeouts | None = None,
                 stop_reasons: Mapping[str, StopReason] | None = None,
                 max_connections: int = DEFAULT_POOL) -> None:
        self.name = name
        self.model = model
        self.method = method
        self._url = url
        resp_map = response if isinstance(response, ResponseMap) else _convert(response,
                                                                                ResponseMap)
        stream_map = stream if stream is None or isinstance(stream, StreamMap) \
            else _convert(stream, StreamMap)
        self._template = _compile(template, "$.template")
        text_ptr = _pointer(resp_map.text, "$.response.text")
        assert text_ptr is not None
        self._text = text_ptr
        self._calls = _pointer(resp_map.tool_calls, "$.response.tool_calls")
        self._whole = _Extract(resp_map, "$.response")
        self._stream = stream_map
        if stream_map is not None:
            delta = _pointer(stream_map.delta, "$.stream.delta")
            assert delta is not None
            self._delta = delta
            self._done = _pointer(stream_map.done, "$.stream.done")
            self._frame = _Extract(stream_map, "$.stream")
            self._stream_template = self._template if stream_map.template is None \
                else _compile(stream_map.template, "$.stream.template")
            self._stream_url = stream_map.url or (url.rstrip("/") + stream_map.path
                                                  if stream_map.path else url)
        self._stop = {**DEFAULT_STOP_REASONS, **(stop_reasons or {})}
        self._api_key = api_key
        self._headers = {"content-type": "application/json"}
        if api_key:
            if api_key_header:
                self._headers[api_key_header.lower()] = api_key
            else:
                self._headers["authorization"] = f"Bearer {api_key}"
        self._headers.update({k.lower(): v for k, v in (headers or {}).items()})
        names = self._template.names
        caps = capabilities or Capabilities()
        self._caps = msgspec.structs.replace(
            caps, streaming=caps.streaming and stream_map is not None,
            tools=caps.tools and self._calls is not None and "tools" in names,
            vision=caps.vision and "images" in names,
            json_mode=caps.json_mode and "response_format" in names, thinking=False)
        self.http = HttpClient(url, timeouts=timeouts, limit=max_connections)

    def __repr__(self) -> str:  # never the key or headers
        return f"HttpGeneric(name={self.name!r}, url={self._url!r})"

    def capabilities(self) -> Capabilities:
        return self._caps

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- requests ----------------------------------------------------------------------

    def _body(self, template: RequestTemplate, req: ChatRequest, stream: bool) -> bytes:
        values = request_values(req, template.names, model=self.model or req.model,
                                stream=stream)
        return _encode(template.render(values))

    def _error(self, status: int, headers: Mapping[str, str], raw: bytes,
               pointer: JsonPointer | None) -> DragomanError:
        if status in (401, 403):
            # The upstream is complaining about the gateway's key: say so, quote nothing.
            message = f"HTTP {status}"
        else:
            message = self._error_message(raw, pointer) or f"upstream returned HTTP {status}"
        return error_for_status(status, message, retry_after=retry_after_seconds(headers))

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

    def _scrub(self, message: str) -> str:
        key = self._api_key
        return message.replace(key, "***") if key and key in message else message

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        resp = await self.http.request(self.method, self._url,
                                       body=self._body(self._template, req, False),
                                       headers=self._headers)
        try:
            raw = await resp.read()
        finally:
            resp.release()
        if resp.status >= 400:
            raise self._error(resp.status, resp.headers, raw, self._whole.error)
        try:
            doc = _decode(raw)
        except msgspec.DecodeError:
            raise UpstreamError("upstream returned a body that is not valid JSON") from None
        return self._response(doc, req)

    def _response(self, doc: Any, req: ChatRequest) -> ChatResponse:
        w = self._whole
        if w.error is not None:
            failure = _message_of(w.error.get(doc))
            if failure:
                raise UpstreamError(self._scrub(failure[:1000]))
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
        stop = self._stop_reason(finish, bool(calls))
        return ChatResponse(id=new_id("gen_"), model=self.model or req.model, content=content,
                            stop_reason=stop, usage=usage)

    def _stop_reason(self, finish: Any, has_calls: bool) -> StopReason:
        if isinstance(finish, str) and finish in self._stop:
            return self._stop[finish]
        return StopReason.TOOL_USE if has_calls else StopReason.END_TURN

    # --- streams -----------------------------------------------------------------------

    async def stream(self, req: ChatRequest,
                     ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
        sm = self._stream
        if sm is None or (req.tools and self._caps.tools):
            # No stream configured, or tool calls (read from whole answers only): answer
            # whole and replay it as a stream.
            resp = await self.complete(req, ctx)
            for ev in events_of(resp):
                yield ev
            return
        up = await self.http.request(self.method, self._stream_url,
                                     body=self._body(self._stream_template, req, True),
                                     headers={**self._headers, "accept": "text/event-stream"
                                              if sm.format == "openai_sse"
                                              else "application/x-ndjson"})
        completed = False
        try:
            if up.status >= 400:
                raise self._error(up.status, up.headers, await up.read(), self._frame.error)
            sse = sm.format == "openai_sse"
            decoder: SseDecoder | NdjsonDecoder = SseDecoder() if sse else NdjsonDecoder()
            delta_ptr, done_ptr, frame = self._delta, self._done, self._frame
            usage, seen_usage = Usage(), False
            finish: Any = MISSING
            done = False
            chunks = up.iter_chunks()
            try:
                async for chunk in chunks:
                    for item in decoder.feed(chunk):
                        if sse:
                            data = item[1]
                            if data == "[DONE]":
                                done = True
                                break
                            try:
                                doc = _decode(data)
                            except msgspec.DecodeError:
                                raise UpstreamError(
                                    "upstream sent a stream frame that is not JSON") from None
                        else:
                            doc = item
                        if frame.error is not None:
                            failure = _message_of(frame.error.get(doc))
                            if failure:
                                raise UpstreamError(self._scrub(failure[:1000]))
                        text = delta_ptr.get(doc)
                        if isinstance(text, str) and text:
                            yield TextDelta(text=text)
                        if frame.finish is not None:
                            f = frame.finish.get(doc)
                            if f is not MISSING and f is not None:
                                finish = f
                        if frame.has_usage and frame.usage(doc, usage):
                            seen_usage = True
                        if done_ptr is not None and done_ptr.get(doc) == sm.done_value:
                            done = True
                            break
                    if done:
                        break
                if not done:
                    for item in decoder.close():
                        if sse and item[1] == "[DONE]":
                            done = True
                # Without an end marker (ndjson, no `done` pointer) the end of the body
                # is the end of the answer; otherwise it must have been seen.
                if not done and (sse or done_ptr is not None):
                    raise TransportError("upstream stream ended before its end marker")
                if seen_usage:
                    yield UsageUpdate(usage=usage)
                yield Finish(stop_reason=self._stop_reason(finish, False))
                completed = True
            except DragomanError as e:
                yield StreamError(error=e)
            finally:
                aclose = getattr(chunks, "aclose", None)  # we may stop before its end
                if aclose is not None:
                    await aclose()
        finally:
            if completed:
                up.release()
            else:
                up.close()


def _convert(value: Any, typ: type[Any]) -> Any:
    try:
        return msgspec.convert(value, typ)
    except msgspec.ValidationError as e:
        raise OptionsError(str(e)) from None


def _compile(template: Any, where: str) -> RequestTemplate:
    try:
        return RequestTemplate(template, where)
    except TemplateError as e:
        raise OptionsError(str(e)) from None


def from_spec(spec: ProviderSpec) -> HttpGeneric:
    o = spec.parse_options(HttpGenericOptions)
    if o.url:
        url = o.url
    elif spec.base_url:
        url = spec.base_url.rstrip("/") + o.path
    else:
        raise OptionsError("http_generic needs `url`, or `base_url` (+ `path`) - at `$`")
    return HttpGeneric(name=spec.name, url=url, template=o.template, response=o.response,
                       stream=o.stream, model=spec.model or "", method=o.method,
                       headers=spec.headers, api_key=spec.api_key,
                       api_key_header=o.api_key_header, capabilities=spec.capabilities,
                       timeouts=spec.timeouts, stop_reasons=o.stop_reasons,
                       max_connections=spec.max_connections)
