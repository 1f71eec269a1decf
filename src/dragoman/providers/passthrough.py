"""Same-dialect pass-through: forward a client's request and the upstream's answer as bytes.

When a client speaks its upstream's own dialect (a Chat client on the ``openai`` provider,
an Anthropic client on ``anthropic``, a Responses client on ``openai_responses``),
translating to the neutral model and back decodes and re-encodes every chunk for nothing.
A ``Passthrough`` instead sends the client's body with only ``model`` rewritten and hands
the upstream's answer to the client unchanged, while still

* reading usage, from the few usage-bearing frames only: a byte search finds them, and
  only those are decoded (into tiny structs that skip everything else);
* turning an upstream HTTP error into a core error, which the server renders in the
  client's dialect (an upstream 401 about the gateway's key is still a 502, never the
  client's fault);
* ending a stream that breaks off, or stops without its terminal event, with an in-band
  error in the dialect's own grammar.

"Nothing needs changing" is decided here per dialect (``Wire.upstream_body``):

* OpenAI Chat: always, except that a streaming request gets ``stream_options.include_usage``
  so usage can be counted; when the client did not ask for it, the final usage-only chunk
  is withheld from the client (the other chunks then carry ``"usage": null``, which the
  SDKs read as absent).
* Anthropic Messages: unless a ``system``/``developer`` message sits inside ``messages``
  (Claude Code sends one; the translator folds it into ``system``).
* OpenAI Responses: always (the server already keeps stored and chained requests, which
  need the gateway's own ids and history, on the translating path).

The client sees the upstream's own response ids and model name. Stream frames are not
validated on the way through (the client gets them as the vendor sent them); a whole
answer is decoded for its usage anyway, so one that is not JSON is refused as on the
translating path.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import msgspec

from ..core import (
    ChatRequest,
    DragomanError,
    StreamError,
    UpstreamError,
    Usage,
)
from ..dialects import anthropic_messages, openai_chat, openai_responses
from ..dialects.anthropic_messages.wire import WireUsage, usage_from_wire
from ..dialects.contract import RenderContext
from ..dialects.framing import sse
from ..dialects.openai_chat.wire import parse_usage as chat_usage
from ..dialects.openai_responses.wire import parse_usage as responses_usage
from ..net.sse import SseRelay
from .base import HttpDialectProvider

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_USAGE = b'"usage"'
_NULL_USAGE = b'"usage":null'
_NO_CTX = RenderContext(id="", model="", created=0)


# --- the few fields pass-through reads (msgspec skips everything else) -------------------


class _UsageOnly(msgspec.Struct):
    usage: Any = None


class _ChatChunk(msgspec.Struct):
    usage: Any = None
    choices: list[msgspec.Raw] | None = None


class _AnthropicFrame(msgspec.Struct):
    usage: Any = None
    message: _UsageOnly | None = None


class _ResponsesFrame(msgspec.Struct):
    response: _UsageOnly | None = None
    sequence_number: int | None = None


class _Typed(msgspec.Struct):
    type: Any = None


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {
    t: msgspec.json.Decoder(t)
    for t in (_UsageOnly, _ChatChunk, _AnthropicFrame, _ResponsesFrame, _Typed, dict[str, Any])}


def _decode_as(data: bytes, typ: Any) -> Any:
    """``data`` decoded as ``typ`` (one of the structs above), or None if it is not."""
    try:
        return _DECODERS[typ].decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


# --- per-dialect rules (pure: a dialect's own; move to dialects/<name>/forward.py) --------


class Forward:
    """One dialect's rules for forwarding a same-dialect request as is (a translator from
    the dialect to itself that also reports usage): what to change in the client's body,
    and how to read usage from the upstream's answer."""

    def request(self, body: dict[str, Any], req: ChatRequest,
                model: str) -> tuple[dict[str, Any], bool] | None:
        """(body to send, withhold the usage chunk) or None: the request needs translating."""
        up = dict(body)
        up["model"] = model
        return up, False

    def usage_of_body(self, raw: bytes) -> Usage | None:
        """Usage of a whole answer. Decoding it also checks the body is JSON (a body the
        client could not parse is refused, as on the translating path)."""
        frame = _decode_as(raw, _UsageOnly)
        if frame is None:
            raise UpstreamError("upstream returned a body that is not valid JSON")
        return self.usage_of(frame.usage)

    def usage_of(self, raw: Any) -> Usage | None:
        raise NotImplementedError

    def stream(self, withhold_usage: bool) -> ForwardStream:
        """The rules for one forwarded stream (a ``net.sse.FrameWatch``)."""
        raise NotImplementedError


