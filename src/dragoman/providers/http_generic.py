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

The config is compiled into an upstream dialect (``generic_dialect.py``: the template, the
pointers, the stream's framing) that the provider machinery every HTTP upstream shares
drives (``base.py``, ``upstream_call.py``). Upstream HTTP failures are classified by
status (``core.error_for_status``), with the message read from the error body
(``response.error`` pointer, else the usual places; ``stream.error`` for streaming calls).
Capabilities follow from what is configured: streaming needs ``stream``; tools need a
``{{tools}}`` placeholder and a ``response.tool_calls`` pointer (tool calls are read from
whole answers; a streaming request with tools is answered whole and replayed as a
stream); vision needs ``{{images}}``; JSON mode needs ``{{response_format}}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import msgspec

from ..core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    ChatResponse,
    DragomanError,
    RequestContext,
    StopReason,
    StreamEvent,
    events_of,
)
from ..net import Timeouts, UpstreamResponse
from ..net.http import DEFAULT_POOL
from .base import HttpDialectProvider
from .frames import FrameDecoder
from .generic_dialect import GenericWire, ResponseMap, StreamMap, convert
from .registry import OptionsError, ProviderSpec
from .upstream_call import with_retry_after

__all__ = ["HttpGeneric", "HttpGenericOptions", "ResponseMap", "StreamMap", "from_spec"]

_encode = msgspec.json.Encoder().encode


class HttpGenericOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    template: Any
    response: ResponseMap
    url: str | None = None
    path: str = ""
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    stream: StreamMap | None = None
    api_key_header: str | None = None
    stop_reasons: dict[str, StopReason] = msgspec.field(default_factory=dict)


class HttpGeneric(HttpDialectProvider):
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
        resp_map = response if isinstance(response, ResponseMap) else convert(response,
                                                                               ResponseMap)
        stream_map = stream if stream is None or isinstance(stream, StreamMap) \
            else convert(stream, StreamMap)
        self.wire = GenericWire(template=template, response=resp_map, stream=stream_map,
                                stop_reasons=dict(stop_reasons or {}), model=model,
                                secret=api_key)
        self.dialect = self.wire.dialect
        names = self.wire.template.names
        caps = capabilities or Capabilities()
        caps = msgspec.structs.replace(
            caps, streaming=caps.streaming and stream_map is not None,
            tools=caps.tools and self.wire.reads_tool_calls and "tools" in names,
            vision=caps.vision and "images" in names,
            json_mode=caps.json_mode and "response_format" in names, thinking=False)
        super().__init__(model=model, base_url=url, api_key=api_key, capabilities=caps,
                         timeouts=timeouts, name=name, max_connections=max_connections)
        self.method = method
        self._url = url
        self._stream_url = url
        if stream_map is not None and (stream_map.url or stream_map.path):
            self._stream_url = stream_map.url or url.rstrip("/") + (stream_map.path or "")
        auth = {}
        if api_key:
            auth = {api_key_header.lower(): api_key} if api_key_header \
                else {"authorization": f"Bearer {api_key}"}
        whole = {"content-type": "application/json", **auth,
                 **{k.lower(): v for k, v in (headers or {}).items()}}
        accept = "text/event-stream" if stream_map is not None \
            and stream_map.format == "openai_sse" else "application/x-ndjson"
        self._headers = (whole, {**whole, "accept": accept})

    def __repr__(self) -> str:  # never the key or headers
        return f"HttpGeneric(name={self.name!r}, url={self._url!r})"

    # --- the envelope: where, how, and with which template ------------------------------

    def path(self, req: ChatRequest, stream: bool) -> str:
        return self._stream_url if stream else self._url

    def request_headers(self, req: ChatRequest, stream: bool,
                        ctx: RequestContext = NO_CONTEXT) -> dict[str, str]:
        return self._headers[stream]

    def _body(self, req: ChatRequest, stream: bool) -> bytes:
        # The template picks the model (configured, else the client's) and the stream flag.
        upstream_req = msgspec.structs.replace(req, model=self.model or req.model,
                                               stream=stream)
        return _encode(self.dialect.render_request(upstream_req))

    def parse_upstream_response(self, body: Any, req: ChatRequest) -> ChatResponse:
        return self.wire.parse_answer(body, self.model or req.model)

    def stream_decoder(self) -> FrameDecoder:
        return self.wire.frame_decoder()

    def stream_error_from(self, resp: UpstreamResponse, raw: bytes) -> DragomanError:
        return with_retry_after(self.wire.parse_stream_error(resp.status, raw), resp)

    def stream(self, req: ChatRequest,
               ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
        if self.wire.stream is None or (req.tools and self._caps.tools):
            # No stream configured, or tool calls (read from whole answers only): answer
            # whole and replay it as a stream.
            return self._replayed(req, ctx)
        return super().stream(req, ctx)

    async def _replayed(self, req: ChatRequest,
                        ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        for ev in events_of(await self.complete(req, ctx)):
            yield ev


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
