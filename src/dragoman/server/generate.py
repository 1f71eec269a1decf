"""One handler for all three generation endpoints: parse in the client's dialect, resolve
the model, call the provider, render back in the client's dialect.

A deployment's first answer is what decides that it took the request (before it, the
router may still retry or fall back). It is one of four ``Answer`` types, each of which
serves itself to the client: a neutral response or stream (rendered in the client's
dialect), or a forwarded body or stream (the same-dialect pass-through: the upstream's
bytes as they came, with their usage read on the way).

Streaming is end-to-end: each upstream event is rendered and written at once, and a client
that disconnects cancels the provider stream (which closes the upstream connection).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from itertools import groupby
from typing import Protocol

from ..auth import Principal
from ..core import (
    ChatRequest,
    ChatResponse,
    Collector,
    DragomanError,
    Finish,
    RequestContext,
    StreamError,
    StreamEvent,
    TextDelta,
    UpstreamError,
    UsageUpdate,
    new_id,
    spans,
    validate_request,
)
from ..core.spans import Span
from ..dialects.contract import Dialect, RenderContext, StreamRenderer
from ..providers.base import HttpDialectProvider
from ..providers.passthrough import Passthrough, RelayedChunks
from ..providers.reads import ReadStream
from ..router import Deployment, dispatch
from ..router.first_answer import aclose_events, open_first
from ..router.health import Ticket
from ..router.limits import ADMIT_ALL
from ..router.limits.policy import settle_quietly
from .access_log import SCOPE_KEY as ACCESS
from .accounting import RequestMeter
from .agent_events import AGENT_EVENTS, EventStyle, agent_frame, agent_framer
from .conversation import Conversation, conversation
from .disconnect import unless_client_leaves
from .http import ClientGone, Receive, Scope, Send, header, send_json
from .state import GatewayState
from .traced import record_output, recording
from .writer import BodyWriter

log = logging.getLogger("dragoman.server")

_AGENT_EVENT_TYPES = frozenset(AGENT_EVENTS)

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


@dataclass(slots=True)
class Reply:
    """Where an answer goes: the client (its dialect, its ASGI channel) and the request's
    books (its conversation, its meter)."""

    dialect: Dialect
    req: ChatRequest
    conv: Conversation
    meter: RequestMeter
    receive: Receive
    send: Send
    agents_events: EventStyle = "dragoman"


class Answer(Protocol):
    """A deployment's first answer: the whole of it, or an open stream with its first
    event or chunk already read."""

    async def serve(self, to: Reply) -> None:
        """Write the answer to the client."""
        ...

    async def discard(self) -> None:
        """Close a stream that will not be served (its connection goes with it); a no-op
        once served to the end, or for a whole answer."""
        ...

    def capture(self, span: Span) -> None:
        """Record the completion on the request span (content capture opted in)."""
        ...


class NeutralResponse:
    """A whole answer in the neutral model, rendered in the client's dialect."""

    __slots__ = ("resp",)

    def __init__(self, resp: ChatResponse) -> None:
        self.resp = resp

    async def serve(self, to: Reply) -> None:
        resp, conv, meter = self.resp, to.conv, to.meter
        meter.usage = resp.usage
        ctx = _context(to)
        if conv.records:
            try:
                await conv.commit(to.req, resp, ctx)
            except DragomanError as e:  # not saved, so not acknowledged: the tokens
                meter.outcome = e.kind.value  # were spent all the same
                raise
        await send_json(to.send, to.dialect.render_response(resp, ctx),
                        extra=meter.headers() + conv.reply_headers)

    async def discard(self) -> None:
        return None

    def capture(self, span: Span) -> None:
        record_output(span, [{"role": "assistant", "parts": self.resp.content}])


