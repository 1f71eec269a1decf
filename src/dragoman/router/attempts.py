"""One request's way through a route: pick a deployment, start it, and on a failure that
is worth it retry (after a back-off), try another deployment, or move on to a fallback.

Only deployments whose ``Capabilities`` take the request are tried (``capable``: a
request none of them can take is refused with a 400 naming the problem, from
``check_capabilities``). Everything here happens before a byte reaches the client:
``start`` is the caller's "open the upstream and get its first answer" (a whole response,
or a stream's first event), so a failure inside it can still be retried. Once
``dispatch`` returns, the request is committed to that deployment; later failures are the
stream's own.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..core import (
    Capabilities,
    ChatRequest,
    CircuitOpen,
    DragomanError,
    ErrorKind,
    Image,
    InvalidRequest,
    ToolResult,
    spans,
)
from .balance import pick
from .health import BreakerState, Ticket
from .table import RETRYABLE, Deployment, ModelTable, RetryPolicy, Route

T = TypeVar("T")

_RNG = random.Random()


@dataclass(slots=True)
class Started(Generic[T]):
    """The deployment that took the request, what ``start`` returned, and the ticket the
    caller ends (``ticket.end(outcome)``) when the request is over."""

    deployment: Deployment
    value: T
    ticket: Ticket


def backoff_delay(attempt: int, policy: RetryPolicy, retry_after: float | None,
                  rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: exponential with "equal jitter" (half fixed,
    half random, so retries of many requests spread out), never below ``retry_after``."""
    cap = min(policy.max_backoff, policy.backoff * (2 ** max(0, attempt - 1)))
    r = rng or _RNG
    delay = cap / 2 + r.random() * cap / 2
    return max(delay, retry_after or 0.0)


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


def capable(route: Route, req: ChatRequest) -> Sequence[Deployment]:
    """The route's deployments whose capabilities take this request; when none does, the
    first one's refusal (a 400 naming the problem) is raised."""
    deployments = route.deployments
    if len(deployments) == 1:
        check_capabilities(req, deployments[0].provider.capabilities())
        return deployments
    ok = []
    first_error: DragomanError | None = None
    for d in deployments:
        try:
            check_capabilities(req, d.provider.capabilities())
        except DragomanError as e:
            first_error = first_error or e
            continue
        ok.append(d)
    if not ok:
        assert first_error is not None
        raise first_error
    return ok


async def dispatch(table: ModelTable, route: Route, req: ChatRequest,
                   start: Callable[[Deployment], Awaitable[T]]) -> Started[T]:
    """Run ``start`` on a deployment of ``route`` (or of its fallbacks) until one answers.

    Raises the last error when every option is used up; ``CircuitOpen`` when no
    deployment was even available. A request the route's own models cannot take (a 400
    from ``capable``) is refused, not sent to a fallback; a fallback that cannot take it
    is skipped."""
    on = route.policy.fallback_on
    try:
        return await _on_route(route, capable(route, req), start)
    except DragomanError as e:
        if not route.policy.fallbacks or e.kind not in on:
            raise
        err = e
    # After a context_length refusal only a larger context can help.
    need_context = route.max_context_tokens if err.kind is ErrorKind.CONTEXT_LENGTH else 0
    for r in table.fallbacks(route):
        if err.kind not in on:
            raise err
        if need_context and r.max_context_tokens <= need_context:
            continue
        try:
            candidates = capable(r, req)
        except DragomanError:
            continue
        try:
            return await _on_route(r, candidates, start)
        except DragomanError as e:
            err = e
            if e.kind is ErrorKind.CONTEXT_LENGTH:
                need_context = max(need_context, r.max_context_tokens)
    raise err


async def _on_route(route: Route, candidates: Sequence[Deployment],
                    start: Callable[[Deployment], Awaitable[T]]) -> Started[T]:
    """Every deployment whose breaker lets it through gets one attempt per round (those
    not cooling down after an upstream 429 first); when a round has failed, the next one
    starts after a back-off, ``retries`` times at most."""
    policy = route.policy.retry
    tried: set[int] = set()
    rounds = 0
    attempts = 0
    last: DragomanError | None = None
    while True:
        now = time.monotonic()
        # (one deployment, the common case, and a first round: no list is filtered)
        available: Sequence[Deployment]
        if len(candidates) == 1:
            available = candidates if candidates[0].health.breaker.available(now) else ()
        else:
            available = [d for d in candidates if d.health.breaker.available(now)]
        if not available:
            if last is not None:
                raise last
            raise CircuitOpen(f"No deployment of '{route.name}' is available right now "
                              "(circuit open).", retry_after=_until_half_open(candidates, now))
        untried = [d for d in available if id(d) not in tried] if tried else available
        if not untried:
            assert last is not None
            if rounds >= policy.retries or (last.retry_after is not None
                                            and last.retry_after > policy.max_retry_after):
                raise last
            rounds += 1
            tried.clear()
            await asyncio.sleep(backoff_delay(rounds, policy, last.retry_after))
            continue
        if len(untried) == 1:
            dep = untried[0]
        else:
            ready = [d for d in untried if d.health.cool_until <= now] or untried
            dep = ready[0] if len(ready) == 1 else pick(route.policy.balance, ready)
        dep.health.breaker.admit(now)  # available, so admitted (an expired open: a probe)
        ticket = Ticket(dep.health)
        attempts += 1
        tracer = spans.TRACER
        token = None
        if tracer is not None:
            # The attempt's span is the parent of the upstream call while it opens, and
            # ends with the ticket (for the attempt that answers: when the request ends).
            ticket.span = tracer.attempt(route.name, dep.label or dep.name, dep.provider,
                                         attempts)
            token = tracer.enter(ticket.span)
        try:
            value = await start(dep)
        except DragomanError as e:
            ticket.end(e.kind)
            last = e
            if e.kind not in RETRYABLE:
                raise
            if e.retry_after:
                dep.health.cool_until = time.monotonic() + e.retry_after
            tried.add(id(dep))
            continue
        except BaseException:
            ticket.end("client_closed")
            raise
        finally:
            if token is not None:
                tracer.leave(token)  # type: ignore[union-attr]
        ticket.answered()
        return Started(dep, value, ticket)


def _until_half_open(candidates: Sequence[Deployment], now: float) -> float | None:
    """Seconds until the first open breaker lets a probe through."""
    waits = [d.health.breaker.opened_until - now for d in candidates
             if d.health.breaker.state is BreakerState.OPEN]
    return max(0.0, min(waits)) if waits else None
