"""Before a request reaches a provider: what the model can take, and how to call it.

``check_capabilities`` refuses, with a 400 naming the problem, what the deployment's
``Capabilities`` say it cannot take (images, tools, JSON mode); ``open_stream`` gives a
streaming client a stream even from an upstream that only answers whole; ``passthrough``
picks the same-dialect fast path when nothing about the request needs translating.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ..core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    Image,
    InvalidRequest,
    RequestContext,
    StreamEvent,
    ToolResult,
    UpstreamError,
    events_of,
)
from ..providers.base import HttpDialectProvider, LlmProvider
from ..providers.passthrough import Passthrough
from .table import Deployment

log = logging.getLogger("dragoman.router")


def _first_image(req: ChatRequest) -> str | None:
    """Where the first image of the request is (``messages[i]``), or None."""
    for i, m in enumerate(req.messages):
        for p in m.content:
            if isinstance(p, Image) or (isinstance(p, ToolResult)
                                        and any(isinstance(c, Image) for c in p.content)):
                return f"messages[{i}]"
    return None


def check_capabilities(req: ChatRequest, caps: Capabilities) -> None:
    """Raise ``InvalidRequest`` (a 400 in the client's dialect) for input the model cannot
    take. The common case — a model that can do everything — costs three attribute reads."""
    if not caps.tools and (req.tools or req.hosted_tools):
        raise InvalidRequest(f"The model '{req.model}' does not support tools; send the "
                             "request without 'tools'.", param="tools",
                             code="tools_not_supported")
    if not caps.json_mode and req.response_format is not None \
            and req.response_format.type != "text":
        raise InvalidRequest(f"The model '{req.model}' does not support JSON output "
                             f"('{req.response_format.type}' response format).",
                             param="response_format", code="json_mode_not_supported")
    if not caps.vision:
        where = _first_image(req)
        if where is not None:
            raise InvalidRequest(f"The model '{req.model}' does not accept image input "
                                 f"(an image was found in {where}).", param=where,
                                 code="vision_not_supported")


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


def passthrough(deployment: Deployment, req: ChatRequest, body: Any,
                caps: Capabilities, ctx: RequestContext = NO_CONTEXT) -> Passthrough | None:
    """The same-dialect fast path for this request, or None. The caller rules out what
    only it knows (stored or chained Responses, which need the neutral events); this
    checks the deployment (``passthrough: false`` forces translation), streaming support,
    and asks the provider, which knows its dialect's rules."""
    provider = deployment.provider
    if not deployment.passthrough or not isinstance(provider, HttpDialectProvider) \
            or not isinstance(body, dict) or (req.stream and not caps.streaming):
        return None
    return provider.passthrough(req, body, ctx)