class NeutralStream:
    """A stream of neutral events (its first already read), rendered as it goes."""

    __slots__ = ("events", "first")

    def __init__(self, events: AsyncIterator[StreamEvent], first: StreamEvent) -> None:
        self.events = events
        self.first = first

    async def serve(self, to: Reply) -> None:
        ctx = _context(to)
        req, conv = to.req, to.conv
        collector = Collector() if conv.records else None

        async def on_finish() -> None:
            assert collector is not None
            await conv.commit(req, collector.response(ctx.id, req.model, ctx.created), ctx)

        name, style = to.dialect.name, to.agents_events

        def frame_agent_event(ev: StreamEvent) -> bytes:
            # The framer is looked up per agent event (a dict lookup), not per stream: a
            # model that is no agent sends none, and ``agent_events`` is not on its path.
            return agent_framer(name, style)(ev)

        await stream_events(self.events, self.first, to.dialect.stream_renderer(ctx),
                            to.receive, to.send, collector,
                            on_finish if conv.records else None,
                            agent_frame=frame_agent_event, meter=to.meter,
                            headers=conv.reply_headers)

    async def discard(self) -> None:
        await aclose_events(self.events)

    def capture(self, span: Span) -> None:
        self.events = recording(span, self.events, self.first)


class ForwardedBody:
    """The upstream's whole body, as it came (the same-dialect pass-through)."""

    __slots__ = ("call", "raw")

    def __init__(self, call: Passthrough, raw: bytes) -> None:
        self.call = call
        self.raw = raw

    async def serve(self, to: Reply) -> None:
        meter = to.meter
        meter.passthrough = True
        meter.usage = self.call.usage
        await send_json(to.send, self.raw, extra=meter.headers())

    async def discard(self) -> None:
        return None

    def capture(self, span: Span) -> None:
        record_output(span, self.raw.decode("utf-8", "replace"))


class ForwardedStream:
    """The upstream's stream, relayed as bytes (its first chunk already read). After the
    first byte the pass-through ends a broken stream in-band itself. Not decoded for
    content capture: its completion is not recorded."""

    __slots__ = ("call", "chunks", "first")

    def __init__(self, call: Passthrough, chunks: RelayedChunks, first: bytes) -> None:
        self.call = call
        self.chunks = chunks
        self.first = first

    async def serve(self, to: Reply) -> None:
        meter, send, chunks, first = to.meter, to.send, self.chunks, self.first
        meter.passthrough = True

        async def pump() -> bool:
            meter.stream_started()
            try:
                await send({"type": "http.response.start", "status": 200,
                            "headers": _SSE_HEADERS})
                await send({"type": "http.response.body", "body": first, "more_body": True})
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return True
            finally:
                meter.stream_ended()
                await chunks.aclose()

        if await unless_client_leaves(pump(), to.receive) is None:
            meter.outcome = "client_closed"
        else:
            meter.outcome = self.call.outcome
        meter.usage = self.call.usage

    async def discard(self) -> None:
        await self.chunks.aclose()

    def capture(self, span: Span) -> None:
        return None


def _context(to: Reply) -> RenderContext:
    return RenderContext(id=new_id(to.dialect.id_prefix), model=to.req.model,
                         created=int(time.time()), request=to.req)


