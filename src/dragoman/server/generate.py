"""One handler for all three generation endpoints: parse in the client's dialect, resolve
the model, call the provider, render back in the client's dialect.

Streaming is end-to-end: each upstream event is rendered and written at once, and a client
that disconnects cancels the provider stream (which closes the upstream connection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from ..auth import Principal, require_model
from ..core import (
    Collector,
    DragomanError,
    Finish,
    StreamError,
    StreamEvent,
    UpstreamError,
    UsageUpdate,
    new_id,
)
from ..dialects import openai_responses
from ..dialects.base import Dialect, RenderContext, StreamRenderer
from ..providers.passthrough import Passthrough
from ..router.dispatch import check_capabilities, open_stream, passthrough
from .accounting import RequestMeter
from .agent_events import AGENT_EVENTS, agent_frame, agent_framer
from .conversation import conversation
from .gateway import Gateway
from .http import Receive, Scope, Send, header, send_json
from .writer import BodyWriter

log = logging.getLogger("dragoman.server")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

RESPONSES = openai_responses.DIALECT.name

T = TypeVar("T")


async def generate(gw: Gateway, dialect: Dialect, principal: Principal, body: object,
                   scope: Scope, receive: Receive, send: Send) -> None:
    req = dialect.parse_request(body)
    require_model(principal, req.model)
    deployment = gw.models.resolve(req.model)
    beta = header(scope, b"anthropic-beta")
    if beta:
        req.forward_headers = {"anthropic-beta": beta}
    req.tenant = principal.tenant_id  # scopes what an agent keeps between requests

    async with conversation(gw, dialect, principal, req, deployment, scope) as conv:
        ctx = RenderContext(id=new_id(dialect.id_prefix), model=req.model,
                            created=int(time.time()), request=req)
        provider = deployment.provider
        caps = provider.capabilities()
        check_capabilities(req, caps)
        meter = RequestMeter(gw.usage, principal, deployment, dialect, req, caps)

        # Stored, chained or thread-recorded turns need the neutral events (and the
        # gateway's own ids).
        fast = None if conv.needs_events else passthrough(deployment, req, body, caps)
        if fast is not None:
            meter.passthrough = True
            await forward(fast, meter, receive, send)
            return

        if not req.stream:
            resp = await meter.run(unless_client_leaves(provider.complete(req), receive))
            if resp is None:
                meter.outcome = "client_closed"
                await meter.finish()
                return  # the client left: the upstream call was cancelled (connection closed)
            meter.usage = resp.usage
            if conv.records:
                try:
                    await conv.commit(req, resp, ctx)
                except DragomanError as e:  # not saved, so not acknowledged: the tokens
                    meter.outcome = e.kind.value  # were spent all the same
                    await meter.finish()
                    raise
            await send_json(send, dialect.render_response(resp, ctx), extra=meter.headers())
            await meter.finish()
            return

        collector = Collector() if conv.records else None

        async def on_finish() -> None:
            assert collector is not None
            await conv.commit(req, collector.response(ctx.id, req.model, ctx.created), ctx)

        await meter.run(stream_events(open_stream(provider, req, caps),
                                      dialect.stream_renderer(ctx), receive, send,
                                      collector, on_finish if conv.records else None,
                                      agent_frame=agent_framer(dialect.name), meter=meter))
        await meter.finish()


async def stream_events(events: AsyncIterator[StreamEvent], renderer: StreamRenderer,
                        receive: Receive, send: Send, collector: Collector | None = None,
                        on_finish: Callable[[], Awaitable[None]] | None = None, *,
                        agent_frame: Callable[[StreamEvent], bytes] = agent_frame,
                        meter: RequestMeter | None = None) -> None:
    """Pump provider events to the client as SSE.

    Errors before the first event propagate (the caller answers with an HTTP error); after
    it they are rendered in-band. ``collector`` sees every event; ``on_finish`` runs when a
    successful ``Finish`` arrives, before its frames are written. A client that leaves
    cancels the pump, which closes the provider stream and with it the upstream request.
    Agent events (an orchestrator's steps and tool calls) bypass the dialect renderer and
    become named ``dragoman.*`` frames (``agent_frame``), interleaved in order.
    ``meter`` gets the last usage and the outcome (an in-band error's kind, or
    ``client_closed``).
    """
    try:
        first = await events.__anext__()
    except StopAsyncIteration:
        await _aclose(events)
        raise UpstreamError("upstream produced an empty stream") from None
    except BaseException:
        await _aclose(events)
        raise

    async def pump() -> bool:
        feed = renderer.feed
        writer: BodyWriter | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            writer = BodyWriter(send)
            ev: StreamEvent = first
            head = renderer.start()
            while True:
                if collector is not None and not isinstance(ev, StreamError):
                    collector.feed(ev)
                if on_finish is not None and isinstance(ev, Finish):
                    try:  # before the Finish frame: a turn that cannot be saved fails
                        await on_finish()
                    except DragomanError as e:
                        ev = StreamError(error=e)
                chunk = head + (agent_frame(ev) if isinstance(ev, AGENT_EVENTS) else feed(ev))
                head = b""
                terminal = isinstance(ev, (Finish, StreamError))
                if meter is not None:
                    if type(ev) is UsageUpdate:
                        meter.usage = ev.usage
                    elif type(ev) is StreamError:
                        meter.outcome = ev.error.kind.value
                if chunk:
                    await writer.write(chunk)
                if terminal:
                    break
                try:
                    ev = await events.__anext__()
                except StopAsyncIteration:
                    ev = StreamError(error=UpstreamError("upstream stream ended early"))
                except DragomanError as e:
                    ev = StreamError(error=e)
                except Exception:
                    log.exception("provider stream failed")
                    ev = StreamError(error=UpstreamError("internal error while streaming"))
            await writer.close()
            writer = None
            return True
        finally:
            if writer is not None:
                writer.abort()
            await _aclose(events)

    if await unless_client_leaves(pump(), receive) is None and meter is not None:
        meter.outcome = "client_closed"


async def unless_client_leaves(work: Awaitable[T], receive: Receive) -> T | None:
    """Await ``work`` in this task; if the client disconnects first, cancel it and return
    None. Cancelling a provider call closes its upstream connection, which is what stops
    the upstream from generating for nobody.

    One watcher task per request (not a task for the work plus ``asyncio.wait``): the
    watcher cancels this very task when ``http.disconnect`` arrives."""
    current = asyncio.current_task()
    assert current is not None
    state = {"finished": False, "gone": False}

    def on_disconnect(watcher: asyncio.Future[None]) -> None:
        # A callback queued just before the work finished must not cancel what follows.
        if not state["finished"] and not watcher.cancelled() and watcher.exception() is None:
            state["gone"] = True
            current.cancel()

    watch = asyncio.ensure_future(_wait_disconnect(receive))
    watch.add_done_callback(on_disconnect)
    try:
        return await work
    except asyncio.CancelledError:
        if not state["gone"]:
            raise
        current.uncancel()  # the cancellation was ours: the request simply ends
        return None
    finally:
        state["finished"] = True
        watch.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


async def _aclose(events: AsyncIterator[StreamEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("closing provider stream failed", exc_info=True)


async def forward(fast: Passthrough, meter: RequestMeter, receive: Receive, send: Send) -> None:
    """The same-dialect fast path: the upstream's answer goes to the client as it came.
    Errors before the first byte propagate (answered in the client's envelope); after it
    the pass-through ends the stream in-band itself."""
    if not fast.streaming:
        raw = await meter.run(unless_client_leaves(fast.complete(), receive))
        if raw is None:
            meter.outcome = "client_closed"
        else:
            meter.usage = fast.usage
            await send_json(send, raw, extra=meter.headers())
        await meter.finish()
        return
    chunks = fast.stream()
    try:
        first = await meter.run(chunks.__anext__())
    except StopAsyncIteration:
        raise UpstreamError("upstream produced an empty stream") from None
    except BaseException:
        await chunks.aclose()
        raise

    async def pump() -> bool:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        finally:
            await chunks.aclose()

    if await unless_client_leaves(pump(), receive) is None:
        meter.outcome = "client_closed"
    else:
        meter.outcome = fast.outcome
    meter.usage = fast.usage
    await meter.finish()
