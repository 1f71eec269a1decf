"""Agent turns in the session store: the hidden part of a turn that ended with a client
tool call, kept per (tenant, call id) on every backend, found by another gateway process
sharing the database, invisible to other tenants, gone after the TTL and with ``purge``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import openai
import pytest

from dragoman.agents import MemoryTurnStore, PendingTurn, SingleAgent
from dragoman.core import (
    ChatRequest,
    Message,
    RequestContext,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolResult,
    acollect,
)
from dragoman.providers import EchoProvider
from dragoman.server.agent_turns import StoredTurns
from dragoman.sessions import SessionStore, StoreSettings, open_store
from dragoman.sessions.schema import POSTGRES, SQLITE
from tests.sessions.conftest import sessions_section, settings_for
from tests.sessions.helpers import count_rows
from tests.sessions.procs import GatewayProcess

KEY_A, KEY_B = "sk-agent-tenant-a", "sk-agent-tenant-b"
ASK = [Tool(name="ask_user", description="Ask the human",
            parameters={"type": "object", "properties": {"q": {"type": "string"}}})]
SECRET = "the vault code is 7-7-3"


def _turn(tag: str) -> PendingTurn:
    call = ToolCall(id=f"own_{tag}", name="read_file", arguments='{"path": "x"}')
    return PendingTurn(
        messages=[Message(role="assistant", content=[Text(text=tag), call])],
        results=[ToolResult(call_id=call.id, content=[Text(text=f"result {tag}")])])


# --- the store --------------------------------------------------------------------------------

async def test_records_are_kept_per_tenant_and_call_id(store: SessionStore) -> None:
    turns = StoredTurns(store)
    await turns.put("a", ["call_1", "call_2"], _turn("one"))
    assert await turns.get("a", "call_1") == _turn("one")
    assert await turns.get("a", "call_2") == _turn("one")  # under each client call id
    # another tenant presenting the same call id gets nothing
    assert await turns.get("b", "call_1") is None
    assert await turns.get("a", "call_unknown") is None
    # the same call id written again (a retried turn) replaces the record
    await turns.put("a", ["call_1"], _turn("two"))
    assert await turns.get("a", "call_1") == _turn("two")
    assert await turns.get("a", "call_2") == _turn("one")
    await turns.put("b", ["call_1"], _turn("b"))
    assert await turns.get("b", "call_1") == _turn("b")
    assert await turns.get("a", "call_1") == _turn("two")


async def test_records_expire_with_the_ttl_and_go_with_purge(
        store_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = open_store(settings_for(store_backend, tmp_path, request, ttl=1.0))
    try:
        await store.open()  # connecting and migrating do not eat into the 0.3 s TTL
        turns = StoredTurns(store)
        await turns.put("a", ["call_old"], _turn("old"))
        assert await turns.get("a", "call_old") == _turn("old")
        await asyncio.sleep(1.1)
        await turns.put("a", ["call_new"], _turn("new"))
        assert await turns.get("a", "call_old") is None  # expired: invisible at once
        assert await turns.get("a", "call_new") == _turn("new")
        stats = await store.purge(1.0)
        assert stats.agent_turns == 1 and stats.total == 1
        assert await turns.get("a", "call_new") == _turn("new")
        if store_backend != "memory":
            assert await count_rows(store, "agent_turns") == 1
    finally:
        await store.aclose()


async def test_a_record_that_does_not_decode_is_a_miss(store: SessionStore) -> None:
    await store.put_agent_turn("a", ["call_x"], b"\xc1 not msgpack")
    assert await StoredTurns(store).get("a", "call_x") is None


async def test_a_version_1_database_migrates_to_agent_turns(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A database created before agent turns existed gains their table on ``open()``,
    keeping its rows."""
    settings = settings_for(backend, tmp_path, request)
    if backend == "sqlite":
        with sqlite3.connect(settings.sqlite_path()) as conn:
            conn.execute("CREATE TABLE dragoman_schema (version INTEGER NOT NULL, "
                         "applied INTEGER NOT NULL)")
            for stmt in SQLITE[0]:
                conn.execute(stmt)
            conn.execute("INSERT INTO dragoman_schema VALUES (1, 0)")
            conn.execute("INSERT INTO threads (id, tenant, key, created, updated) "
                         "VALUES ('th_old', 'a', 'k', 0, 0)")
    else:
        conn = await asyncpg.connect(settings.dsn)
        try:
            await conn.execute("CREATE TABLE dragoman_schema (version INTEGER NOT NULL, "
                               "applied BIGINT NOT NULL)")
            for stmt in POSTGRES[0]:
                await conn.execute(stmt)
            await conn.execute("INSERT INTO dragoman_schema VALUES (1, 0)")
            await conn.execute("INSERT INTO threads (id, tenant, key, created, updated) "
                               "VALUES ('th_old', 'a', 'k', 0, 0)")
        finally:
            await conn.close()
    store = open_store(settings)
    try:
        await StoredTurns(store).put("a", ["call_1"], _turn("one"))
        assert await StoredTurns(store).get("a", "call_1") == _turn("one")
        assert await count_rows(store, "threads") == 1
        assert await _schema_versions(settings) == list(range(1, len(SQLITE) + 1))
    finally:
        await store.aclose()