async def generate(gw: GatewayState, dialect: Dialect, principal: Principal, body: object,
                   scope: Scope, receive: Receive, send: Send) -> None:
    req = dialect.parse_request(body)
    access = scope.get(ACCESS)
    if access is not None:
        access.model = req.model
    validate_request(req)  # once for every dialect (core.validate)
    route = gw.model_choice.route(gw.models, principal, req)

    async with conversation(gw, dialect, principal, req, route, scope) as conv:
        meter = RequestMeter(gw.usage, principal, route, dialect, req, thread=conv.key,
                             metrics=gw.ops.live_metrics)
        if access is not None:
            access.meter = meter
        limiter = gw.limiter
        try:
            admission = ADMIT_ALL if limiter is None or (limiter.idle and not principal.limits) \
                else await limiter.admit(principal, route, req)
        except DragomanError as e:
            meter.failed(e, refused=True)
            await meter.finish()
            raise
        ticket: Ticket | None = None
        tracer = spans.TRACER  # None: tracing is off
        span = tracer.request(dialect.name, req, route.provider, scope["headers"]) \
            if tracer is not None else None
        token = tracer.enter(span) if tracer is not None and span is not None else None
        # Beside the request, never written into it: who asked, their thread (an agent's
        # workspace belongs to it), the client headers meant for the upstream.
        beta = header(scope, b"anthropic-beta")
        ctx = RequestContext(tenant=principal.tenant_id, subject=principal.subject,
                             thread=conv.key, span=span,
                             forward_headers={"anthropic-beta": beta} if beta else None)
        try:
            # Stored, chained or thread-recorded turns need the neutral events (and the
            # gateway's own ids); anything else may take the same-dialect fast path.
            fast_ok = not conv.needs_events and isinstance(body, dict)

            async def start(dep: Deployment) -> Answer:
                meter.attempt(dep)
                return await _open(dep, req, ctx, body if fast_ok else None)

            started = await unless_client_leaves(dispatch(gw.models, route, req, start),
                                                 receive)
            if started is None:
                meter.outcome = "client_closed"
                return  # the client left: the upstream call was cancelled (connection closed)
            ticket = started.ticket
            meter.served_by(started.deployment)
            if span is not None:
                span.answered(None, getattr(started.deployment.provider, "model", None))
                if span.captures_content:
                    started.value.capture(span)
            try:
                await started.value.serve(Reply(dialect, req, conv, meter, receive, send,
                                                gw.agents_events))
            finally:
                await started.value.discard()  # no-op once pumped to the end
        except ClientGone:
            meter.outcome = "client_closed"
            raise
        except DragomanError as e:
            meter.failed(e)
            raise
        finally:
            if ticket is not None:
                ticket.end(meter.outcome)
            usage = meter.usage
            if span is not None:
                span.answered(usage, None)
                tracer.leave(token)  # type: ignore[union-attr]
                span.end(meter.outcome)
            if admission is not ADMIT_ALL:  # (nothing to settle: no limit applied)
                await settle_quietly(admission, meter.cost(),
                                     usage.output_tokens if usage is not None else 0)
            await meter.finish()


async def _open(dep: Deployment, req: ChatRequest, ctx: RequestContext,
                body: object | None) -> Answer:
    """Start ``req`` on one deployment and wait for its first answer. Failures raise, so
    the router can still retry or fall back: nothing has reached the client yet."""
    provider = dep.provider
    # ``passthrough: false`` on the deployment forces translation; the provider knows
    # whether its dialect's rules let this request through as is.
    call = provider.forward(req, body, ctx) if isinstance(body, dict) and dep.passthrough \
        and isinstance(provider, HttpDialectProvider) else None
    if call is not None:
        if not call.streaming:
            return ForwardedBody(call, await call.complete())
        chunks = call.stream()
        try:
            first_chunk = await chunks.__anext__()
        except BaseException as e:
            await chunks.aclose()
            if isinstance(e, StopAsyncIteration):
                raise UpstreamError("upstream produced an empty stream") from None
            raise
        return ForwardedStream(call, chunks, first_chunk)
    if not req.stream:
        return NeutralResponse(await provider.complete(req, ctx))
    events, first = await open_first(provider, req, provider.capabilities(), ctx)
    return NeutralStream(events, first)