class ForwardStream:
    """Reads usage from a forwarded stream's usage-bearing frames (the only ones a relay
    hands it), and knows how this dialect ends a stream, well or broken."""

    __slots__ = ("usage",)
    watch = _USAGE
    unless = _NULL_USAGE
    terminal_events: frozenset[bytes] = frozenset()

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def read(self, data: bytes) -> bool:
        raise NotImplementedError

    def is_terminal(self, event: bytes | None, data: bytes) -> bool:
        if event is not None:
            return event in self.terminal_events
        typed = _decode_as(data, _Typed)
        return typed is not None and isinstance(typed.type, str) \
            and typed.type.encode() in self.terminal_events

    def ended_in_error(self, event: bytes | None, data: bytes | None) -> bool:
        """The upstream's last frame was its own error event."""
        return event == b"error" or (data is not None and data.startswith(b'{"error"'))

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        raise NotImplementedError


class ChatForward(Forward):
    def request(self, body: dict[str, Any], req: ChatRequest,
                model: str) -> tuple[dict[str, Any], bool] | None:
        """Always, except that a streaming request asks for usage
        (``stream_options.include_usage``); when the client did not, the final usage-only
        chunk is withheld from it."""
        up = dict(body)
        up["model"] = model
        withhold = False
        if body.get("stream") is True:
            so = body.get("stream_options")
            if not (isinstance(so, dict) and so.get("include_usage") is True):
                up["stream_options"] = {**(so if isinstance(so, dict) else {}),
                                        "include_usage": True}
                withhold = True
        return up, withhold

    def usage_of(self, raw: Any) -> Usage | None:
        return chat_usage(raw)

    def stream(self, withhold_usage: bool) -> ChatForwardStream:
        return ChatForwardStream(withhold_usage)


class ChatForwardStream(ForwardStream):
    __slots__ = ("withhold_usage",)

    def __init__(self, withhold_usage: bool) -> None:
        self.usage = None
        self.withhold_usage = withhold_usage

    def read(self, data: bytes) -> bool:
        chunk = _decode_as(data, _ChatChunk)
        if chunk is None or chunk.usage is None:
            return True
        usage = chat_usage(chunk.usage)
        if usage is not None:
            self.usage = usage
        return not (self.withhold_usage and not chunk.choices)

    def is_terminal(self, event: bytes | None, data: bytes) -> bool:
        return data == b"[DONE]"

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        if last is not None and last.startswith(b'{"error"'):
            return b"data: [DONE]\n\n"  # the upstream said why; only the end is missing
        return openai_chat.DIALECT.stream_renderer(_NO_CTX).feed(StreamError(error=err))


class AnthropicForward(Forward):
    def request(self, body: dict[str, Any], req: ChatRequest,
                model: str) -> tuple[dict[str, Any], bool] | None:
        """Unless a ``system``/``developer`` message sits inside ``messages`` (Claude Code
        sends one; the translator folds it into ``system``)."""
        if any(m.is_system for m in req.messages):
            return None
        return super().request(body, req, model)

    def usage_of(self, raw: Any) -> Usage | None:
        return usage_from_wire(raw) if isinstance(raw, dict) else None

    def stream(self, withhold_usage: bool) -> AnthropicForwardStream:
        return AnthropicForwardStream()


class AnthropicForwardStream(ForwardStream):
    __slots__ = ("_counts",)
    terminal_events = frozenset({b"message_stop", b"error"})

    def __init__(self) -> None:
        self.usage = None
        self._counts: WireUsage | None = None

    def read(self, data: bytes) -> bool:
        frame = _decode_as(data, _AnthropicFrame)
        if frame is None:
            return True
        raw = frame.usage if frame.usage is not None else \
            frame.message.usage if frame.message is not None else None
        if isinstance(raw, dict):
            # message_start then message_delta: cumulative counts, present fields win.
            if self._counts is None:
                self._counts = WireUsage()
            self._counts.merge(raw)
            self.usage = self._counts.neutral()
        return True

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        return anthropic_messages.DIALECT.stream_renderer(_NO_CTX).feed(StreamError(error=err))


class ResponsesForward(Forward):
    """Always (the server keeps stored and chained requests, which need the gateway's own
    ids and history, on the translating path)."""

    def usage_of(self, raw: Any) -> Usage | None:
        return responses_usage(raw)

    def stream(self, withhold_usage: bool) -> ResponsesForwardStream:
        return ResponsesForwardStream()


