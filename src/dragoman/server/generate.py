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
from collections.abc import AsyncIterator, Awaitable

import msgspec

from ..core import (
    ChatRequest,
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
from ..dialects.base import Dialect, RenderContext
from ..sessions.memory import StoredResponse
from .gateway import Gateway, Principal
from .http import Receive, Scope, Send, header, send_json

log = logging.getLogger("dragoman.server")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

RESPONSES = openai_responses.DIALECT.name


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

    if not req.stream:
        resp = await _complete_unless_gone(provider.complete(req), receive)
        if resp is None:
            return  # the client left: the upstream call was cancelled (connection closed)
        await send_json(send, dialect.render_response(resp, ctx))
        if store:
            await _store(gw, principal, ctx, req, client_input, history, resp)
        return

    collector = Collector() if store else None
    events = provider.stream(req)
    finished = await stream_events(events, dialect.stream_renderer(ctx), collector,
                                   receive, send)
    if collector is not None and finished:
        resp = collector.response(ctx.id, req.model, ctx.created)
        await _store(gw, principal, ctx, req, client_input, history, resp)


async def _store(gw: Gateway, principal: Principal, ctx: RenderContext, req: ChatRequest,
                 client_input: list[Message], history: list[Message],
                 resp: ChatResponse) -> None:
    resp.id = ctx.id
    own_request = msgspec.structs.replace(req, messages=client_input)
    chain = [*history, *client_input, Message(role="assistant", content=resp.content)]
    await gw.responses.put(StoredResponse(
        id=ctx.id, tenant=principal.tenant_id, created=ctx.created, model=req.model,
        request=own_request, response=resp, history=chain))


async def stream_events(events: AsyncIterator[StreamEvent], renderer: object,
                        collector: Collector | None, receive: Receive, send: Send) -> bool:
    """Pump provider events to the client as SSE. Errors before the first event propagate
    (the caller answers with an HTTP error); after it they are rendered in-band. Returns
    True when the stream reached its terminal event."""
    feed = renderer.feed  # type: ignore[attr-defined]
    try:
        first = await events.__anext__()
    except StopAsyncIteration:
        await _aclose(events)
        raise UpstreamError("upstream produced an empty stream") from None
    except BaseException:
        await _aclose(events)
        raise

    async def pump() -> bool:
        terminal = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            ev: StreamEvent = first
            chunk = renderer.start() + feed(ev)  # type: ignore[attr-defined]
            while True:
                if collector is not None and not isinstance(ev, StreamError):
                    collector.feed(ev)
                if isinstance(ev, (Finish, StreamError)):
                    terminal = True
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
        return terminal and not isinstance(ev, StreamError)

    pump_task = asyncio.ensure_future(pump())
    watch_task = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        done, _ = await asyncio.wait({pump_task, watch_task},
                                     return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        pump_task.cancel()
        watch_task.cancel()
        raise
    if pump_task in done:
        watch_task.cancel()
        return pump_task.result()
    # The client left: stop generating (the provider's finally closes the upstream).
    pump_task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await pump_task
    return False


async def _complete_unless_gone(call: Awaitable[ChatResponse],
                                receive: Receive) -> ChatResponse | None:
    """Await a non-streamed upstream call, cancelling it if the client disconnects first
    (cancelling closes the upstream connection, which stops the generation)."""
    task = asyncio.ensure_future(call)
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
