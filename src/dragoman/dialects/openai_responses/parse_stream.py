"""``StreamParser``: an upstream's Responses SSE events → neutral stream events.

Dispatches on the JSON ``type`` (the ``event:`` name only when the JSON has none), ignores
unknown events and unparsable data, and accepts content that arrives only in ``*.done``
events or only in the terminal response (some servers skip the deltas).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ...core import (
    Finish,
    Opaque,
    OpaqueItem,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ThinkingEnd,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    TransportError,
    UsageUpdate,
)
from .parse import failure, item_parts, reasoning_text, stop_reason
from .wire import NAME, ORIGIN, parse_usage

_decode = msgspec.json.Decoder().decode
_CALLS = ("function_call", "custom_tool_call")


class _Call:
    __slots__ = ("args", "id")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.args: list[str] = []


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ""


class StreamParser:
    __slots__ = ("_calls", "_done", "_index", "_refusal", "_seen", "_text", "_think",
                 "_tool_use")

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}  # item id → open call
        self._index: dict[int, str] = {}  # output_index → item id
        self._text: set[str] = set()  # message items whose text was emitted
        self._think: dict[str, list[tuple[str, int]]] = {}  # reasoning item → parts emitted
        self._tool_use = False
        self._refusal = False
        self._seen = False  # any output item event seen
        self._done = False

    def feed(self, event: str | None, data: str) -> list[StreamEvent]:
        if self._done or not data or data.startswith("[DONE]"):
            return []
        try:
            obj = _decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return []
        if not isinstance(obj, dict):
            return []
        typ = obj.get("type")
        handler = _HANDLERS.get(typ if isinstance(typ, str) else (event or ""))
        return handler(self, obj) if handler is not None else []

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [StreamError(error=TransportError("upstream stream ended before completion"))]

    # --- helpers ----------------------------------------------------------------------

    def _item_id(self, obj: dict[str, Any]) -> str:
        item_id = obj.get("item_id")
        if isinstance(item_id, str):
            return item_id
        idx = obj.get("output_index")
        return self._index.get(idx, "") if isinstance(idx, int) else ""

    def _start_call(self, item: dict[str, Any], index: Any) -> list[StreamEvent]:
        custom = item.get("type") == "custom_tool_call"
        item_id = _s(item.get("id")) or f"#{index}"
        call = _Call(_s(item.get("call_id")) or item_id)
        self._calls[item_id] = call
        if isinstance(index, int):
            self._index[index] = item_id
        self._tool_use = True
        out: list[StreamEvent] = [ToolCallStart(id=call.id, name=_s(item.get("name")),
                                                kind="custom" if custom else "function")]
        out.extend(self._catch_up(call, item.get("input" if custom else "arguments")))
        return out

    def _catch_up(self, call: _Call, full: Any) -> list[StreamEvent]:
        """Arguments a ``*.done`` carries beyond what the deltas gave."""
        if not isinstance(full, str) or not full:
            return []
        have = "".join(call.args)
        if len(full) <= len(have) or not full.startswith(have):
            return []
        rest = full[len(have):]
        call.args.append(rest)
        return [ToolCallDelta(id=call.id, arguments=rest)]

    def _thinking(self, item_id: str, key: tuple[str, int], text: str) -> list[StreamEvent]:
        parts = self._think.setdefault(item_id, [])
        if not text:
            return []
        if parts and parts[-1] != key:
            text = "\n\n" + text  # summary parts are separate paragraphs
        if not parts or parts[-1] != key:
            parts.append(key)
        return [ThinkingDelta(text=text)]

    # --- handlers ---------------------------------------------------------------------

    def _on_text_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        delta = _s(obj.get("delta"))
        if obj.get("type") == "response.refusal.delta":
            self._refusal = True
        if not delta:
            return []
        self._text.add(self._item_id(obj))
        return [TextDelta(text=delta)]

    def _on_text_done(self, obj: dict[str, Any]) -> list[StreamEvent]:
        refusal = obj.get("type") == "response.refusal.done"
        text = _s(obj.get("refusal" if refusal else "text"))
        item_id = self._item_id(obj)
        if refusal:
            self._refusal = True
        if not text or item_id in self._text:
            return []
        self._text.add(item_id)
        return [TextDelta(text=text)]

    def _on_item_added(self, obj: dict[str, Any]) -> list[StreamEvent]:
        item = obj.get("item")
        if not isinstance(item, dict):
            return []
        self._seen = True
        idx = obj.get("output_index")
        if isinstance(idx, int) and isinstance(item.get("id"), str):
            self._index[idx] = item["id"]
        if item.get("type") in _CALLS:
            return self._start_call(item, idx)
        return []

    def _on_args_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        call = self._calls.get(self._item_id(obj))
        delta = _s(obj.get("delta"))
        if call is None or not delta:
            return []
        call.args.append(delta)
        return [ToolCallDelta(id=call.id, arguments=delta)]

    def _on_args_done(self, obj: dict[str, Any]) -> list[StreamEvent]:
        call = self._calls.get(self._item_id(obj))
        if call is None:
            return []
        return self._catch_up(call, obj.get("arguments", obj.get("input")))

    def _on_reasoning_delta(self, obj: dict[str, Any]) -> list[StreamEvent]:
        return self._thinking(self._item_id(obj), _part_key(obj), _s(obj.get("delta")))

    def _on_reasoning_done(self, obj: dict[str, Any]) -> list[StreamEvent]:
        item_id = self._item_id(obj)
        key = _part_key(obj)
        if key in self._think.get(item_id, ()):
            return []
        return self._thinking(item_id, key, _s(obj.get("text")))

    def _on_item_done(self, obj: dict[str, Any]) -> list[StreamEvent]:
        item = obj.get("item")
        if not isinstance(item, dict):
            return []
        self._seen = True
        typ = item.get("type")
        item_id = _s(item.get("id"))
        if not item_id and isinstance(obj.get("output_index"), int):
            item_id = self._index.get(obj["output_index"], "")
        if typ in _CALLS:
            call = self._calls.pop(item_id, None)
            if call is None:  # a call that arrived whole
                out = self._start_call(item, obj.get("output_index"))
                call = self._calls.pop(_s(item.get("id")) or f"#{obj.get('output_index')}")
            else:
                out = self._catch_up(call, item.get("input" if typ == "custom_tool_call"
                                                    else "arguments"))
            out.append(ToolCallEnd(id=call.id))
            return out
        if typ == "reasoning":
            out = []
            if not self._think.get(item_id):
                text = reasoning_text(item)
                if text:
                    out.append(ThinkingDelta(text=text))
            self._think.pop(item_id, None)
            enc = item.get("encrypted_content")
            out.append(ThinkingEnd(signature=enc if isinstance(enc, str) else None,
                                   id=item_id or None, origin=ORIGIN))
            return out
        if typ == "message":
            parts, refusal = item_parts(item)
            self._refusal = self._refusal or refusal
            if item_id in self._text:
                return []
            return [TextDelta(text=p.text) for p in parts if isinstance(p, Text) and p.text]
        return [OpaqueItem(part=Opaque(dialect=NAME, data=item))]

    def _replay(self, output: Any) -> list[StreamEvent]:
        """A terminal response whose items were never streamed: emit them whole."""
        out: list[StreamEvent] = []
        for item in output if isinstance(output, list) else ():
            if not isinstance(item, dict):
                continue
            parts, refusal = item_parts(item)
            self._refusal = self._refusal or refusal
            for p in parts:
                if isinstance(p, Text):
                    if p.text:
                        out.append(TextDelta(text=p.text))
                elif isinstance(p, Thinking):
                    if p.text:
                        out.append(ThinkingDelta(text=p.text))
                    out.append(ThinkingEnd(signature=p.signature, id=p.id, origin=p.origin))
                elif isinstance(p, ToolCall):
                    self._tool_use = True
                    out.append(ToolCallStart(id=p.id, name=p.name, kind=p.kind))
                    if p.arguments:
                        out.append(ToolCallDelta(id=p.id, arguments=p.arguments))
                    out.append(ToolCallEnd(id=p.id))
                elif isinstance(p, Opaque):
                    out.append(OpaqueItem(part=p))
        return out

    def _on_terminal(self, obj: dict[str, Any]) -> list[StreamEvent]:
        self._done = True
        resp = obj.get("response")
        resp = resp if isinstance(resp, dict) else {}
        typ = obj.get("type")
        status = resp.get("status")
        if typ == "response.incomplete":
            status = "incomplete"
        if status == "failed" or typ == "response.failed":
            return [StreamError(error=failure(resp))]
        out: list[StreamEvent] = [] if self._seen else self._replay(resp.get("output"))
        out.extend(ToolCallEnd(id=c.id) for c in self._calls.values())
        self._calls.clear()
        usage = parse_usage(resp.get("usage"))
        if usage is not None:
            out.append(UsageUpdate(usage=usage))
        out.append(Finish(stop_reason=stop_reason(status, resp.get("incomplete_details"),
                                                  self._tool_use, self._refusal)))
        return out

    def _on_error(self, obj: dict[str, Any]) -> list[StreamEvent]:
        self._done = True
        return [StreamError(error=failure(obj))]


def _part_key(obj: dict[str, Any]) -> tuple[str, int]:
    if "summary_index" in obj:
        idx = obj.get("summary_index")
        return "summary", idx if isinstance(idx, int) else 0
    idx = obj.get("content_index")
    return "content", idx if isinstance(idx, int) else 0


_Handler = Callable[[StreamParser, dict[str, Any]], list[StreamEvent]]
_HANDLERS: dict[str, _Handler] = {
    "response.output_text.delta": StreamParser._on_text_delta,
    "response.refusal.delta": StreamParser._on_text_delta,
    "response.output_text.done": StreamParser._on_text_done,
    "response.refusal.done": StreamParser._on_text_done,
    "response.output_item.added": StreamParser._on_item_added,
    "response.output_item.done": StreamParser._on_item_done,
    "response.function_call_arguments.delta": StreamParser._on_args_delta,
    "response.custom_tool_call_input.delta": StreamParser._on_args_delta,
    "response.function_call_arguments.done": StreamParser._on_args_done,
    "response.custom_tool_call_input.done": StreamParser._on_args_done,
    "response.reasoning_summary_text.delta": StreamParser._on_reasoning_delta,
    "response.reasoning_text.delta": StreamParser._on_reasoning_delta,
    "response.reasoning_summary_text.done": StreamParser._on_reasoning_done,
    "response.reasoning_text.done": StreamParser._on_reasoning_done,
    "response.completed": StreamParser._on_terminal,
    "response.done": StreamParser._on_terminal,
    "response.incomplete": StreamParser._on_terminal,
    "response.failed": StreamParser._on_terminal,
    "error": StreamParser._on_error,
}
