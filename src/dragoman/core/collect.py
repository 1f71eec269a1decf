"""Fold a stream of events into one ``ChatResponse`` (for non-streaming callers of a
streaming-only upstream, and for agents that need the whole turn)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Literal

from .content import Citation, Opaque, Part, RedactedThinking, Refusal, Text, Thinking, ToolCall
from .events import (
    CitationAdded,
    Finish,
    OpaqueItem,
    RedactedThinkingBlock,
    RefusalDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    TextStart,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)
from .response import ChatResponse, StopReason, Usage


class Collector:
    """Accumulates events; ``response()`` builds the result. Raises the in-band error of a
    ``StreamError`` event, so a collected failure looks like an immediate one."""

    __slots__ = (
        "_calls",
        "_citations",
        "_content",
        "_phase",
        "_refusal",
        "_text",
        "_thinking",
        "finished",
        "stop_reason",
        "stop_sequence",
        "usage",
    )

    def __init__(self) -> None:
        self._content: list[Part] = []
        self._text: list[str] | None = None
        self._phase: str | None = None
        self._citations: list[Citation] | None = None
        self._refusal: list[str] | None = None
        self._thinking: list[str] | None = None
        self._calls: dict[str, tuple[ToolCall, list[str]]] = {}
        self.usage = Usage()
        self.stop_reason = StopReason.END_TURN
        self.stop_sequence: str | None = None
        self.finished = False

    def _close_text(self) -> None:
        """Close the open text part (and refusal run): both are the message's content."""
        if self._text is not None:
            text = "".join(self._text)
            if text or self._citations:
                self._content.append(Text(text=text, citations=self._citations,
                                          phase=self._phase))
            self._text = None
            self._phase = None
            self._citations = None
        if self._refusal is not None:
            self._content.append(Refusal(text="".join(self._refusal)))
            self._refusal = None

    def _open_text(self, phase: str | None = None) -> list[str]:
        self._close_text()
        self._close_thinking(None)
        self._phase = phase
        self._text = []
        return self._text

    def feed(self, ev: StreamEvent) -> None:
        # An empty delta carries nothing and, as in every stream renderer, neither opens
        # nor closes a block: the collected parts are the items a client was streamed.
        if isinstance(ev, TextDelta):
            if not ev.text:
                return
            text = self._text
            if text is None:
                text = self._open_text()
            text.append(ev.text)
            return
        if isinstance(ev, ThinkingDelta):
            if not ev.text:
                return
            self._close_text()
            if self._thinking is None:
                self._thinking = []
            self._thinking.append(ev.text)
        elif isinstance(ev, ThinkingEnd):
            self._close_text()
            self._close_thinking(ev)
        elif isinstance(ev, RedactedThinkingBlock):
            self._close_text()
            self._close_thinking(None)
            self._content.append(RedactedThinking(data=ev.data, origin=ev.origin))
        elif isinstance(ev, ToolCallStart):
            self._close_text()
            self._close_thinking(None)
            kind: Literal["function", "custom"] = "custom" if ev.kind == "custom" else "function"
            call = ToolCall(id=ev.id, name=ev.name, kind=kind)
            self._calls[ev.id] = (call, [])
            self._content.append(call)
        elif isinstance(ev, ToolCallDelta):
            entry = self._calls.get(ev.id)
            if entry is not None:
                entry[1].append(ev.arguments)
        elif isinstance(ev, TextStart):
            self._open_text(ev.phase)
        elif isinstance(ev, CitationAdded):
            if self._text is None:  # Anthropic sends a block's citations before its text
                self._open_text()
            if self._citations is None:
                self._citations = []
            self._citations.append(ev.citation)
        elif isinstance(ev, RefusalDelta):
            if not ev.text:
                return
            if self._refusal is None:
                self._close_text()
                self._close_thinking(None)
                self._refusal = []
            self._refusal.append(ev.text)
        elif isinstance(ev, ToolCallEnd):
            pass  # arguments are joined in response(): a late (interleaved) delta still counts
        elif isinstance(ev, OpaqueItem):
            self._close_text()
            self._close_thinking(None)
            self._content.append(ev.part)
        elif isinstance(ev, UsageUpdate):
            self.usage = ev.usage
        elif isinstance(ev, Finish):
            self.stop_reason = ev.stop_reason
            self.stop_sequence = ev.stop_sequence
            self.finished = True
        elif isinstance(ev, StreamError):
            raise ev.error

    def _close_thinking(self, end: ThinkingEnd | None) -> None:
        if self._thinking is None and end is None:
            return
        self._content.append(Thinking(
            text="".join(self._thinking or ()),
            signature=end.signature if end else None,
            origin=end.origin if end else None,
            id=end.id if end else None,
        ))
        self._thinking = None

    def response(self, id: str, model: str, created: int = 0) -> ChatResponse:
        self._close_text()
        self._close_thinking(None)
        for call, parts in self._calls.values():
            call.arguments = "".join(parts)
        return ChatResponse(id=id, model=model, content=self._content,
                            stop_reason=self.stop_reason, stop_sequence=self.stop_sequence,
                            usage=self.usage, created=created)


def collect(events: Iterable[StreamEvent], id: str, model: str, created: int = 0) -> ChatResponse:
    c = Collector()
    for ev in events:
        c.feed(ev)
    return c.response(id, model, created)


async def acollect(events: AsyncIterable[StreamEvent], id: str, model: str,
                   created: int = 0) -> ChatResponse:
    c = Collector()
    async for ev in events:
        c.feed(ev)
    return c.response(id, model, created)


def events_of(resp: ChatResponse) -> list[StreamEvent]:
    """The inverse of ``collect``: replay a finished response as stream events (used to
    stream a response that an upstream returned whole)."""
    out = part_events(resp.content)
    out.append(UsageUpdate(usage=resp.usage))
    out.append(Finish(stop_reason=resp.stop_reason, stop_sequence=resp.stop_sequence))
    return out


def part_events(parts: Iterable[Part]) -> list[StreamEvent]:
    """The events that ``Collector`` folds back into ``parts``."""
    out: list[StreamEvent] = []
    apart = False  # the text before must not run into the next one
    for p in parts:
        if isinstance(p, Text):
            marked = p.phase is not None or bool(p.citations)
            if marked or apart:
                out.append(TextStart(phase=p.phase))
                out.extend(CitationAdded(citation=c) for c in p.citations or ())
            apart = marked
            out.append(TextDelta(text=p.text))
            continue
        apart = False
        if isinstance(p, Refusal):
            out.append(RefusalDelta(text=p.text))
        elif isinstance(p, Thinking):
            if p.text:
                out.append(ThinkingDelta(text=p.text))
            out.append(ThinkingEnd(signature=p.signature, id=p.id, origin=p.origin))
        elif isinstance(p, RedactedThinking):
            out.append(RedactedThinkingBlock(data=p.data, origin=p.origin))
        elif isinstance(p, ToolCall):
            out.append(ToolCallStart(id=p.id, name=p.name, kind=p.kind))
            if p.arguments:
                out.append(ToolCallDelta(id=p.id, arguments=p.arguments))
            out.append(ToolCallEnd(id=p.id))
        elif isinstance(p, Opaque):
            out.append(OpaqueItem(part=p))
    return out
