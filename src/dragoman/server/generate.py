"""One handler for all three generation endpoints: parse in the client's dialect, resolve
the model, call the provider, render back in the client's dialect.

Streaming is end-to-end: each upstream event is rendered and written at once, and a client
that disconnects cancels the provider stream (which closes the upstream connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import msgspec

from ..auth import Principal
from ..core import (
    ChatResponse,
    Collector,
    DragomanError,
    Finish,
    Message,
    NotFound,
    StreamError,
    StreamEvent,
    UpstreamError,
    new_id,
)
from ..dialects import openai_responses
from ..dialects.base import Dialect, RenderContext, StreamRenderer
from ..sessions.memory import StoredResponse
from .gateway import Gateway
from .http import Receive, Scope, Send, header, send_json

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
    deployment = gw.models.resolve(req.model)
    beta = header(scope, b"anthropic-beta")
    if beta:
        req.forward_headers = {"anthropic-beta": beta}

    client_input = req.messages
    history: list[Message] = []
    if dialect.name == RESPONSES and req.previous_response_id:
        prev = await gw.responses.get(principal.tenant_id, req.previous_response_id)
        if prev is None:
            raise NotFound(f"Previous response with id '{req.previous_response_id[:100]}' "
                           "not found.", param="previous_response_id",
                           code="previous_response_not_found")
        history = prev.history
        req.messages = history + client_input

    ctx = RenderContext(id=new_id(dialect.id_prefix), model=req.model,
                        created=int(time.time()), request=req)
    store = dialect.name == RESPONSES and req.store is not False
    provider = deployment.provider

    async def persist(resp: ChatResponse) -> None:
        # Stored before the client is told the response is complete, so a follow-up
        # naming it can never arrive first.
        resp.id = ctx.id
        await gw.responses.put(StoredResponse(
            id=ctx.id, tenant=principal.tenant_id, created=ctx.created, model=req.model,
            request=msgspec.structs.replace(req, messages=client_input), response=resp,
            history=[*history, *client_input,
                     Message(role="assistant", content=resp.content)]))

    if not req.stream:
        resp = await unless_client_leaves(provider.complete(req), receive)
        if resp is None:
            return  # the client left: the upstream call was cancelled (connection closed)
        if store:
            await persist(resp)
        await send_json(send, dialect.render_response(resp, ctx))
        return

    collector = Collector() if store else None

    async def on_finish() -> None:
        assert collector is not None
        await persist(collector.response(ctx.id, req.model, ctx.created))

    await stream_events(provider.stream(req), dialect.stream_renderer(ctx), receive, send,
                        collector, on_finish if store else None)


async def stream_events(events: AsyncIterator[StreamEvent], renderer: StreamRenderer,
                        receive: Receive, send: Send, collector: Collector | None = None,
                        on_finish: Callable[[], Awaitable[None]] | None = None) -> None:
    """Pump provider events to the client as SSE.

    Errors before the first event propagate (the caller answers with an HTTP error); after
    it they are rendered in-band. ``collector`` sees every event; ``on_finish`` runs when a
    successful ``Finish`` arrives, before its frames are written. A client that leaves
    cancels the pump, which closes the provider stream and with it the upstream request.
    """
    try:
        first = await events.__anext__()
    except StopAsyncIteration:
        await _aclose(events)
        raise UpstreamError("upstream produced an empty stream") from None
    except BaseException:
        await _aclose(events)
        raise

    async def pump() -> None:
        feed = renderer.feed
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            ev: StreamEvent = first
            chunk = renderer.start() + feed(ev)
            while True:
                if collector is not None and not isinstance(ev, StreamError):
                    collector.feed(ev)
                terminal = isinstance(ev, (Finish, StreamError))
                if on_finish is not None and isinstance(ev, Finish):
                    await on_finish()
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
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
                chunk = feed(ev)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await _aclose(events)

    await unless_client_leaves(pump(), receive)


async def unless_client_leaves(work: Awaitable[T], receive: Receive) -> T | None:
    """Await ``work``; if the client disconnects first, cancel it and return None.
    Cancelling a provider call closes its upstream connection, which is what stops the
    upstream from generating for nobody."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watch.cancel()
        raise
    if task.done():
        watch.cancel()
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return None


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
