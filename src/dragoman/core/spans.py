"""The hooks through which the layers below the server report spans when tracing is on.

``TRACER`` is None unless ``dragoman.observe.tracing`` installed one (the ``tracing``
config section, or the standard ``OTEL_*`` variables). Every hook site reads it once and
tests it for None, so with tracing off a request pays a handful of instructions per site
and allocates nothing. The protocol speaks the gateway's terms (a routing attempt, an
upstream call, an agent step, a tool call); ``observe.tracing`` maps them onto
OpenTelemetry spans and the GenAI semantic conventions, so no layer here imports
OpenTelemetry (an optional extra).

Which span is the parent of a new one follows the running task (a context variable kept
by the tracer): ``enter``/``leave`` make a span the parent of what starts in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .request import ChatRequest
    from .response import Usage

AttributeValue = str | bool | int | float


class Span(Protocol):
    """One open span. ``end`` is idempotent; ``outcome`` as ``Ticket.end`` takes it
    (None or ``"ok"`` for success, an error kind, ``"client_closed"``)."""

    def set(self, key: str, value: AttributeValue) -> None: ...

    def content(self, key: str, value: object) -> None:
        """A prompt, completion or tool payload: recorded (as JSON) only when the operator
        opted in (``tracing.capture_content``)."""
        ...

    def end(self, outcome: object = None) -> None: ...


class RequestSpan(Span, Protocol):
    @property
    def captures_content(self) -> bool:
        """The operator opted in to recording prompts and completions."""
        ...

    def answered(self, usage: Usage | None, model: str | None) -> None:
        """What the request used, and the model that answered it."""
        ...


class Tracer(Protocol):
    def request(self, dialect: str, req: ChatRequest, provider: object,
                headers: Iterable[tuple[bytes, bytes]]) -> RequestSpan:
        """A client's generation request (continuing the client's ``traceparent`` from
        ``headers``); ``provider``: the route's (a model's or an agent's)."""
        ...

    def attempt(self, route: str, deployment: str, provider: object, n: int) -> Span:
        """A routing attempt: ``provider`` tried for ``route`` (``n``: 1 for the first)."""
        ...

    def upstream(self, method: str, url: str, headers: dict[str, str]) -> Span:
        """An HTTP call to an upstream; adds the W3C ``traceparent`` to ``headers``."""
        ...

    def agent_step(self, agent: str, index: int) -> Span:
        """One model turn of an agent's loop (made the parent by ``enter``)."""
        ...

    def tool_call(self, name: str, call_id: str | None, arguments: object) -> Span:
        """One tool run by an agent."""
        ...

    def enter(self, span: Span) -> object:
        """Make ``span`` the parent of spans started until ``leave(token)``."""
        ...

    def leave(self, token: object) -> None: ...


#: The installed tracer, or None (tracing off).
TRACER: Tracer | None = None


class current:  # lower case: it reads as a statement, ``with spans.current(span):``
    """Make ``span`` (None: tracing is off, nothing happens) the parent of the spans
    started inside the block, and end it on the way out (with the error's kind, if one
    escaped). Usable with ``with`` and ``async with``."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span | None) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> Span | None:
        if self._span is not None and TRACER is not None:
            self._token = TRACER.enter(self._span)
        return self._span

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        span = self._span
        if span is None:
            return
        if self._token is not None and TRACER is not None:
            TRACER.leave(self._token)
        if exc is None:
            span.end()
        elif isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
            span.end("client_closed")
        else:
            span.end(getattr(exc, "kind", None) or type(exc).__name__)

    async def __aenter__(self) -> Span | None:
        return self.__enter__()

    async def __aexit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        self.__exit__(typ, exc, tb)
