"""Opening a provider's stream and waiting for its first event.

``open_first`` reads the first event (which is what decides that the deployment took the
request: failures up to it may still be retried), giving a streaming client a stream even
from an upstream that only answers whole (``open_stream``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from ..core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    RequestContext,
    StreamEvent,
    UpstreamError,
    events_of,
)
from ..providers.base import LlmProvider

log = logging.getLogger("dragoman.router")


def open_stream(provider: LlmProvider, req: ChatRequest, caps: Capabilities,
                ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
    """The provider's stream, or — for an upstream that cannot stream — its whole answer
    replayed as events (errors still raise before the first event)."""
    if caps.streaming:
        return provider.stream(req, ctx)
    return _synthesized(provider, req, ctx)


async def open_first(provider: LlmProvider, req: ChatRequest, caps: Capabilities,
                     ctx: RequestContext = NO_CONTEXT
                     ) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
    """Open a stream and wait for its first event: a failure up to here raises (and the
    stream is closed), so the router may still retry; after it, failures are in-band."""
    events = open_stream(provider, req, caps, ctx)
    try:
        first = await events.__anext__()
    except StopAsyncIteration:
        await aclose_events(events)
        raise UpstreamError("upstream produced an empty stream") from None
    except BaseException:
        await aclose_events(events)
        raise
    return events, first


async def aclose_events(events: AsyncIterator[StreamEvent]) -> None:
    """Close a provider stream (its upstream connection with it); never raises."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("closing provider stream failed", exc_info=True)


async def _synthesized(provider: LlmProvider, req: ChatRequest,
                       ctx: RequestContext) -> AsyncIterator[StreamEvent]:
    resp = await provider.complete(req, ctx)
    for ev in events_of(resp):
        yield ev