class ResponsesForwardStream(ForwardStream):
    __slots__ = ()
    terminal_events = frozenset({b"response.completed", b"response.failed",
                                 b"response.incomplete", b"error"})

    def read(self, data: bytes) -> bool:
        frame = _decode_as(data, _ResponsesFrame)
        if frame is not None and frame.response is not None and frame.response.usage:
            usage = responses_usage(frame.response.usage)
            if usage is not None:
                self.usage = usage
        return True

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        """``response.failed`` continuing the upstream's numbering, about the upstream's
        response (its ``response.created`` snapshot), with the failure rendered by the
        dialect itself."""
        rendered = openai_responses.DIALECT.stream_renderer(_NO_CTX).feed(StreamError(error=err))
        payload = _decode(rendered.split(b"data: ", 1)[1])
        seq = -1
        if last is not None:
            frame = _decode_as(last, _ResponsesFrame)
            if frame is not None and frame.sequence_number is not None:
                seq = frame.sequence_number
        payload["sequence_number"] = seq + 1
        created = _decode_as(first, dict[str, Any]) if first is not None else None
        snapshot = created.get("response") if isinstance(created, dict) else None
        if isinstance(snapshot, dict):
            payload["response"] = {**snapshot, "status": "failed",
                                   "error": payload["response"].get("error")}
        return sse("response.failed", payload)


FORWARDS: dict[str, Forward] = {openai_chat.NAME: ChatForward(),
                                anthropic_messages.NAME: AnthropicForward(),
                                openai_responses.NAME: ResponsesForward()}


# --- one forwarded request (the transport glue) ----------------------------------------------


class Passthrough:
    """One request forwarded as bytes. The server calls ``complete()`` (the upstream's
    body) when ``streaming`` is false, else iterates ``stream()`` (the upstream's frames);
    ``usage`` and ``outcome`` (``ok`` or the kind of an in-band failure) are known
    afterwards."""

    __slots__ = ("_body", "_forward", "_provider", "_req", "_withhold", "outcome",
                 "streaming", "usage")

    def __init__(self, provider: HttpDialectProvider, forward: Forward, req: ChatRequest,
                 body: bytes, withhold_usage: bool) -> None:
        self._provider = provider
        self._forward = forward
        self._req = req
        self._body = body
        self._withhold = withhold_usage
        self.streaming = bool(req.stream)
        self.usage: Usage | None = None
        self.outcome = "ok"

    async def complete(self) -> bytes:
        p = self._provider
        resp = await p.http.request("POST", p.path(self._req, False), body=self._body,
                                    headers=p.request_headers(self._req, False))
        try:
            raw = await resp.read()
        finally:
            resp.release()
        if resp.status >= 400:
            raise p.error_from(resp, raw)
        self.usage = self._forward.usage_of_body(raw)
        return raw

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """Raises a core error if the upstream fails before answering; after that,
        failures arrive in-band as the dialect's error frames."""
        p = self._provider
        resp = await p.http.request("POST", p.path(self._req, True), body=self._body,
                                    headers=p.request_headers(self._req, True))
        watch = self._forward.stream(self._withhold)
        relay = SseRelay(watch)
        completed = False
        try:
            if resp.status >= 400:
                raise p.error_from(resp, await resp.read())
            try:
                async for chunk in resp.iter_chunks():
                    out = relay.feed(chunk)
                    if out:
                        yield out
                tail = relay.end()
                completed = relay.terminal
                if not completed:
                    self.outcome = "transport"
                elif watch.ended_in_error(relay.last_event, relay.last_data):
                    self.outcome = "upstream"
            except DragomanError as e:
                tail = relay.fail(e)
                self.outcome = e.kind.value
            if tail:
                yield tail
        finally:
            self.usage = watch.usage
            if completed:
                resp.release()
            else:
                resp.close()


def prepare(provider: HttpDialectProvider, req: ChatRequest,
            body: dict[str, Any]) -> Passthrough | None:
    """``req`` (parsed from the client's ``body``) forwarded byte for byte to a provider
    that ``forwards`` it, or None when the dialect's rules say it needs changing."""
    forward = FORWARDS.get(provider.dialect.name)
    if forward is None:
        return None
    planned = forward.request(body, req, provider.model)
    if planned is None:
        return None
    up, withhold = planned
    return Passthrough(provider, forward, req, _encode(up), withhold)
