"""The Python API of the seed (``SingleAgent`` served by ``serve_openai`` with static tokens)
in this test's own event loop, and cancellation: a client that leaves mid-stream makes the
agent close its upstream connection within 100 ms and leaves no task (nor process) behind."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

import dragoman
from dragoman.agents import Workspace
from dragoman.agents.builtin import build_builtin
from dragoman.providers import EchoProvider
from tests.cross_dialect.clients import UPSTREAM_MODEL, prompt
from tests.fakes.upstream import OPENAI_KEY, SLOW_TICK, FakeUpstream

from .orchestration import served as serve_orchestrator
from .orchestration import settled as _settled
from .sample_tools import get_weather
from .test_builtin_tools import _wait_dead

KEY = "sk-mykey"
BOUND = 0.1


@contextlib.asynccontextmanager
async def served(orch: dragoman.SingleAgent) -> AsyncIterator[str]:
    auth = dragoman.auth.StaticTokens({KEY: dragoman.Principal(tenant_id="acme")})
    async with serve_orchestrator(orch, auth=auth) as base:
        yield base


async def test_serve_openai_with_static_tokens() -> None:
    orch = dragoman.SingleAgent(provider=EchoProvider(), tools=[get_weather], max_steps=10,
                                name="my-agent")
    async with served(orch) as base:
        oai = openai.AsyncOpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0)
        assert [m.id async for m in oai.models.list()] == ["my-agent"]
        # any model name reaches the one orchestrator (clients send their own)
        r = await oai.chat.completions.create(
            model="whatever-the-client-says",
            messages=[{"role": "user", "content": '::tool get_weather {"city": "Lyon"}'}])
        assert (r.choices[0].message.content or "").endswith("result: 18C, sunny in Lyon")
        ant = anthropic.AsyncAnthropic(base_url=base, api_key=KEY, max_retries=0)
        m = await ant.messages.create(model="my-agent", max_tokens=100,
                                      messages=[{"role": "user", "content": "::reply hi"}])
        assert m.content[0].type == "text" and m.content[0].text == "hi"
        resp = await oai.responses.create(model="my-agent", input="::reply hello")
        assert resp.output_text == "hello"
        with pytest.raises(openai.AuthenticationError):
            await openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-wrong",
                                     max_retries=0).models.list()
        await oai.close()
        await ant.close()


async def test_client_leaving_closes_the_upstream_within_100ms(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        provider = dragoman.providers.OpenAIChat(model=UPSTREAM_MODEL["chat-up"],
                                                 base_url=fake.url + "/v1", api_key=OPENAI_KEY)
        orch = dragoman.SingleAgent(provider=provider, tools=[get_weather], max_steps=5)
        async with served(orch) as base:
            baseline = asyncio.all_tasks()
            user, nonce = prompt("slow")
            async with httpx.AsyncClient(base_url=base, timeout=10) as c:
                req = c.build_request("POST", "/v1/chat/completions", headers={
                    "authorization": f"Bearer {KEY}"}, json={
                    "model": "agent", "stream": True,
                    "messages": [{"role": "user", "content": user}]})
                r = await c.send(req, stream=True)
                ticks = 0
                saw_step = False
                async for line in r.aiter_lines():
                    saw_step = saw_step or line == "event: dragoman.step"
                    if SLOW_TICK in line:
                        ticks += 1
                        if ticks == 3:
                            break
                assert saw_step
                t0 = time.monotonic()
                await r.aclose()
            rec = fake.one(nonce)
            assert await asyncio.to_thread(rec.wait, 5), "the upstream is still streaming"
            assert rec.closed_early and rec.closed_at is not None
            delay = rec.closed_at - t0
            print(f"\nagent: upstream saw the close {delay * 1000:.1f} ms after the client")
            assert delay < BOUND, f"upstream closed {delay * 1000:.0f} ms after the client"
            assert await _settled(baseline) == set(), "tasks left running"


async def test_client_leaving_mid_tool_kills_the_tool(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    bash = build_builtin("bash", {"timeout": 60}, ws)
    orch = dragoman.SingleAgent(provider=EchoProvider(), tools=[bash])
    async with served(orch) as base:
        baseline = asyncio.all_tasks()
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            req = c.build_request("POST", "/v1/messages", headers={
                "x-api-key": KEY, "anthropic-version": "2023-06-01"}, json={
                "model": "agent", "stream": True, "max_tokens": 100, "messages": [{
                    "role": "user",
                    "content": '::tool bash {"command": "echo $$ > sh.pid; sleep 1000"}'}]})
            r = await c.send(req, stream=True)
            async for line in r.aiter_lines():
                if line == "event: dragoman.tool_call_start":
                    break
            pid_file = tmp_path / "sh.pid"
            deadline = time.monotonic() + 10  # the tool starting, on a loaded CI machine
            while not (pid_file.exists() and pid_file.read_text().strip()):
                assert time.monotonic() < deadline, "the bash tool never started"
                await asyncio.sleep(0.01)
            pid = int(pid_file.read_text())
            await r.aclose()
        assert await _wait_dead(pid), "the tool's process outlived the client"
        assert await _settled(baseline) == set(), "tasks left running"
