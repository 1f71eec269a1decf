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
from typing import TYPE_CHECKING, Any

import msgspec

from ..core import (
    ChatRequest,
    DragomanError,
    StreamError,
    TransportError,
    UpstreamError,
    Usage,
)
from ..dialects import anthropic_messages, openai_chat, openai_responses
from ..dialects.anthropic_messages.wire import WireUsage, usage_from_wire
from ..dialects.contract import RenderContext
from ..dialects.framing import sse
from ..dialects.openai_chat.wire import parse_usage as chat_usage
from ..dialects.openai_responses.wire import parse_usage as responses_usage

if TYPE_CHECKING:
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


# --- per-dialect rules ---------------------------------------------------------------------


class Wire:
    """What pass-through must know about one dialect. Subclasses: one per dialect."""

    name: str = ""
    terminal_events: frozenset[bytes] = frozenset()

    def upstream_body(self, body: dict[str, Any], req: ChatRequest,
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

    def read_usage(self, data: bytes, scan: StreamScan) -> bool:
        """Read usage from one frame's data; False drops the frame (never forwarded)."""
        raise NotImplementedError

    def is_terminal(self, event: bytes | None, data: bytes) -> bool:
        if event is not None:
            return event in self.terminal_events
        typed = _decode_as(data, _Typed)
        return typed is not None and isinstance(typed.type, str) \
            and typed.type.encode() in self.terminal_events

    def failure(self, err: DragomanError, scan: StreamScan) -> bytes:
        """The in-band frame(s) that end a broken stream in this dialect."""
        raise NotImplementedError


class ChatWire(Wire):
    name = openai_chat.NAME

    def upstream_body(self, body: dict[str, Any], req: ChatRequest,
                      model: str) -> tuple[dict[str, Any], bool] | None:
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

    def read_usage(self, data: bytes, scan: StreamScan) -> bool:
        chunk = _decode_as(data, _ChatChunk)
        if chunk is None or chunk.usage is None:
            return True
        usage = chat_usage(chunk.usage)
        if usage is not None:
            scan.usage = usage
        return not (scan.withhold_usage and not chunk.choices)

    def is_terminal(self, event: bytes | None, data: bytes) -> bool:
        return data == b"[DONE]"

    def failure(self, err: DragomanError, scan: StreamScan) -> bytes:
        if scan.last_data is not None and scan.last_data.startswith(b'{"error"'):
            return b"data: [DONE]\n\n"  # the upstream said why; only the end is missing
        return openai_chat.DIALECT.stream_renderer(_NO_CTX).feed(StreamError(error=err))


class AnthropicWire(Wire):
    name = anthropic_messages.NAME
    terminal_events = frozenset({b"message_stop", b"error"})

    def upstream_body(self, body: dict[str, Any], req: ChatRequest,
                      model: str) -> tuple[dict[str, Any], bool] | None:
        if any(m.is_system for m in req.messages):
            return None
        return super().upstream_body(body, req, model)

    def usage_of(self, raw: Any) -> Usage | None:
        return usage_from_wire(raw) if isinstance(raw, dict) else None

    def read_usage(self, data: bytes, scan: StreamScan) -> bool:
        frame = _decode_as(data, _AnthropicFrame)
        if frame is None:
            return True
        raw = frame.usage if frame.usage is not None else \
            frame.message.usage if frame.message is not None else None
        if isinstance(raw, dict):
            # message_start then message_delta: cumulative counts, present fields win.
            if scan.wire_state is None:
                scan.wire_state = WireUsage()
            scan.wire_state.merge(raw)
            scan.usage = scan.wire_state.neutral()
        return True

    def failure(self, err: DragomanError, scan: StreamScan) -> bytes:
        return anthropic_messages.DIALECT.stream_renderer(_NO_CTX).feed(StreamError(error=err))


class ResponsesWire(Wire):
    name = openai_responses.NAME
    terminal_events = frozenset({b"response.completed", b"response.failed",
                                 b"response.incomplete", b"error"})

    def usage_of(self, raw: Any) -> Usage | None:
        return responses_usage(raw)

    def read_usage(self, data: bytes, scan: StreamScan) -> bool:
        frame = _decode_as(data, _ResponsesFrame)
        if frame is not None and frame.response is not None and frame.response.usage:
            usage = responses_usage(frame.response.usage)
            if usage is not None:
                scan.usage = usage
        return True

    def failure(self, err: DragomanError, scan: StreamScan) -> bytes:
        """``response.failed`` continuing the upstream's numbering, about the upstream's
        response (its ``response.created`` snapshot), with the failure rendered by the
        dialect itself."""
        rendered = openai_responses.DIALECT.stream_renderer(_NO_CTX).feed(StreamError(error=err))
        payload = _decode(_frame_fields(rendered.rstrip(b"\n"))[1])
        seq = -1
        if scan.last_data is not None:
            last = _decode_as(scan.last_data, _ResponsesFrame)
            if last is not None and last.sequence_number is not None:
                seq = last.sequence_number
        payload["sequence_number"] = seq + 1
        first = _first_frame_data(scan)
        created = _decode_as(first, dict[str, Any]) if first is not None else None
        snapshot = created.get("response") if isinstance(created, dict) else None
        if isinstance(snapshot, dict):
            payload["response"] = {**snapshot, "status": "failed",
                                   "error": payload["response"].get("error")}
        return sse("response.failed", payload)


WIRES: dict[str, Wire] = {w.name: w for w in (ChatWire(), AnthropicWire(), ResponsesWire())}


# --- the stream scanner ----------------------------------------------------------------------


def _frame_fields(frame: bytes) -> tuple[bytes | None, bytes]:
    """(event name, data) of one SSE frame (``data:`` lines joined by newlines)."""
    event: bytes | None = None
    data: list[bytes] = []
    for line in frame.split(b"\n"):
        line = line.rstrip(b"\r")
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value
    return event, b"\n".join(data)


def _first_frame_data(scan: StreamScan) -> bytes | None:
    if scan.first_region is None:
        return None
    return _frame_fields(scan.first_region.split(scan.sep, 1)[0])[1]


class StreamScan:
    """Watches an upstream SSE stream on its way through.

    ``feed`` returns the bytes to forward: every complete frame received so far (a frame
    cut between two network reads waits for its end, so nothing half-formed is ever sent
    and an error can always be appended cleanly). Per chunk that costs one ``rfind`` for
    the last frame boundary and one search for ``"usage"``; frames are split and decoded
    only where usage appears with a value.
    """

    __slots__ = ("_carry", "first_region", "last_data", "last_event", "last_region", "sep",
                 "terminal", "usage", "wire", "wire_state", "withhold_usage")

    def __init__(self, wire: Wire, withhold_usage: bool) -> None:
        self.wire = wire
        self.withhold_usage = withhold_usage
        self.usage: Usage | None = None
        self.wire_state: WireUsage | None = None
        self.sep = b""
        self._carry = b""
        self.first_region: bytes | None = None
        self.last_region: bytes | None = None
        self.last_event: bytes | None = None
        self.last_data: bytes | None = None
        self.terminal = False

    def feed(self, chunk: bytes) -> bytes:
        buf = self._carry + chunk if self._carry else chunk
        if not self.sep:
            # The first line end tells how this upstream ends its lines (LF or CRLF).
            nl = buf.find(b"\n")
            if nl < 0:
                self._carry = buf
                return b""
            self.sep = b"\r\n\r\n" if nl > 0 and buf[nl - 1] == 13 else b"\n\n"
        cut = buf.rfind(self.sep)
        if cut < 0:
            self._carry = buf
            return b""
        cut += len(self.sep)
        region = buf[:cut]
        self._carry = buf[cut:]
        if self.first_region is None:
            self.first_region = region
        if b"data" in region:  # not only blank lines or keep-alive comments
            self.last_region = region
        if _USAGE in region and region.count(_USAGE) != region.count(_NULL_USAGE):
            region = self._read_usage(region)
        return region

    def _read_usage(self, region: bytes) -> bytes:
        """Decode just the frames of ``region`` that mention usage (found by searching,
        not by splitting the region); return the region without any dropped frame."""
        sep, n = self.sep, len(self.sep)
        drops: list[tuple[int, int]] = []
        pos = region.find(_USAGE)
        while pos >= 0:
            start = region.rfind(sep, 0, pos)
            start = 0 if start < 0 else start + n
            end = region.find(sep, pos) + n  # the region ends with sep: always found
            frame = region[start:end - n]
            if frame.count(_USAGE) != frame.count(_NULL_USAGE) \
                    and not self.wire.read_usage(_frame_fields(frame)[1], self):
                drops.append((start, end))
            pos = region.find(_USAGE, end)
        if not drops:
            return region
        kept: list[bytes] = []
        at = 0
        for start, end in drops:
            kept.append(region[at:start])
            at = end
        kept.append(region[at:])
        out = b"".join(kept)
        return out if out.strip() else b""

    @property
    def ended_in_error(self) -> bool:
        """The upstream's last frame was its own error event."""
        return self.last_event == b"error" or (
            self.last_data is not None and self.last_data.startswith(b'{"error"'))

    def _check_last(self) -> None:
        """Read the last frame that carries an event or data (comments and blank frames,
        such as keep-alives, do not count)."""
        region = self.last_region
        if region is None:
            return
        for frame in reversed(region.split(self.sep)):
            event, data = _frame_fields(frame)
            if event is not None or data:
                self.last_event, self.last_data = event, data
                self.terminal = self.wire.is_terminal(event, data)
                return

    def end(self) -> bytes:
        """The upstream body ended: the unterminated rest (as a frame), then an error if
        the stream never reached its terminal event."""
        out = b""
        if self._carry.strip():
            out = self.feed(self.sep or b"\n\n")
        self._check_last()
        if self.terminal:
            return out
        return out + self.wire.failure(TransportError("upstream stream ended early"), self)

    def fail(self, err: DragomanError) -> bytes:
        """The upstream broke off mid-stream: drop the half frame, end in-band."""
        self._carry = b""
        self._check_last()
        if self.terminal:
            return b""
        return self.wire.failure(err, self)


# --- one forwarded request ---------------------------------------------------------------


class Passthrough:
    """One request forwarded as bytes. The server calls ``complete()`` (the upstream's
    body) when ``streaming`` is false, else iterates ``stream()`` (the upstream's frames);
    ``usage`` and ``outcome`` (``ok`` or the kind of an in-band failure) are known
    afterwards."""

    __slots__ = ("_body", "_provider", "_req", "_wire", "_withhold", "outcome", "streaming",
                 "usage")

    def __init__(self, provider: HttpDialectProvider, wire: Wire, req: ChatRequest,
                 body: bytes, withhold_usage: bool) -> None:
        self._provider = provider
        self._wire = wire
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
        self.usage = self._wire.usage_of_body(raw)
        return raw

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """Raises a core error if the upstream fails before answering; after that,
        failures arrive in-band as the dialect's error frames."""
        p = self._provider
        resp = await p.http.request("POST", p.path(self._req, True), body=self._body,
                                    headers=p.request_headers(self._req, True))
        scan = StreamScan(self._wire, self._withhold)
        completed = False
        try:
            if resp.status >= 400:
                raise p.error_from(resp, await resp.read())
            try:
                async for chunk in resp.iter_chunks():
                    out = scan.feed(chunk)
                    if out:
                        yield out
                tail = scan.end()
                completed = scan.terminal
                if not completed:
                    self.outcome = "transport"
                elif scan.ended_in_error:
                    self.outcome = "upstream"
            except DragomanError as e:
                tail = scan.fail(e)
                self.outcome = e.kind.value
            if tail:
                yield tail
        finally:
            self.usage = scan.usage
            if completed:
                resp.release()
            else:
                resp.close()


def prepare(provider: HttpDialectProvider, req: ChatRequest,
            body: dict[str, Any]) -> Passthrough | None:
    wire = WIRES.get(provider.dialect.name)
    if wire is None:
        return None
    planned = wire.upstream_body(body, req, provider.model)
    if planned is None:
        return None
    up, withhold = planned
    return Passthrough(provider, wire, req, _encode(up), withhold)
