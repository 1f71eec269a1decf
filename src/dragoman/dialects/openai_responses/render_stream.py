"""``StreamRenderer``: neutral stream events → Responses SSE frames.

Canonical order: ``response.created``, ``response.in_progress``, then per output item
``output_item.added`` … deltas … ``output_item.done``, then exactly one terminal event
(``response.completed`` / ``.incomplete`` / ``.failed``) carrying the full Response object.
Every ``*.added`` gets its ``*.done``; ``sequence_number`` counts every event from 0.
"""

from __future__ import annotations

from typing import Any

from ...core import (
    Finish,
    OpaqueItem,
    RedactedThinkingBlock,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from ..contract import RenderContext
from ..framing import sse
from .items import item_id
from .render import GENERIC_FAILURE, echo, response_dict, terminal_status
from .wire import (
    NAME,
    ORIGIN,
    custom_input,
    custom_names,
    failure_code,
    failure_message,
    namespaces,
)


class _Block:
    """An open output item: its id, output index and the text received so far."""

    __slots__ = ("chunks", "emulated", "id", "index", "item")

    def __init__(self, item_id: str, index: int, item: dict[str, Any] | None = None,
                 emulated: bool = False) -> None:
        self.id = item_id
        self.index = index
        self.item = item
        self.emulated = emulated  # a custom call an upstream made through a function
        self.chunks: list[str] = []


class StreamRenderer:
    __slots__ = ("_calls", "_ctx", "_custom", "_done", "_ns", "_output", "_seq", "_settings",
                 "_text", "_think", "_usage")

    def __init__(self, ctx: RenderContext) -> None:
        self._ctx = ctx
        self._settings = echo(ctx)
        self._ns = namespaces(ctx.request)
        self._custom = custom_names(ctx.request)
        self._seq = 0
        self._output: list[dict[str, Any] | None] = []
        self._text: _Block | None = None
        self._think: _Block | None = None
        self._calls: dict[str, _Block] = {}
        self._usage: Usage | None = None
        self._done = False

    # --- framing ----------------------------------------------------------------------

    def _ev(self, typ: str, fields: dict[str, Any]) -> bytes:
        payload = {"type": typ, "sequence_number": self._seq}
        payload.update(fields)
        self._seq += 1
        return sse(typ, payload)

    def _response(self, status: str, *, incomplete: str | None = None,
                  error: dict[str, Any] | None = None) -> dict[str, Any]:
        final = status != "in_progress"
        return response_dict(
            self._ctx, self._settings, status=status,
            output=[i for i in self._output if i is not None] if final else [],
            usage=(self._usage or Usage()) if final else None,
            incomplete=incomplete, error=error)

    def _next_id(self, prefix: str) -> str:
        """The id of the item about to be opened (``items.item_id``: what the stored
        response's ``output`` names it)."""
        return item_id(prefix, self._ctx.id, "output", len(self._output))

    def _open(self, item: dict[str, Any]) -> tuple[int, bytes]:
        index = len(self._output)
        self._output.append(None)
        return index, self._ev("response.output_item.added",
                               {"output_index": index, "item": item})

    def _finish_item(self, index: int, item: dict[str, Any]) -> bytes:
        self._output[index] = item
        return self._ev("response.output_item.done", {"output_index": index, "item": item})

    def start(self) -> bytes:
        snapshot = self._response("in_progress")
        return (self._ev("response.created", {"response": snapshot})
                + self._ev("response.in_progress", {"response": snapshot}))

    # --- text -------------------------------------------------------------------------

    def _text_delta(self, text: str) -> bytes:
        out = b""
        b = self._text
        if b is None:
            out = self._close_think(None)
            msg_id = self._next_id("msg_")
            index, frame = self._open({"id": msg_id, "type": "message", "role": "assistant",
                                       "status": "in_progress", "content": []})
            b = self._text = _Block(msg_id, index)
            out += frame + self._ev("response.content_part.added", {
                "item_id": msg_id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
        b.chunks.append(text)
        return out + self._ev("response.output_text.delta", {
            "item_id": b.id, "output_index": b.index, "content_index": 0, "delta": text,
            "logprobs": []})

    def _close_text(self) -> bytes:
        b = self._text
        if b is None:
            return b""
        self._text = None
        text = "".join(b.chunks)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        head = {"item_id": b.id, "output_index": b.index, "content_index": 0}
        return (self._ev("response.output_text.done", {**head, "text": text, "logprobs": []})
                + self._ev("response.content_part.done", {**head, "part": part})
                + self._finish_item(b.index, {"id": b.id, "type": "message",
                                              "role": "assistant", "status": "completed",
                                              "content": [part]}))

    # --- reasoning --------------------------------------------------------------------

    def _open_think(self) -> bytes:
        rid = self._next_id("rs_")  # not an upstream's own: its id comes with the end
        index, frame = self._open({"id": rid, "type": "reasoning", "summary": []})
        self._think = _Block(rid, index)
        return frame

    def _think_delta(self, text: str) -> bytes:
        out = b""
        b = self._think
        if b is None:
            out = self._close_text() + self._open_think()
            b = self._think
            assert b is not None
        if not b.chunks:
            out += self._ev("response.reasoning_summary_part.added", {
                "item_id": b.id, "output_index": b.index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}})
        b.chunks.append(text)
        return out + self._ev("response.reasoning_summary_text.delta", {
            "item_id": b.id, "output_index": b.index, "summary_index": 0, "delta": text})

    def _close_think(self, end: ThinkingEnd | None) -> bytes:
        b = self._think
        if b is None:
            return b""
        self._think = None
        out = b""
        summary: list[dict[str, Any]] = []
        if b.chunks:
            text = "".join(b.chunks)
            part = {"type": "summary_text", "text": text}
            summary.append(part)
            head = {"item_id": b.id, "output_index": b.index, "summary_index": 0}
            out = (self._ev("response.reasoning_summary_text.done", {**head, "text": text})
                   + self._ev("response.reasoning_summary_part.done", {**head, "part": part}))
        item: dict[str, Any] = {"id": b.id, "type": "reasoning", "summary": summary}
        if end is not None and end.signature is not None and end.origin == ORIGIN:
            item["encrypted_content"] = end.signature
        return out + self._finish_item(b.index, item)

    def _think_end(self, ev: ThinkingEnd) -> bytes:
        out = self._close_text()
        if self._think is None:
            out += self._open_think()
        return out + self._close_think(ev)

    # --- tool calls -------------------------------------------------------------------

    def _call_start(self, ev: ToolCallStart) -> bytes:
        if ev.id in self._calls:
            return b""
        out = self._close_text() + self._close_think(None)
        emulated = ev.kind != "custom" and ev.name in self._custom
        custom = ev.kind == "custom" or emulated
        call_item_id = self._next_id("ctc_" if custom else "fc_")
        if custom:
            item: dict[str, Any] = {"id": call_item_id, "type": "custom_tool_call",
                                    "call_id": ev.id, "name": ev.name, "input": ""}
        else:
            item = {"id": call_item_id, "type": "function_call", "status": "in_progress",
                    "call_id": ev.id, "name": ev.name, "arguments": ""}
        ns = self._ns.get(ev.name)
        if ns is not None:
            item["namespace"] = ns
        index, frame = self._open(item)
        self._calls[ev.id] = _Block(call_item_id, index, item, emulated)
        return out + frame

    def _call_delta(self, ev: ToolCallDelta) -> bytes:
        b = self._calls.get(ev.id)
        if b is None or not ev.arguments:
            return b""
        b.chunks.append(ev.arguments)
        if b.emulated:
            return b""  # JSON-wrapped free text: unwrapped whole when the call ends
        custom = b.item is not None and b.item["type"] == "custom_tool_call"
        return self._ev("response.custom_tool_call_input.delta" if custom
                        else "response.function_call_arguments.delta",
                        {"item_id": b.id, "output_index": b.index, "delta": ev.arguments})

    def _call_end(self, call_id: str) -> bytes:
        b = self._calls.pop(call_id, None)
        if b is None or b.item is None:
            return b""
        args = "".join(b.chunks)
        item = dict(b.item)
        head = {"item_id": b.id, "output_index": b.index}
        if item["type"] == "custom_tool_call":
            frame = b""
            if b.emulated:
                args = custom_input(args)
                if args:
                    frame = self._ev("response.custom_tool_call_input.delta",
                                     {**head, "delta": args})
            item["input"] = args
            frame += self._ev("response.custom_tool_call_input.done", {**head, "input": args})
        else:
            item["arguments"] = args
            item["status"] = "completed"
            frame = self._ev("response.function_call_arguments.done",
                             {**head, "name": item["name"], "arguments": args})
        return frame + self._finish_item(b.index, item)

    # --- the rest ---------------------------------------------------------------------

    def _close_all(self) -> bytes:
        out = self._close_text() + self._close_think(None)
        for call_id in list(self._calls):
            out += self._call_end(call_id)
        return out

    def _opaque(self, ev: OpaqueItem) -> bytes:
        out = self._close_text() + self._close_think(None)
        if ev.part.dialect != NAME:
            return out  # another dialect's item has no meaning for this client
        index, frame = self._open(ev.part.data)
        return out + frame + self._finish_item(index, ev.part.data)

    def feed(self, event: StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, TextDelta):
            return self._text_delta(event.text) if event.text else b""
        if isinstance(event, ThinkingDelta):
            return self._think_delta(event.text) if event.text else b""
        if isinstance(event, ThinkingEnd):
            return self._think_end(event)
        if isinstance(event, ToolCallStart):
            return self._call_start(event)
        if isinstance(event, ToolCallDelta):
            return self._call_delta(event)
        if isinstance(event, ToolCallEnd):
            return self._call_end(event.id)
        if isinstance(event, UsageUpdate):
            self._usage = event.usage
            return b""
        if isinstance(event, OpaqueItem):
            return self._opaque(event)
        if isinstance(event, RedactedThinkingBlock):
            return self._close_text() + self._close_think(None)
        if isinstance(event, Finish):
            self._done = True
            out = self._close_all()
            status, reason = terminal_status(event.stop_reason)
            if status == "failed":
                return out + self._ev("response.failed", {"response": self._response(
                    "failed", error=dict(GENERIC_FAILURE))})
            return out + self._ev(f"response.{status}", {
                "response": self._response(status, incomplete=reason)})
        if isinstance(event, StreamError):
            self._done = True
            err = event.error
            return self._close_all() + self._ev("response.failed", {
                "response": self._response("failed", error={
                    "code": failure_code(err), "message": failure_message(err)})})
        return b""  # agent events belong to the server
