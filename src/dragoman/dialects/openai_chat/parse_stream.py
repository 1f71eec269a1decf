"""Parse an upstream's Chat Completions SSE stream into neutral events."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core import (
    Finish,
    RefusalDelta,
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
    new_id,
)
from .wire import error_from_payload, parse_usage, reasoning_text, stop_reason_for

_decode = msgspec.json.decode


# The chunk nearly every stream is made of, decoded into structs (bench/README.md, "Chat
# chunks decoded into structs"): the envelope's ``id``/``object``/``created``/``model``
# are skipped, not built. The delta's fields are the ones ``_choice`` reads; any of them
# but ``content`` being non-null, a key not listed, or a value of another type fails the
# typed decode, and the chunk goes the general way (``feed_chunk``) instead.
class _FastDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    content: str | None = None
    role: Any = None
    refusal: None = None
    reasoning_content: None = None
    reasoning: None = None
    tool_calls: None = None
    function_call: None = None


class _FastChoice(msgspec.Struct, gc=False):
    index: Any = 0
    delta: _FastDelta | None = None
    finish_reason: Any = None


class _FastChunk(msgspec.Struct, gc=False):
    choices: list[_FastChoice] | None = None
    usage: Any = None
    error: Any = None


_decode_fast = msgspec.json.Decoder(_FastChunk).decode


class _Call:
    __slots__ = ("custom", "id", "index", "name", "pending", "started")

    def __init__(self, index: int, call_id: str, name: str, custom: bool) -> None:
        self.index = index
        self.id = call_id
        self.name = name
        self.custom = custom
        self.started = False
        self.pending: list[str] = []


class StreamParser:
    """Chat chunks → neutral events.

    Tool calls are keyed by ``index``; ``ToolCallStart`` goes out once a call's name is
    known, ``ToolCallEnd`` when another call, text or reasoning starts, or at the end.
    ``Finish`` (preceded by the last usage seen) goes out at ``[DONE]`` or at close once a
    ``finish_reason`` was seen, because usage may come after the finish chunk.
    """

    __slots__ = (
        "_any_call",
        "_calls",
        "_done",
        "_finish",
        "_open",
        "_refused",
        "_thinking",
        "_usage",
    )

    def __init__(self) -> None:
        self._calls: dict[int, _Call] = {}
        self._open: _Call | None = None
        self._thinking = False
        self._finish: Any = None
        self._usage: Usage | None = None
        self._refused = False
        self._any_call = False
        self._done = False

    def _close_open(self, out: list[StreamEvent]) -> None:
        if self._thinking:
            self._thinking = False
            out.append(ThinkingEnd())
        call = self._open
        if call is not None:
            self._open = None
            self._start(call, out)
            out.append(ToolCallEnd(id=call.id))

    def _start(self, call: _Call, out: list[StreamEvent]) -> None:
        if not call.started:
            call.started = True
            out.append(ToolCallStart(id=call.id, name=call.name,
                                     kind="custom" if call.custom else "function"))
            if call.pending:
                out.append(ToolCallDelta(id=call.id, arguments="".join(call.pending)))
                call.pending.clear()

    def _tool_fragment(self, frag: Any, out: list[StreamEvent]) -> None:
        if not isinstance(frag, dict):
            return
        index = frag.get("index")
        frag_id = frag.get("id")
        if not isinstance(index, int) or isinstance(index, bool):
            # Lenient (Gemini, old Ollama): no index. A fragment with a new id is a new call,
            # one without an id continues the call in progress.
            index = next((i for i, c in self._calls.items() if c.id == frag_id), None)
            if index is None:
                if frag_id is None and self._open is not None:
                    index = self._open.index
                else:
                    index = len(self._calls)
        custom_obj = frag.get("custom")
        custom = frag.get("type") == "custom" or isinstance(custom_obj, dict)
        inner = custom_obj if isinstance(custom_obj, dict) else frag.get("function")
        if not isinstance(inner, dict):
            inner = {}
        name = inner.get("name")
        args = inner.get("input" if custom else "arguments")
        if isinstance(args, (dict, list)):
            args = msgspec.json.encode(args).decode()
        call = self._calls.get(index)
        if call is None:
            self._close_open(out)
            call_id = frag_id if isinstance(frag_id, str) and frag_id else new_id("call_")
            call = _Call(index, call_id, name if isinstance(name, str) else "", custom)
            self._calls[index] = call
            self._open = call
            self._any_call = True
        elif not call.started and isinstance(name, str) and not call.name:
            call.name = name
        if call is not self._open and call.started:
            # A fragment for a call that was already closed (interleaved indices): forward it
            # anyway so nothing is silently lost.
            if isinstance(args, str) and args:
                out.append(ToolCallDelta(id=call.id, arguments=args))
            return
        if not call.started and call.name:
            self._start(call, out)
        if isinstance(args, str) and args:
            if call.started:
                out.append(ToolCallDelta(id=call.id, arguments=args))
            else:
                call.pending.append(args)

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if type(delta) is dict and len(delta) == 1:
            # The common chunk by far: ``{"content": "…"}`` and nothing else.
            text = delta.get("content")
            if type(text) is str:
                if text:
                    if self._thinking or self._open is not None:
                        self._close_open(out)
                    out.append(TextDelta(text=text))
                delta = None
        if isinstance(delta, dict):
            reasoning = reasoning_text(delta)
            if reasoning:
                if self._open is not None:
                    self._close_open(out)
                self._thinking = True
                out.append(ThinkingDelta(text=reasoning))
            for key in ("content", "refusal"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    if self._thinking or self._open is not None:
                        self._close_open(out)
                    if key == "refusal":
                        self._refused = True
                        out.append(RefusalDelta(text=text))
                    else:
                        out.append(TextDelta(text=text))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for frag in calls:
                    self._tool_fragment(frag, out)
            fc = delta.get("function_call")  # deprecated single function call
            if isinstance(fc, dict):
                self._tool_fragment({"index": 0, "function": fc}, out)
        fr = choice.get("finish_reason")
        if isinstance(fr, str) and fr:
            self._finish = fr

    def _end(self) -> list[StreamEvent]:
        self._done = True
        out: list[StreamEvent] = []
        self._close_open(out)  # a call whose name never came is still reported
        if self._usage is not None:
            out.append(UsageUpdate(usage=self._usage))
        out.append(Finish(stop_reason=stop_reason_for(self._finish, self._any_call,
                                                      self._refused)))
        return out

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        if self._done:
            return []
        data = data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return self._end()
        try:
            try:
                chunk = _decode_fast(data)
            except msgspec.ValidationError:  # valid JSON of another shape: the general way
                return self.feed_chunk(_decode(data))
        except msgspec.DecodeError:
            self._done = True
            return [StreamError(error=UpstreamError("malformed chunk in upstream stream"))]
        out: list[StreamEvent] = []
        self._fast([chunk], out)
        return out

    def feed_data(self, datas: list[bytes]) -> list[StreamEvent]:
        """``feed`` for each of a read's data-only frames, given as bytes
        (``SseDecoder.data_frames``): chunks of the common shape are decoded straight from
        the bytes in one C loop and turned into events in one Python loop; from the first
        frame that is not such a chunk on, each goes through ``feed`` (bench/README.md,
        "A read's frames at once")."""
        if self._done:
            return []
        done = datas[-1] == b"[DONE]"
        chunks: list[_FastChunk] = []
        rest = False
        try:
            chunks.extend(map(_decode_fast, datas[:-1] if done else datas))
        except msgspec.DecodeError:  # (ValidationError too: a chunk of another shape)
            rest = True  # (extend kept the chunks decoded before it)
        out: list[StreamEvent] = []
        self._fast(chunks, out)
        if self._done:  # an error chunk
            return out
        if rest:
            for data in datas[len(chunks):]:
                out += self.feed(None, data.decode("utf-8", "replace"))
        elif done:
            out += self._end()
        return out

    def _fast(self, chunks: list[_FastChunk], out: list[StreamEvent]) -> None:
        """``feed_chunk`` for chunks of the common shape (text, role, finish, usage)."""
        close = self._thinking or self._open is not None  # (only _close_open changes it)
        for chunk in chunks:
            if chunk.error is not None:
                self._done = True
                out.append(StreamError(error=error_from_payload(chunk.error)))
                return
            if chunk.usage is not None:
                usage = parse_usage(chunk.usage)
                if usage is not None:
                    self._usage = usage
            for choice in chunk.choices or ():
                if choice.index == 0:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        if close:
                            close = False
                            self._close_open(out)
                        out.append(TextDelta(text=delta.content))
                    fr = choice.finish_reason
                    if isinstance(fr, str) and fr:
                        self._finish = fr

    def feed_chunk(self, obj: Any) -> list[StreamEvent]:
        """One already-decoded chunk (for adapters that rewrite chunks before parsing)."""
        if self._done or not isinstance(obj, dict):
            return []
        if obj.get("error") is not None:
            self._done = True
            return [StreamError(error=error_from_payload(obj["error"]))]
        raw_usage = obj.get("usage")  # null on every chunk but the last
        if raw_usage is not None:
            usage = parse_usage(raw_usage)
            if usage is not None:
                self._usage = usage
        out: list[StreamEvent] = []
        choices = obj.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, out)
        return out

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        if self._finish is not None:
            return self._end()
        self._done = True
        return [StreamError(error=TransportError("upstream stream ended before completion"))]
