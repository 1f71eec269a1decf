"""Python upstream: your own function answers, in-process.

Config names the callables by import path::

    - name: my-bot
      provider: python
      callable: mypackage.bots:answer            # complete: (ChatRequest) -> ChatResponse | str
      stream_callable: mypackage.bots:answer_stream   # optional: (ChatRequest) -> async iterator

or build one in Python: ``PythonProvider(complete=answer, stream=answer_stream)``.

Each callable takes the ``ChatRequest``, and — when it has a second parameter — the
``RequestContext`` (who asked: ``ctx.tenant``, ``ctx.thread``…).

``complete`` may be a plain or an ``async`` function returning a ``ChatResponse`` or just
the answer text; a plain function runs in a worker thread, so it may block. ``stream`` may
be an async generator (or any function returning an async or plain iterable; a plain one
is consumed on the event loop, so it should not block) yielding ``core`` stream events,
``str`` text deltas, or a ``Usage``; ``Finish`` is added if the generator just ends. With
only one of the two, the other is derived: a stream is the whole answer replayed, a
complete answer is the stream collected.

An exception from user code becomes an error the client sees in its own dialect: a
``DragomanError`` (``RateLimited``, ``InvalidRequest``…) passes through as it is; anything
else is logged with its traceback and reported as an upstream error with a fixed message,
so nothing from inside user code reaches a client.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from ..core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    ChatResponse,
    DragomanError,
    Finish,
    RequestContext,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    UpstreamError,
    Usage,
    UsageUpdate,
    acollect,
    events_of,
    new_id,
)
from .legacy import takes_context
from .registry import OptionsError, ProviderSpec

log = logging.getLogger("dragoman.providers.python")

_EVENT_TYPES = typing.get_args(StreamEvent)
_TERMINAL = (Finish, StreamError)

CompleteFn = Callable[[ChatRequest], Any] | Callable[[ChatRequest, RequestContext], Any]
StreamFn = Callable[[ChatRequest], Any] | Callable[[ChatRequest, RequestContext], Any]


class PythonOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    callable: str | None = None
    stream_callable: str | None = None


def load_callable(path: str, where: str) -> Callable[..., Any]:
    """``package.module:function`` (or ``module:Object.method``) → the callable."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise OptionsError(f"expected 'package.module:function', got {path!r} - at `{where}`")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise OptionsError(f"cannot import module {module_name!r} ({e.msg}) - at `{where}`"
                           ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise OptionsError(f"{module_name!r} has no attribute {attr!r} - at `{where}`"
                               ) from None
    if not callable(obj):
        raise OptionsError(f"{path!r} is not callable - at `{where}`")
    return typing.cast(Callable[..., Any], obj)


class PythonProvider:
    def __init__(self, complete: CompleteFn | None = None, stream: StreamFn | None = None, *,
                 name: str = "python", model: str | None = None,
                 capabilities: Capabilities | None = None) -> None:
        if complete is None and stream is None:
            raise ValueError("PythonProvider needs a complete or a stream callable (or both)")
        self.name = name
        self.model = model
        self._complete = complete
        self._stream = stream
        # Which callables take the request context as a second argument (read once).
        self._complete_ctx = complete is not None and takes_context(complete, default=False)
        self._stream_ctx = stream is not None and takes_context(stream, default=False)
        caps = capabilities or Capabilities()
        # Only a stream callable streams token by token; the server synthesizes the rest.
        self._caps = msgspec.structs.replace(caps, streaming=caps.streaming and stream is not None)

    def __repr__(self) -> str:
        return f"PythonProvider(name={self.name!r})"

    def capabilities(self) -> Capabilities:
        return self._caps

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        return None

    def _failed(self, what: str) -> UpstreamError:
        log.exception("python provider %r: %s raised", self.name, what)
        return UpstreamError(f"The model '{self.name}' failed while answering.")

    def _response(self, out: Any, req: ChatRequest) -> ChatResponse:
        model = self.model or req.model
        if isinstance(out, ChatResponse):
            if not out.id:
                out.id = new_id("py_")
            return out
        if isinstance(out, str):
            return ChatResponse(id=new_id("py_"), model=model,
                                content=[Text(text=out)] if out else [])
        log.error("python provider %r: complete returned %s, expected ChatResponse or str",
                  self.name, type(out).__name__)
        raise UpstreamError(f"The model '{self.name}' returned an answer of the wrong type.")

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        if self._complete is None:
            return await acollect(self.stream(req, ctx), new_id("py_"), self.model or req.model)
        args: tuple[Any, ...] = (req, ctx) if self._complete_ctx else (req,)
        try:
            if inspect.iscoroutinefunction(self._complete):
                out = await self._complete(*args)
            else:
                # A plain function may block (I/O, CPU): a worker thread keeps it from
                # stalling every other request on the event loop.
                out = await asyncio.to_thread(self._complete, *args)
                if inspect.isawaitable(out):
                    out = await out
        except DragomanError:
            raise
        except Exception:
            raise self._failed("complete") from None
        return self._response(out, req)

    async def stream(self, req: ChatRequest,
                     ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
        if self._stream is None:
            for ev in events_of(await self.complete(req, ctx)):
                yield ev
            return
        started = False
        source: Any = None
        try:
            source = self._stream(req, ctx) if self._stream_ctx else self._stream(req)  # type: ignore[call-arg]
            if inspect.isawaitable(source):
                source = await source
            if hasattr(source, "__aiter__"):
                async for item in source:
                    ev = self._event(item)
                    yield ev
                    started = True
                    if isinstance(ev, _TERMINAL):
                        return
            else:
                for item in source:
                    ev = self._event(item)
                    yield ev
                    started = True
                    if isinstance(ev, _TERMINAL):
                        return
        except DragomanError as e:
            if not started:
                raise
            yield StreamError(error=e)
            return
        except Exception:
            err = self._failed("stream")
            if not started:
                raise err from None
            yield StreamError(error=err)
            return
        finally:
            aclose = getattr(source, "aclose", None) or getattr(source, "close", None)
            if aclose is not None:
                res = aclose()
                if inspect.isawaitable(res):
                    await res
        yield Finish()

    def _event(self, item: Any) -> StreamEvent:
        if isinstance(item, str):
            return TextDelta(text=item)
        if isinstance(item, Usage):
            return UsageUpdate(usage=item)
        if isinstance(item, _EVENT_TYPES):
            return typing.cast(StreamEvent, item)
        log.error("python provider %r: stream yielded %s, expected a stream event or str",
                  self.name, type(item).__name__)
        raise UpstreamError(f"The model '{self.name}' streamed an event of the wrong type.")


def from_spec(spec: ProviderSpec) -> PythonProvider:
    o = spec.parse_options(PythonOptions)
    if not o.callable and not o.stream_callable:
        raise OptionsError("the python provider needs `callable` (and/or `stream_callable`)"
                           " - at `$`")
    complete = load_callable(o.callable, "$.callable") if o.callable else None
    stream = load_callable(o.stream_callable, "$.stream_callable") if o.stream_callable \
        else None
    return PythonProvider(complete, stream, name=spec.name, model=spec.model,
                          capabilities=spec.capabilities)
