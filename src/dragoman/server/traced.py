"""What the request span records of the answer when the operator opted in to content
capture (``tracing.capture_content``): the completion's text, as ``gen_ai.output.messages``.

Only ever called with tracing on and capture opted in, so nothing here is on the path of
an untraced request. A same-dialect stream is forwarded as bytes and not decoded for this
(its completion is not recorded); a whole pass-through answer is recorded as the upstream's
JSON.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ..core import Finish, StreamEvent, TextDelta
from ..core.spans import Span

OUTPUT = "gen_ai.output.messages"


def record_output(span: Span, output: Any) -> None:
    """Record a whole answer: neutral messages, or a pass-through's JSON text."""
    span.content(OUTPUT, output)


def recording(span: Span, events: AsyncIterator[StreamEvent], first: StreamEvent
              ) -> AsyncGenerator[StreamEvent, None]:
    """``events`` (whose ``first`` was read already: it decided that the deployment
    answered), recording the text on the span when the stream ends."""
    return _recording(span, events, [first.text] if type(first) is TextDelta else [])


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