async def stream_events(events: AsyncIterator[StreamEvent], first: StreamEvent,
                        renderer: StreamRenderer,
                        receive: Receive, send: Send, collector: Collector | None = None,
                        on_finish: Callable[[], Awaitable[None]] | None = None, *,
                        agent_frame: Callable[[StreamEvent], bytes] = agent_frame,
                        meter: RequestMeter | None = None,
                        headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Pump provider events to the client as SSE, starting with ``first`` (already read:
    errors before it were the router's to retry). Errors from here on are rendered
    in-band. ``collector`` sees every event; ``on_finish`` runs when a
    successful ``Finish`` arrives, before its frames are written. A client that leaves
    cancels the pump, which closes the provider stream and with it the upstream request.
    Agent events (an orchestrator's steps and tool calls) bypass the dialect renderer and
    become named ``dragoman.*`` frames (``agent_frame``), interleaved in order.
    ``meter`` gets the last usage and the outcome (an in-band error's kind, or
    ``client_closed``). ``headers`` are added to the response's.
    """
    start_headers = _SSE_HEADERS + headers if headers else _SSE_HEADERS
    # A provider stream that knows its upstream reads (``ReadStream``) is pumped one read
    # at a time: its events rendered back to back and sent as one body chunk, the send
    # itself the backpressure. Any other stream comes one event at a time, and a writer
    # task coalesces what it renders between two of the writer's sends.
    next_read: Callable[[], Awaitable[list[StreamEvent]]]
    if isinstance(events, ReadStream):
        next_read, batched = events.next_read, True
        first_read: list[StreamEvent] = [first, *events.rest()]
    else:
        next_read, batched, first_read = _one_by_one(events), False, [first]

    # A run of text deltas (by far the most frequent events, and none of the pump's
    # business but their frames) is rendered in one call: ``feed_texts`` where the
    # renderer has it (bench/README.md, "A read's frames at once").
    feed = renderer.feed
    feed_texts: Callable[[list[StreamEvent]], bytes] = \
        getattr(renderer, "feed_texts", None) or (lambda deltas: b"".join(map(feed, deltas)))

    async def pump() -> bool:
        writer: BodyWriter | None = None
        sent_first = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": start_headers})
            # The first event's read goes out as every later one: rendered whole, in one
            # body chunk (one write). Only what is already in hand is joined to it (the
            # events parsed from the same upstream read), never what is still to come
            # (bench/README.md, "The first read in one write").
            batch = first_read
            parts = [renderer.start()]
            while True:
                terminal = False
                for cls, run in groupby(batch, type):
                    if cls is TextDelta:  # by far the most frequent: none of the below
                        deltas = list(run)
                        if collector is not None:
                            for ev in deltas:
                                collector.feed(ev)
                        parts.append(feed_texts(deltas))
                        continue
                    for ev in run:
                        if collector is not None and cls is not StreamError:
                            collector.feed(ev)
                        if cls is Finish:
                            if on_finish is not None:
                                # before the Finish frame: a turn that cannot be saved fails
                                try:
                                    await on_finish()
                                except DragomanError as e:
                                    ev = StreamError(error=e)
                            terminal = True
                        elif type(ev) is UsageUpdate and meter is not None:  # (narrows ev)
                            meter.usage = ev.usage
                        if type(ev) is StreamError:
                            terminal = True
                            if meter is not None:
                                meter.outcome = ev.error.kind.value
                        parts.append(agent_frame(ev) if cls in _AGENT_EVENT_TYPES else feed(ev))
                        if terminal:
                            break
                    if terminal:
                        break
                chunk = parts[0] if len(parts) == 1 else b"".join(parts)
                parts = []
                if chunk:
                    if batched or not sent_first:
                        if not sent_first:
                            sent_first = True
                            if meter is not None:
                                meter.stream_started()
                        # The last bytes end the body in the same send (one write).
                        await send({"type": "http.response.body", "body": chunk,
                                    "more_body": not terminal})
                        if terminal:
                            return True
                    else:
                        if writer is None:
                            writer = BodyWriter(send)
                        await writer.write(chunk)
                if terminal:
                    break
                try:
                    batch = await next_read()
                except StopAsyncIteration:
                    batch = [StreamError(error=UpstreamError("upstream stream ended early"))]
                except DragomanError as e:
                    batch = [StreamError(error=e)]
                except Exception:
                    log.exception("provider stream failed")
                    batch = [StreamError(error=UpstreamError("internal error while streaming"))]
            if writer is not None:
                await writer.close()
                writer = None
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        finally:
            if writer is not None:
                writer.abort()
            if sent_first and meter is not None:
                meter.stream_ended()
            await aclose_events(events)

    if await unless_client_leaves(pump(), receive) is None and meter is not None:
        meter.outcome = "client_closed"


def _one_by_one(events: AsyncIterator[StreamEvent]
                ) -> Callable[[], Awaitable[list[StreamEvent]]]:
    """``next_read`` for a stream that does not know its reads: one event per call."""
    anext = events.__anext__

    async def next_event() -> list[StreamEvent]:
        return [await anext()]

    return next_event
