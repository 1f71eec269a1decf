"""Usage and cost for every request: the ``Gateway.usage`` hook gets one priced record per
request — streamed or not, fast path or translated, synthesized stream, failures and
clients that leave — from an in-process gateway driven over a real socket by the SDK."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import openai
import pytest

import dragoman
from dragoman.core import Capabilities, Usage
from dragoman.providers import EchoProvider
from dragoman.providers.openai import OpenAIChat
from dragoman.providers.python import PythonProvider
from dragoman.router.usage import UsageAccounting, UsageRecord, format_cost
from tests.fakes.upstream import CHAT_USAGE, OPENAI_KEY, FakeUpstream
from tests.gateway_proc import free_port
from tests.providers import pyfuncs

CAPS = Capabilities(input_cost_per_mtok=2.0, output_cost_per_mtok=10.0)


def test_cost_of_prices_cache_reads_and_writes_at_their_own_rates() -> None:
    caps = Capabilities(input_cost_per_mtok=3.0, output_cost_per_mtok=15.0,
                        cached_input_cost_per_mtok=0.3, cache_write_cost_per_mtok=3.75)
    u = Usage(input_tokens=1_000_000 + 200_000 + 100_000, cached_tokens=200_000,
              cache_write_tokens=100_000, output_tokens=500_000)
    assert caps.cost_of(u) == pytest.approx(3.0 + 0.06 + 0.375 + 7.5)
    # without cache rates, every prompt token costs the input rate
    assert CAPS.cost_of(u) == pytest.approx(1.3 * 2.0 + 0.5 * 10.0)
    assert format_cost(0.0) == "0" and format_cost(0.0000125) == "0.0000125"


@pytest.fixture(scope="module")
def upstream() -> AsyncIterator[FakeUpstream]:  # type: ignore[misc]
    with FakeUpstream() as fake:
        yield fake


async def test_records(upstream: FakeUpstream) -> None:
    records: list[UsageRecord] = []
    seen_async: list[str] = []

    async def async_listener(rec: UsageRecord) -> None:
        seen_async.append(rec.model)

    def broken_listener(rec: UsageRecord) -> None:
        raise RuntimeError("a listener bug never fails a request")

    usage = UsageAccounting()
    usage.subscribe(records.append)
    usage.subscribe(async_listener)
    usage.subscribe(broken_listener)
    table = dragoman.ModelTable([
        dragoman.Deployment("fast", OpenAIChat(model="gpt-fake-chat", base_url=upstream.url
                                               + "/v1", api_key=OPENAI_KEY,
                                               capabilities=CAPS)),
        dragoman.Deployment("slow", OpenAIChat(model="gpt-fake-chat", base_url=upstream.url
                                               + "/v1", api_key=OPENAI_KEY,
                                               capabilities=CAPS), passthrough=False),
        dragoman.Deployment("py", PythonProvider(pyfuncs.answer, capabilities=CAPS)),
        dragoman.Deployment("py-raise", PythonProvider(pyfuncs.shout)),
        dragoman.Deployment("echo", EchoProvider()),
    ])
    gw = dragoman.Gateway(table, usage=usage)
    port = free_port()
    task = asyncio.create_task(dragoman.serve(gw, port=port))
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-x",
                                max_retries=0)
    try:
        for _ in range(100):
            with contextlib.suppress(openai.APIConnectionError):
                await client.models.list()
                break
            await asyncio.sleep(0.05)
        msgs = [{"role": "user", "content": "scenario:text hi"}]
        for model in ("fast", "slow"):
            stream = await client.chat.completions.create(model=model, messages=msgs,  # type: ignore[arg-type]
                                                          stream=True)
            assert [c async for c in stream]
            await client.chat.completions.create(model=model, messages=msgs)  # type: ignore[arg-type]
        stream = await client.chat.completions.create(model="py", messages=msgs, stream=True)  # type: ignore[arg-type]
        assert [c async for c in stream]  # synthesized: py answers whole
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(
                model="py-raise", messages=[{"role": "user", "content": "ratelimit"}])
        # a client that leaves mid-stream
        stream = await client.chat.completions.create(
            model="echo", stream=True,
            messages=[{"role": "user", "content": "::delay 200\na b c d e f"}])
        async for _ in stream:
            break
        await stream.close()
        for _ in range(100):
            if len(records) == 7:
                break
            await asyncio.sleep(0.02)
    finally:
        await client.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task

    got = [(r.model, r.stream, r.passthrough, r.outcome) for r in records]
    assert got == [("fast", True, True, "ok"), ("fast", False, True, "ok"),
                   ("slow", True, False, "ok"), ("slow", False, False, "ok"),
                   ("py", True, False, "ok"), ("py-raise", False, False, "rate_limited"),
                   ("echo", True, False, "client_closed")]
    for r in records[:4]:
        assert (r.usage.input_tokens, r.usage.output_tokens) == (
            CHAT_USAGE["prompt_tokens"], CHAT_USAGE["completion_tokens"])
        assert r.cost == pytest.approx(CAPS.cost_of(r.usage)) and r.cost > 0
        assert r.tenant == "default" and r.provider and r.dialect == "openai_chat"
    assert records[4].usage.input_tokens == 10 and records[4].cost > 0
    assert seen_async == [r.model for r in records]
    totals = usage.totals["default"]
    assert totals.requests == 7
    assert totals.cost == pytest.approx(sum(r.cost for r in records))
