"""The in-process Python API: build a Gateway from provider objects and serve it in the
running event loop (uvicorn), then talk to it over a real socket."""

from __future__ import annotations

import asyncio
import contextlib

import openai

import dragoman
from dragoman.providers import EchoProvider, LlmProvider
from tests.gateway_proc import free_port


async def test_serve_gateway_object() -> None:
    echo = EchoProvider()
    assert isinstance(echo, LlmProvider)
    gw = dragoman.Gateway(dragoman.ModelTable([dragoman.Deployment("my-echo", echo)]),
                          api_keys=["sk-local"])
    port = free_port()
    task = asyncio.create_task(dragoman.serve(gw, port=port))
    try:
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-local",
                                    max_retries=0)
        for _ in range(100):
            try:
                r = await client.chat.completions.create(
                    model="my-echo", messages=[{"role": "user", "content": "in process"}])
                break
            except openai.APIConnectionError:
                await asyncio.sleep(0.05)
        assert r.choices[0].message.content == "in process"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task
