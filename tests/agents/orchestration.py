"""Helpers for the orchestrator tests: a scripted upstream's models as providers, an
orchestrator served by ``serve_openai`` in the test's event loop, and a streamed request
read frame by frame (raw SSE, so the named events can be checked in order)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

import dragoman
from dragoman.agents.client import AgentEvent, parse_event
from dragoman.providers import Anthropic, OpenAIChat
from dragoman.providers.base import LlmProvider
from tests.fakes.scripted import KEY, ScriptedUpstream
from tests.gateway_proc import free_port


def model(fake: ScriptedUpstream, name: str) -> OpenAIChat:
    """The scripted upstream's ``name`` as a provider (``name`` is also its model id)."""
    return OpenAIChat(model=name, base_url=fake.url + "/v1", api_key=KEY, name=name)


def claude_model(fake: ScriptedUpstream, name: str) -> Anthropic:
    """The same over the Anthropic Messages wire."""
    return Anthropic(model=name, base_url=fake.url, api_key=KEY, name=name)


@contextlib.asynccontextmanager
async def served(orch: LlmProvider, **kw: Any) -> AsyncIterator[str]:
    """``orch`` served by ``dragoman.serve_openai`` on a free port (no auth)."""
    port = free_port()
    task = asyncio.create_task(dragoman.serve_openai(orch, bind=f"127.0.0.1:{port}", **kw))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as c:
        for _ in range(300):
            try:
                if (await c.get(base + "/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.02)
    try:
        yield base
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task


BODIES = {
    "chat": ("/v1/chat/completions", lambda model, user: {
        "model": model, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": user}]}),
    "responses": ("/v1/responses", lambda model, user: {
        "model": model, "stream": True, "input": user}),
    "messages": ("/v1/messages", lambda model, user: {
        "model": model, "stream": True, "max_tokens": 1000,
        "messages": [{"role": "user", "content": user}]}),
}


@dataclass
class Streamed:
    """A streamed answer: every SSE frame, the agent events, the answer's text."""

    frames: list[tuple[str | None, str]]
    events: list[AgentEvent]
    text: str
    usage: dict[str, Any] | None


def _text_and_usage(ingress: str, frames: list[tuple[str | None, str]]
                    ) -> tuple[str, dict[str, Any] | None]:
    text, usage = [], None
    for name, data in frames:
        if data == "[DONE]" or (name or "").startswith(("dragoman.", "tako.")):
            continue
        obj = json.loads(data)
        if ingress == "chat":
            for ch in obj.get("choices", []):
                text.append(ch.get("delta", {}).get("content") or "")
            usage = obj.get("usage") or usage
        elif ingress == "responses":
            if obj.get("type") == "response.output_text.delta":
                text.append(obj["delta"])
            if obj.get("type") == "response.completed":
                usage = obj["response"]["usage"]
        else:
            if obj.get("type") == "content_block_delta" and obj["delta"].get("type") == \
                    "text_delta":
                text.append(obj["delta"]["text"])
            if obj.get("type") == "message_delta":
                usage = obj.get("usage")
    return "".join(text), usage


async def stream(base: str, user: str, *, ingress: str = "chat", model: str = "orch",
                 timeout: float = 30) -> Streamed:
    path, make = BODIES[ingress]
    frames: list[tuple[str | None, str]] = []
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as c, \
            c.stream("POST", path, json=make(model, user),
                     headers={"anthropic-version": "2023-06-01"}) as r:
        assert r.status_code == 200, await r.aread()
        from dragoman.agents.client import aiter_sse
        async for frame in aiter_sse(r):
            frames.append(frame)
    events = [parse_event(n, d) for n, d in frames
              if n is not None and n.startswith(("dragoman.", "tako."))]
    text, usage = _text_and_usage(ingress, frames)
    return Streamed(frames=frames, events=events, text=text, usage=usage)


def kinds(events: list[AgentEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


async def settled(baseline: set[asyncio.Task[Any]], timeout: float = 5.0) -> set[str]:
    """Tasks started since ``baseline`` that are still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        extra = {t for t in asyncio.all_tasks() - baseline
                 if t is not asyncio.current_task() and not t.done()}
        if not extra or time.monotonic() > deadline:
            return {repr(t.get_coro()) for t in extra}
        await asyncio.sleep(0.01)


async def post(base: str, user: str, *, model: str = "orch",
               stream: bool = False) -> httpx.Response:
    """A Chat Completions request (not streamed unless asked), read whole."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        return await c.post("/v1/chat/completions", json={
            "model": model, "stream": stream,
            "messages": [{"role": "user", "content": user}]})
