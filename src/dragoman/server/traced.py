"""What the request span records of the answer when the operator opted in to content
capture (``tracing.capture_content``): the completion's text, as ``gen_ai.output.messages``.

Only ever called with tracing on and capture opted in, so nothing here is on the path of
an untraced request. A same-dialect stream is forwarded as bytes and not decoded for this
(its completion is not recorded); a whole pass-through answer is recorded as the upstream's
JSON.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Protocol

from ..core import ChatResponse, Finish, StreamEvent, TextDelta
from ..core.spans import Span

OUTPUT = "gen_ai.output.messages"


class Opened(Protocol):
    """What of a deployment's first answer is read here (``generate.Opened``)."""

    resp: ChatResponse | None
    raw: bytes | None
    events: AsyncIterator[StreamEvent] | None
    first: StreamEvent | None


def capture_output(span: Span, opened: Opened) -> None:
    """Record the answer ``opened`` holds now, or wrap its stream to record the text when
    the stream ends."""
    if opened.resp is not None:
        span.content(OUTPUT, [{"role": "assistant", "parts": opened.resp.content}])
    elif opened.raw is not None:
        span.content(OUTPUT, opened.raw.decode("utf-8", "replace"))
    elif opened.events is not None:
        # the first event was read already (it decided that the deployment answered)
        first = opened.first
        opened.events = _recording(span, opened.events,
                                   [first.text] if type(first) is TextDelta else [])


async def _recording(span: Span, events: AsyncIterator[StreamEvent], texts: list[str]
                     ) -> AsyncGenerator[StreamEvent, None]:
    try:
        async for ev in events:
            if type(ev) is TextDelta:
                texts.append(ev.text)
            elif type(ev) is Finish:
                span.content(OUTPUT, [{"role": "assistant",
                                       "parts": [{"type": "text", "content": "".join(texts)}],
                                       "finish_reason": ev.stop_reason.value}])
            yield ev
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
