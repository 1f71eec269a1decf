"""The request context rides beside the neutral request: a provider sees who asked (tenant,
subject), the thread and the headers meant for the upstream in ``ctx``, the parsed request
is never written into, and a provider of the one-argument protocol keeps working.
Driven over a real socket against an in-process gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

import dragoman
from dragoman.auth import Principal, StaticTokens
from dragoman.core import (
    NO_CONTEXT,
    ChatRequest,
    ChatResponse,
    RequestContext,
    StreamEvent,
    Text,
    TextDelta,
    acollect,
    events_of,
)
from dragoman.providers import EchoProvider
from dragoman.providers.legacy import ContextFree, with_context
from dragoman.providers.python import PythonProvider
from tests.gateway_proc import free_port

KEY = "sk-team-a"


class OldStyle:
    """A provider written for the protocol before the context (``stream(self, req)``)."""

    name = "old-style"

    def capabilities(self) -> dragoman.core.Capabilities:
        return dragoman.core.Capabilities()

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        return None

    async def complete(self, req: ChatRequest) -> ChatResponse:
        return ChatResponse(id="old-1", model="old", content=[Text(text="old style works")])

    async def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        for ev in events_of(await self.complete(req)):
            yield ev


def test_with_context_wraps_only_one_argument_providers() -> None:
    echo = EchoProvider()
    assert with_context(echo) is echo  # the built-ins take the context: no proxy
    old = with_context(OldStyle())  # type: ignore[arg-type]
    assert isinstance(old, ContextFree) and old.name == "old-style"
    assert with_context(old) is old


async def test_the_context_reaches_the_provider_and_the_request_stays_as_parsed() -> None:
    seen: list[tuple[ChatRequest, RequestContext]] = []

    def who(req: ChatRequest, ctx: RequestContext) -> str:
        seen.append((req, ctx))
        return f"tenant={ctx.tenant} subject={ctx.subject} thread={ctx.thread}"

    table = dragoman.ModelTable([
        dragoman.Deployment("who", PythonProvider(who)),
        dragoman.Deployment("old", OldStyle()),  # type: ignore[arg-type]
    ])
    auth = StaticTokens({KEY: Principal(tenant_id="team-a", subject="alice")})
    gw = dragoman.Gateway(table, auth=auth)
    port = free_port()
    task = asyncio.create_task(dragoman.serve(gw, port=port))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    await http.get("/healthz")
                    break
                await asyncio.sleep(0.05)
            headers = {"authorization": f"Bearer {KEY}", "x-dragoman-thread-key": "t-1",
                       "anthropic-beta": "feature-x"}
            r = await http.post("/v1/chat/completions", headers=headers, json={
                "model": "who", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == \
                "tenant=team-a subject=alice thread=t-1"
            r = await http.post("/v1/chat/completions", headers=headers, json={
                "model": "old", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == "old style works"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task
    ((req, ctx),) = seen
    assert ctx.forward_headers == {"anthropic-beta": "feature-x"}
    # nothing of the caller is in the parsed request
    assert not any(hasattr(req, f) for f in ("tenant", "thread", "forward_headers"))


async def test_in_process_calls_get_the_anonymous_context() -> None:
    got: list[RequestContext] = []

    async def words(req: ChatRequest, ctx: RequestContext) -> AsyncIterator[str]:
        got.append(ctx)
        yield "a"

    p = PythonProvider(stream=words)
    resp = await acollect(p.stream(ChatRequest(messages=[])), "x", "m")
    assert resp.text() == "a" and got == [NO_CONTEXT] and NO_CONTEXT.tenant == ""
    events = [e async for e in with_context(OldStyle()).stream(ChatRequest(), NO_CONTEXT)]  # type: ignore[arg-type]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["old style works"]
