"""Building turns and looking inside a store's tables (row counts) for the sessions suite."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import asyncpg

from dragoman.core import ChatRequest, ChatResponse, Message, Text, Thinking, new_id
from dragoman.sessions import NewResponse, PreviousResponse, SessionStore, Turn, TurnResult
from dragoman.sessions.memory import MemoryStore
from dragoman.sessions.postgres import PostgresStore
from dragoman.sessions.sqlite import SqliteStore


def user(text: str) -> Message:
    return Message(role="user", content=[Text(text=text)])


def assistant(text: str) -> Message:
    return Message(role="assistant", content=[Text(text=text)])


def reencoded(m: Message) -> Message:
    """``m`` as a client SDK might resend it: thinking added, text split, cache marker."""
    text = m.text()
    half = len(text) // 2
    return Message(role=m.role, content=[
        Thinking(text="hidden", signature="sig"),
        Text(text=text[:half]), Text(text=text[half:] + "  ", cache_control={"type": "ephemeral"}),
    ])


def texts(messages: list[Message]) -> list[str]:
    return [f"{m.role}:{m.text()}" for m in messages]


async def turn(store: SessionStore, tenant: str, messages: list[Message], answer: str, *,
               key: str | None = None, previous: PreviousResponse | None = None,
               store_response: bool = True, input_count: int | None = None,
               created: int = 0) -> tuple[str, TurnResult]:
    """Commit one turn answered with ``answer``; returns the response id and the result."""
    rid = new_id("resp_")
    response = None
    if store_response:
        response = NewResponse(
            id=rid, model="m", created=created or int(time.time()),
            request=ChatRequest(model="m", messages=messages, temperature=0.5),
            response=ChatResponse(id=rid, model="m", content=[Text(text=answer)]))
    result = await store.commit_turn(Turn(
        tenant=tenant, messages=messages, output=[assistant(answer)],
        input_count=len(messages) if input_count is None else input_count,
        thread_key=key, previous=previous, response=response))
    return rid, result


async def count_rows(store: SessionStore, table: str) -> int:
    """Rows in one of the store's tables (``messages``, ``branches``, ``responses``…)."""
    if isinstance(store, MemoryStore):
        attr: dict[str, Any] = {"messages": store._rows, "branches": store._branches,
                                "responses": store._responses, "threads": store._threads}
        if table == "messages":
            return sum(len(r) for r in store._rows.values())
        return len(attr[table])
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    assert isinstance(store, PostgresStore)
    conn = await asyncpg.connect(store.settings.dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()