async def _schema_versions(settings: StoreSettings) -> list[int]:
    query = "SELECT version FROM dragoman_schema ORDER BY version"
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.sqlite_path()) as conn:
            return [r[0] for r in conn.execute(query)]
    conn = await asyncpg.connect(settings.dsn)
    try:
        return [r[0] for r in await conn.fetch(query)]
    finally:
        await conn.close()


# --- the agent on the store, in process ---------------------------------------------------------

def _text(messages: list[Message]) -> str:
    return "\n".join(m.text() for m in messages)


async def test_an_agent_splices_the_turn_back_from_another_store_instance(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Two agents, each with its own connection to one database (as two processes have):
    the second finds what the first kept, for the same tenant only."""
    settings = settings_for(backend, tmp_path, request)
    one, two = open_store(settings), open_store(settings)

    def get_weather(city: str) -> str:
        """Weather now."""
        return f"18C in {city}"

    try:
        first = SingleAgent(EchoProvider(), [get_weather], turns=StoredTurns(one))
        second = SingleAgent(EchoProvider(), [get_weather], turns=StoredTurns(two))
        ask = Message(role="user", content=[Text(
            text='::tool get_weather {"city": "Rome"}\n::tool ask_user {"q": "units?"}')])
        resp = await acollect(first.stream(ChatRequest(
            model="agent", messages=[ask], tools=ASK), RequestContext(tenant="a")), "r", "agent")
        (call,) = resp.tool_calls()
        follow = [ask, Message(role="assistant", content=resp.content),
                  Message(role="tool", content=[ToolResult(call_id=call.id,
                                                           content=[Text(text="metric")])])]

        async def answer(tenant: str) -> str:
            events = [e async for e in second.stream(ChatRequest(
                model="agent", messages=follow, tools=ASK), RequestContext(tenant=tenant))]
            return "".join(e.text for e in events if isinstance(e, TextDelta))

        spliced = await answer("a")
        assert "result: 18C in Rome" in spliced and f"Tool {call.id} result: metric" in spliced
        alone = await answer("b")
        assert alone == f"Tool {call.id} result: metric"
    finally:
        await one.aclose()
        await two.aclose()


# --- two gateway processes on one database --------------------------------------------------

def _config(settings: StoreSettings, workspace: Path) -> dict[str, Any]:
    return {
        "server": {"api_keys": [KEY_A, KEY_B]},
        "models": [{"name": "dragoman/echo", "provider": "echo"}],
        "agents": [{"name": "vault-agent", "model": "dragoman/echo", "max_steps": 4,
                    "workspace": str(workspace.parent / "roots"),
                    "workspace_template": str(workspace), "tools": ["read_file"]}],
        "sessions": sessions_section(settings),
    }


@pytest.fixture
def two_gateways(backend: str, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> Iterator[tuple[str, str]]:
    settings = settings_for(backend, tmp_path, request)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "vault.txt").write_text(SECRET)
    (tmp_path / "roots").mkdir()
    cfg = _config(settings, workspace)
    with GatewayProcess(cfg, tmp_path, name="one") as one, \
            GatewayProcess(cfg, tmp_path, name="two") as two:
        yield one.url, two.url


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_a_client_tool_continuation_on_another_gateway_process(
        two_gateways: tuple[str, str]) -> None:
    url_one, url_two = two_gateways
    tools: Any = [{"type": "function", "function": {
        "name": "ask_user", "parameters": {"type": "object",
                                           "properties": {"q": {"type": "string"}}}}}]
    msgs: list[Any] = [{"role": "user", "content": '::tool read_file {"path": "vault.txt"}\n'
                                                   '::tool ask_user {"q": "proceed?"}'}]
    r1 = _client(url_one, KEY_A).chat.completions.create(model="vault-agent", messages=msgs,
                                                         tools=tools)
    choice = r1.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "ask_user"
    assert SECRET not in json.dumps(r1.model_dump())  # the agent's own call stays hidden
    msgs += [choice.message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "yes"}]

    # The follow-up lands on the other process: the hidden read_file call and its result
    # come back from the shared database, so the model sees both results.
    r2 = _client(url_two, KEY_A).chat.completions.create(model="vault-agent", messages=msgs,
                                                         tools=tools)
    text = r2.choices[0].message.content or ""
    assert f"result: {SECRET}" in text and f"Tool {call.id} result: yes" in text
    assert r2.choices[0].finish_reason == "stop"

    # Another tenant replaying the same conversation (same call id) gets no record.
    r3 = _client(url_two, KEY_B).chat.completions.create(model="vault-agent", messages=msgs,
                                                         tools=tools)
    assert r3.choices[0].message.content == f"Tool {call.id} result: yes"
    assert SECRET not in json.dumps(r3.model_dump())



async def test_the_in_process_store_is_keyed_by_tenant_too() -> None:
    turns = MemoryTurnStore()
    await turns.put("a", ["call_1"], _turn("one"))
    assert await turns.get("a", "call_1") == _turn("one")
    assert await turns.get("b", "call_1") is None
