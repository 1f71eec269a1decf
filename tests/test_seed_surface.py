"""Code written against tako, tkach, agentick and Centaur runs on dragoman unchanged.

The four Python code blocks of the seeds (tako's "OpenAI-compatible HTTP server" and
"Providers" pages) are copied below as written, ``tako`` replaced by ``dragoman``; the
only other edits point them at fakes on loopback: API keys and a ``base_url``/endpoint of
a fake vendor, and a free loopback port instead of ``0.0.0.0:8080``. Then each wire rule
the seeds state, end to end over real sockets: Centaur's ``X-Centaur-Thread-Key`` and its
fresh ``api:<uuid>`` threads, agentick's default model and path prefix, tkach's Codex
body. The optional installs (extras) are checked in a subprocess whose imports of the
optional packages fail.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

import dragoman
import dragoman.compat
from dragoman.auth import ClientAuth
from dragoman.config import ConfigError, build_gateway, parse_config
from dragoman.providers import LlmProvider
from tests.conftest import API_KEY
from tests.fakes.azure import AZURE_KEY, FakeAzure
from tests.fakes.codex import ACCOUNT_ID, CODEX_TOKENS, FakeCodex
from tests.fakes.upstream import ANTHROPIC_KEY, OPENAI_KEY, TEXT, FakeUpstream, image_note
from tests.gateway_proc import free_port

#: the deployment name the seed's Azure snippet uses
SEED_DEPLOYMENT = "gpt-4o-prod"


class SeedAzure(FakeAzure):
    """The Azure fake serving the seed's deployment name."""

    async def _classic_chat(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["deployment"] != SEED_DEPLOYMENT or \
                "api-version" not in request.query:
            return await self._not_found(request, "chat", {"error": {
                "code": "DeploymentNotFound", "message": "The API deployment for this "
                "resource does not exist."}})
        return await self._chat(request)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as f:
        yield f


@pytest.fixture(scope="module")
def azure() -> Iterator[SeedAzure]:
    with SeedAzure() as f:
        yield f


@pytest.fixture(scope="module")
def codex() -> Iterator[FakeCodex]:
    with FakeCodex() as f:
        yield f


async def _until_up(port: int, task: asyncio.Task[Any]) -> None:
    for _ in range(200):
        if task.done():
            task.result()  # the server failed to start: raise its error
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")


@contextlib.asynccontextmanager
async def serving(coro: Any, port: int) -> AsyncIterator[str]:
    """Run a ``serve``-style coroutine as a task; yield its base URL; cancel it."""
    task = asyncio.create_task(coro)
    try:
        await _until_up(port, task)
        yield f"http://127.0.0.1:{port}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task


# --- seed 000, block 1: "Run it" --------------------------------------------------------


async def seed_000_run_it(anthropic_base_url: str, port: int) -> None:
    # As written in the seed (tako → dragoman); the provider points at the fake Anthropic
    # (api_key + base_url) and the server binds a free loopback port.
    import dragoman
    import dragoman.compat

    orch = dragoman.SingleAgent(
        provider=dragoman.providers.Anthropic(model="claude-opus-4-7", api_key=ANTHROPIC_KEY,
                                              base_url=anthropic_base_url),
        max_steps=10,
    )

    # Async server (uvicorn under the hood):
    await dragoman.compat.serve_openai(
        orchestrator=orch,
        bind=f"127.0.0.1:{port}",
        auth=dragoman.compat.StaticTokens({"sk-mykey": dragoman.Principal(tenant_id="acme")}),
    )


@pytest.fixture(scope="module")
async def seed_server(fake: FakeUpstream) -> AsyncIterator[str]:
    port = free_port()
    async with serving(seed_000_run_it(fake.url, port), port) as url:
        yield url


async def test_seed_000_run_it_serves_the_agent(seed_server: str, fake: FakeUpstream) -> None:
    client = openai.AsyncOpenAI(base_url=seed_server + "/v1", api_key="sk-mykey",
                                max_retries=0)
    r = await client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "seed-000 run it"}])
    assert r.choices[0].message.content == TEXT
    up = fake.one("seed-000 run it", "/v1/messages")
    assert up.headers["x-api-key"] == ANTHROPIC_KEY
    assert up.body["model"] == "claude-opus-4-7"
    bad = openai.AsyncOpenAI(base_url=seed_server + "/v1", api_key="sk-other", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await bad.chat.completions.create(model="x", messages=[{"role": "user", "content": "x"}])


# --- seed 000, block 2: composite auth ---------------------------------------------------


def seed_000_chain(oidc_resolver: Any, static_tokens: Any) -> Any:
    import dragoman.compat

    chain = (
        dragoman.compat.ChainedAuth()
        .then(oidc_resolver)
        .then(static_tokens)
        .with_short_circuit_on_infrastructure_errors()
    )
    return chain


async def _chat_status(url: str, key: str) -> tuple[int, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.post(url + "/v1/chat/completions", headers={
            "authorization": f"Bearer {key}"}, json={
            "model": "m", "messages": [{"role": "user", "content": "seed-000 chain"}]})
    return r.status_code, r.json()


async def test_seed_000_chained_auth(fake: FakeUpstream) -> None:
    # An OIDC issuer nobody answers for (a port with no listener): introspecting the
    # static key fails with a transport error.
    oidc_resolver = dragoman.compat.OidcAuth(
        f"http://127.0.0.1:{free_port()}", audience="urn:gw",
        client=ClientAuth("gw", client_secret="s" * 40))
    static_tokens = dragoman.compat.StaticTokens(
        {"sk-mykey": dragoman.Principal(tenant_id="acme")})
    chain = seed_000_chain(oidc_resolver, static_tokens)
    assert isinstance(chain, dragoman.compat.ChainedAuth)
    assert [type(c).__name__ for c in chain.children] == ["OidcAuth", "StaticTokens"]
    orch = dragoman.providers.OpenAI(model="gpt-5", api_key=OPENAI_KEY,
                                     base_url=fake.url + "/v1")
    # Short-circuit on infrastructure errors: an issuer that is down is the answer (503),
    # not a misleading "unknown key" from the static fallback.
    port = free_port()
    async with serving(dragoman.compat.serve_openai(orchestrator=orch, bind=f"127.0.0.1:{port}",
                                                    auth=chain), port) as url:
        status, body = await _chat_status(url, "sk-mykey")
    assert status == 503, body
    assert "Incorrect API key" not in body["error"]["message"]
    # The default (and the list form): a child's error falls through to the next.
    port = free_port()
    fall_through = dragoman.compat.ChainedAuth([oidc_resolver, static_tokens])
    async with serving(dragoman.compat.serve_openai(orchestrator=orch, bind=f"127.0.0.1:{port}",
                                                    auth=fall_through), port) as url:
        status, body = await _chat_status(url, "sk-mykey")
        assert status == 200 and body["choices"][0]["message"]["content"] == TEXT
        # every child failed: the most telling error is the answer (the issuer is down)
        status, body = await _chat_status(url, "sk-unknown")
        assert status == 503, body
    # Transport-only short-circuit is fluent too; an empty chain refuses everyone.
    transport = dragoman.compat.ChainedAuth().then(oidc_resolver).then(static_tokens) \
        .with_short_circuit_on_transport_error()
    assert transport.halt_on == frozenset({"transport"})
    port = free_port()
    async with serving(dragoman.compat.serve_openai(orchestrator=orch, bind=f"127.0.0.1:{port}",
                                                    auth=dragoman.compat.ChainedAuth()),
                       port) as url:
        status, body = await _chat_status(url, "sk-mykey")
        assert status == 401, body
    await oidc_resolver.aclose()
    await orch.aclose()


# --- seed 001, block 1: choosing a provider ----------------------------------------------


def seed_001_choose(openai_base: str, azure_endpoint: str) -> tuple[Any, Any]:
    import dragoman

    provider = dragoman.providers.OpenAI(model="gpt-5", api_key=OPENAI_KEY,
                                         base_url=openai_base)
    first = provider
    # vs
    provider = dragoman.providers.AzureOpenAI(
        endpoint=azure_endpoint,
        deployment="gpt-4o-prod",
        api_key=AZURE_KEY,
    )
    return first, provider


async def test_seed_001_providers_swap(fake: FakeUpstream, azure: SeedAzure) -> None:
    from dragoman import ChatRequest, ContentPart, Message, Role

    oai, az = seed_001_choose(fake.url + "/v1", azure.url)
    for provider, upstream, marker in ((oai, fake, "seed-001 openai"),
                                       (az, azure, "seed-001 azure")):
        assert isinstance(provider, LlmProvider)
        resp = await provider.complete(ChatRequest(messages=[
            Message(role=Role.User, content=[ContentPart.text(marker)])]))
        assert resp.text() == TEXT
        rec = upstream.one(marker)
        assert rec.body["messages"] == [{"role": "user", "content": marker}]
        await provider.aclose()
    assert azure.one("seed-001 azure").path == f"/openai/deployments/{SEED_DEPLOYMENT}/chat/completions"
    assert azure.one("seed-001 azure").headers["api-key"] == AZURE_KEY
    assert fake.one("seed-001 openai").body["model"] == "gpt-5"
    # Every provider name of the seed's table is importable from dragoman.providers.
    from dragoman.providers import (  # noqa: F401
        Anthropic,
        AzureOpenAI,
        Bedrock,
        HttpGeneric,
        Mistral,
        Ollama,
        OpenAI,
        PythonProvider,
        Vertex,
    )
    assert OpenAI is dragoman.providers.OpenAIChat
    assert Vertex is dragoman.providers.VertexAi


# --- seed 001, block 2: vision content ---------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0 a tiny fake jpeg \xff\xd9"


def seed_001_vision(jpeg_bytes_base64: str) -> Any:
    from dragoman import ChatRequest, ContentPart, Message, Role

    req = ChatRequest(messages=[
        Message(role=Role.User, content=[
            ContentPart.text("Describe this image."),
            ContentPart.image(mime="image/jpeg", data_b64=jpeg_bytes_base64),
            # or, on every provider whose vendor server fetches URLs:
            ContentPart.image_url(url="https://example.com/photo.jpg"),
        ]),
    ])
    return req


async def test_seed_001_vision_reaches_the_vendor(fake: FakeUpstream) -> None:
    req = seed_001_vision(base64.b64encode(JPEG).decode())
    assert req.messages[0].role == "user"
    oai = dragoman.providers.OpenAI(model="gpt-5", api_key=OPENAI_KEY, base_url=fake.url + "/v1")
    ant = dragoman.providers.Anthropic(model="claude-opus-4-7", api_key=ANTHROPIC_KEY,
                                       base_url=fake.url)
    for provider in (oai, ant):
        fake.clear()
        assert (await provider.complete(req)).text() == TEXT
        (rec,) = fake.requests
        parts = rec.body["messages"][0]["content"]
        if rec.api == "chat":
            assert parts[0] == {"type": "text", "text": "Describe this image."}
            urls = [p["image_url"]["url"] for p in parts[1:]]
            assert urls == ["data:image/jpeg;base64," + base64.b64encode(JPEG).decode(),
                            "https://example.com/photo.jpg"]
        else:
            assert parts[0]["text"] == "Describe this image."
            assert parts[1]["source"] == {"type": "base64", "media_type": "image/jpeg",
                                          "data": base64.b64encode(JPEG).decode()}
            assert parts[2]["source"] == {"type": "url", "url": "https://example.com/photo.jpg"}
        await provider.aclose()
    assert image_note(data=JPEG).startswith("an image of")


# --- wire rules: Centaur threads (seed 004) ----------------------------------------------


@pytest.fixture(scope="module")
async def agent_server(fake: FakeUpstream) -> AsyncIterator[str]:
    orch = dragoman.SingleAgent(provider=dragoman.providers.OpenAI(
        model="gpt-5", api_key=OPENAI_KEY, base_url=fake.url + "/v1"))
    auth = dragoman.compat.StaticTokens({"sk-acme": dragoman.Principal(tenant_id="acme"),
                                         "sk-globex": dragoman.Principal(tenant_id="globex")})
    port = free_port()
    async with serving(dragoman.serve_openai(orch, bind=f"127.0.0.1:{port}", auth=auth),
                       port) as url:
        yield url


async def _turn(url: str, key: str, text: str, headers: dict[str, str] | None = None,
                stream: bool = False) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.post(url + "/v1/chat/completions", headers={
            "authorization": f"Bearer {key}", **(headers or {})}, json={
            "model": "agent", "stream": stream,
            "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    return r


def _upstream_texts(fake: FakeUpstream, marker: str) -> list[str]:
    rec = fake.one(marker)
    return [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]
            for m in rec.body["messages"] if m["role"] == "user"]


async def test_centaur_thread_key_is_a_thread_key(agent_server: str, fake: FakeUpstream) -> None:
    key = f"centaur-{uuid.uuid4()}"
    await _turn(agent_server, "sk-acme", "ct-1 my name is Ada", {"X-Centaur-Thread-Key": key})
    await _turn(agent_server, "sk-acme", "ct-2 what is my name?", {"X-Centaur-Thread-Key": key})
    assert _upstream_texts(fake, "ct-2") == ["ct-1 my name is Ada", "ct-2 what is my name?"]
    # the same thread as x-dragoman-thread-key
    await _turn(agent_server, "sk-acme", "ct-3 again", {"x-dragoman-thread-key": key})
    assert _upstream_texts(fake, "ct-3")[:2] == ["ct-1 my name is Ada", "ct-2 what is my name?"]
    # scoped by tenant: another tenant's thread of the same key is its own
    await _turn(agent_server, "sk-globex", "ct-4 who am I?", {"X-Centaur-Thread-Key": key})
    assert _upstream_texts(fake, "ct-4") == ["ct-4 who am I?"]


@pytest.mark.parametrize("stream", [False, True])
async def test_no_thread_key_starts_a_fresh_api_thread(stream: bool, agent_server: str,
                                                       fake: FakeUpstream) -> None:
    tag = f"fresh-{int(stream)}"
    r = await _turn(agent_server, "sk-acme", f"{tag}-a remember 42", stream=stream)
    thread = r.headers["x-dragoman-thread-key"]
    prefix, _, rest = thread.partition(":")
    assert prefix == "api" and uuid.UUID(rest).version == 4
    if stream:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "data: [DONE]" in r.text
    # continued under either header name; no new thread is minted for a keyed request
    r2 = await _turn(agent_server, "sk-acme", f"{tag}-b what number?",
                     {"X-Centaur-Thread-Key": thread}, stream=stream)
    assert "x-dragoman-thread-key" not in r2.headers
    assert _upstream_texts(fake, f"{tag}-b") == [f"{tag}-a remember 42", f"{tag}-b what number?"]
    # another request without a key: another fresh thread, without that history
    r3 = await _turn(agent_server, "sk-acme", f"{tag}-c hello", stream=stream)
    assert r3.headers["x-dragoman-thread-key"] != thread
    assert _upstream_texts(fake, f"{tag}-c") == [f"{tag}-c hello"]
    # and another tenant cannot continue it
    await _turn(agent_server, "sk-globex", f"{tag}-d number?", {"x-dragoman-thread-key": thread})
    assert _upstream_texts(fake, f"{tag}-d") == [f"{tag}-d number?"]


async def test_plain_models_stay_stateless(fake: FakeUpstream) -> None:
    # Only requests that reach an agent (a history-holding model) get a thread.
    gw = build_gateway(parse_config({"models": [{"name": "agent", "provider": "openai",
                                                 "model": "gpt-5", "api_key": OPENAI_KEY,
                                                 "base_url": fake.url + "/v1"}]}))
    port = free_port()
    async with serving(dragoman.serve(gw, port=port), port) as url:
        r = await _turn(url, "none", "stateless plain")
    assert "x-dragoman-thread-key" not in r.headers
    await gw.aclose()


# --- wire rules: agentick's default model and path prefix (seed 003) ---------------------


def _echo_config(**server: Any) -> dict[str, Any]:
    return {"server": server, "models": [{"name": "dragoman/echo", "provider": "echo"},
                                         {"name": "other", "provider": "echo"}]}


async def _post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url + path, json=body)


async def test_default_model_unknown_model_and_path_prefix() -> None:
    msgs = [{"role": "user", "content": "agentick"}]
    gw = build_gateway(parse_config(_echo_config(
        default_model="dragoman/echo", unknown_model="default", path_prefix="/openai")))
    port = free_port()
    async with serving(dragoman.serve(gw, port=port), port) as url:
        r = await _post(url, "/openai/v1/chat/completions", {"messages": msgs})
        assert r.status_code == 200 and r.json()["model"] == "dragoman/echo"
        assert r.json()["choices"][0]["message"]["content"] == "agentick"
        r = await _post(url, "/openai/v1/chat/completions", {"model": "gpt-4o", "messages": msgs})
        assert r.status_code == 200 and r.json()["model"] == "dragoman/echo"
        r = await _post(url, "/openai/v1/chat/completions", {"model": "other", "messages": msgs})
        assert r.status_code == 200 and r.json()["model"] == "other"
        # the OpenAI SDK pointed at the prefix works unchanged, models listed there too
        client = openai.AsyncOpenAI(base_url=url + "/openai/v1", api_key="x", max_retries=0)
        assert {m.id async for m in client.models.list()} >= {"dragoman/echo", "other"}
        # outside the prefix: nothing is served
        r = await _post(url, "/v1/chat/completions", {"model": "other", "messages": msgs})
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
        async with httpx.AsyncClient() as http:
            assert (await http.get(url + "/openaiv1/models")).status_code == 404
    await gw.aclose()

    gw = build_gateway(parse_config(_echo_config(default_model="other")))
    port = free_port()
    async with serving(dragoman.serve(gw, port=port), port) as url:
        r = await _post(url, "/v1/chat/completions", {"messages": msgs})
        assert r.status_code == 200 and r.json()["model"] == "other"
        r = await _post(url, "/v1/chat/completions", {"model": "gpt-4o", "messages": msgs})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    await gw.aclose()


async def test_no_model_and_no_default_is_openais_400(echo_gateway: str) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(echo_gateway + "/v1/chat/completions",
                            headers={"authorization": f"Bearer {API_KEY}"},
                            json={"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model"
    assert r.json()["error"]["message"] == "Missing required parameter: 'model'."


def test_default_model_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"needs `\$\.server\.default_model`"):
        build_gateway(parse_config(_echo_config(unknown_model="default")))
    with pytest.raises(ConfigError, match="names no model"):
        build_gateway(parse_config(_echo_config(default_model="nope")))
    with pytest.raises(ConfigError, match="path_prefix"):
        build_gateway(parse_config(_echo_config(path_prefix="/a?b")))


# --- wire rules: tkach's Codex body (seed 002) -------------------------------------------


@pytest.fixture(scope="module")
async def codex_gateway(codex: FakeCodex) -> AsyncIterator[str]:
    gw = build_gateway(parse_config({"models": [{
        "name": "codex", "provider": "codex", "model": "gpt-5-fake",
        "base_url": codex.url + "/backend-api", "access_token": CODEX_TOKENS[0],
        "account_id": ACCOUNT_ID}, {
        "name": "codex-plain", "provider": "codex", "model": "gpt-5-fake",
        "base_url": codex.url + "/backend-api", "access_token": CODEX_TOKENS[0],
        "account_id": ACCOUNT_ID, "text_verbosity": None}]}))
    port = free_port()
    async with serving(dragoman.serve(gw, port=port), port) as url:
        yield url
    await gw.aclose()


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}


async def test_codex_body_follows_tkach(codex_gateway: str, codex: FakeCodex) -> None:
    # A Chat client replaying a tool round-trip whose ids are tkach's composite form.
    r = await _post(codex_gateway, "/v1/chat/completions", {
        "model": "codex", "temperature": 0.3, "tools": [WEATHER_TOOL], "messages": [
            {"role": "user", "content": "tkach-1 weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1|fc_1", "type": "function", "function": {
                    "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1|fc_1", "content": "18C"}]})
    assert r.status_code == 200, r.text
    body = codex.one("tkach-1").body
    assert body["text"] == {"verbosity": "low"}
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
    assert "temperature" not in body  # the backend refuses it (README: Codex)
    call, output = body["input"][1], body["input"][2]
    assert (call["type"], call["call_id"], call["id"]) == ("function_call", "call_1", "fc_1")
    assert (output["type"], output["call_id"]) == ("function_call_output", "call_1")
    assert all("status" not in item for item in body["input"])

    # Without tools: no tool_choice / parallel_tool_calls; the verbosity is configurable
    # (off here) and a client's own choice wins.
    r = await _post(codex_gateway, "/v1/chat/completions", {
        "model": "codex-plain", "messages": [{"role": "user", "content": "tkach-2 hi"}]})
    assert r.status_code == 200, r.text
    body = codex.one("tkach-2").body
    assert "text" not in body and "tool_choice" not in body
    assert "parallel_tool_calls" not in body
    r = await _post(codex_gateway, "/v1/responses", {
        "model": "codex", "text": {"verbosity": "high"}, "tools": [{
            "type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "tool_choice": "none", "parallel_tool_calls": False, "input": "tkach-3 hi"})
    assert r.status_code == 200, r.text
    body = codex.one("tkach-3").body
    assert body["text"] == {"verbosity": "high"}
    assert body["tool_choice"] == "none" and body["parallel_tool_calls"] is False


async def test_codex_input_items_drop_status(codex_gateway: str, codex: FakeCodex) -> None:
    # A Codex CLI replays its own items with their status; the backend rejects status on
    # input, so it is dropped on the way.
    r = await _post(codex_gateway, "/v1/responses", {"model": "codex", "input": [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "tkach-4 list files"}]},
        {"type": "local_shell_call", "id": "lsh_1", "call_id": "call_ls1",
         "status": "completed", "action": {"type": "exec", "command": ["ls"]}},
        {"type": "local_shell_call_output", "call_id": "call_ls1", "output": "a.txt"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "and now?"}]}]})
    assert r.status_code == 200, r.text
    body = codex.one("tkach-4").body
    shell = [i for i in body["input"] if i.get("type") == "local_shell_call"]
    assert shell and all("status" not in i for i in body["input"])


# --- optional installs (extras) ----------------------------------------------------------

_BLOCKED = ("joserfc", "cryptography", "google", "botocore", "asyncpg", "redis")

_LEAN = """
import json, sys
for m in %r:
    sys.modules[m] = None  # as if not installed: importing it raises ImportError
import dragoman, dragoman.compat, dragoman.cli
from dragoman.config import ConfigError, build_gateway, parse_config
out = {}
gw = build_gateway(parse_config({"server": {"api_keys": ["k"]}, "models": [
    {"name": "e", "provider": "echo"},
    {"name": "o", "provider": "openai", "model": "gpt", "api_key": "x"},
    {"name": "a", "provider": "anthropic", "model": "c", "api_key": "x"},
    {"name": "g", "provider": "gemini", "model": "m", "api_key": "x"}]}))
out["base"] = "ok"
for name, cfg in {
    "jwt": {"auth": {"type": "jwt", "algorithm": "HS256", "key": "k" * 32}},
    "oidc": {"auth": {"type": "chain", "children": [
        {"type": "static", "tokens": [{"tenant": "t", "token": "x"}]},
        {"type": "oidc", "issuer": "https://idp.example", "audience": "a"}]}},
    "bedrock": {"models": [{"name": "b", "provider": "bedrock", "model": "m",
                            "region": "us-east-1"}]},
    "vertex": {"models": [{"name": "v", "provider": "vertex", "model": "m",
                           "project": "p"}]},
    "postgres": {"sessions": {"backend": "postgres", "dsn": "postgresql://db/x"}},
    "redis": {"limits": {"backend": "redis", "redis_url": "redis://r:6379/0"}},
}.items():
    try:
        build_gateway(parse_config(cfg))
        out[name] = None
    except ConfigError as e:
        out[name] = str(e)
try:
    dragoman.compat.JwtAuth
except ImportError as e:
    out["compat.JwtAuth"] = str(e)
out["vault"] = dragoman.compat.VaultAuth.__name__
print(json.dumps(out))
"""


def test_lean_base_install_and_pip_hints() -> None:
    out = json.loads(subprocess.run([sys.executable, "-c", _LEAN % (_BLOCKED,)],
                                    check=True, capture_output=True, text=True).stdout)
    assert out.pop("base") == "ok" and out.pop("vault") == "VaultAuth"
    where = {"jwt": "$.auth", "oidc": "$.auth.children[1]", "bedrock": "$.models[0]",
             "vertex": "$.models[0]", "postgres": "$.sessions", "redis": "$.limits"}
    extra_of = {**{k: k for k in where}, "compat.JwtAuth": "jwt"}
    assert set(out) == set(extra_of)
    for what, message in out.items():
        assert message is not None, what
        assert f"pip install 'dragoman[{extra_of[what]}]'" in message, message
        assert where.get(what, "") in message, message


def test_the_base_gateway_imports_no_optional_package() -> None:
    code = ("import sys, dragoman, dragoman.compat, dragoman.server.app, dragoman.cli\n"
            f"print(sorted(m for m in {_BLOCKED!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"
