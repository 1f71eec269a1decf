"""The real Codex CLI, resumed on its session (``codex exec resume --last``), continues the
same dragoman thread: it sends the same ``session-id`` and resends the whole history, and
the thread grows by the new turn only. With a history-holding model, the upstream sees
the conversation once, not doubled."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from dragoman.sessions import StoreSettings, open_store
from tests.cli_clients import codex
from tests.fakes.upstream import OPENAI_KEY, TEXT, FakeUpstream
from tests.sessions.conftest import sessions_section, settings_for
from tests.sessions.helpers import count_rows
from tests.sessions.procs import GatewayProcess

pytestmark = pytest.mark.clients

KEY = "sk-codex-threads"
TENANT = "key-" + hashlib.sha256(KEY.encode()).hexdigest()[:12]


def _codex(url: str, tmp: Path, model: str, *args: str) -> str:
    proc = codex(url, tmp, *args, model=model, key=KEY, ephemeral=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


async def _thread(settings: StoreSettings) -> tuple[list[str], int]:
    """The one thread in the database: its messages, and how many branches exist."""
    store = open_store(settings)
    try:
        keys = await _thread_keys(settings)
        assert len(keys) == 1, keys  # one thread: the session id of both runs
        view = await store.thread_history(TENANT, keys[0])
        return [f"{m.role}:{m.text()}" for m in view.messages], await count_rows(store,
                                                                                "branches")
    finally:
        await store.aclose()


async def _thread_keys(settings: StoreSettings) -> list[str]:
    if settings.backend == "sqlite":
        with sqlite3.connect(settings.path or "") as c:
            return [r[0] for r in c.execute("SELECT key FROM threads")]
    conn = await asyncpg.connect(settings.dsn)
    try:
        return [r[0] for r in await conn.fetch("SELECT key FROM threads")]
    finally:
        await conn.close()


def test_codex_resume_continues_the_same_thread(backend: str, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    settings = settings_for(backend, tmp_path, request)
    config = {"server": {"api_keys": [KEY]}, "sessions": sessions_section(settings),
              "models": [{"name": "dragoman/echo", "provider": "echo"}]}
    with GatewayProcess(config, tmp_path) as gw:
        assert "first answer" in _codex(gw.url, tmp_path, "dragoman/echo",
                                         "::reply first answer")
        assert "second answer" in _codex(gw.url, tmp_path, "dragoman/echo", "resume", "--last",
                                         "::reply second answer")
    messages, branches = asyncio.run(_thread(settings))
    tail = ["user:::reply first answer", "assistant:first answer",
            "user:::reply second answer", "assistant:second answer"]
    assert messages[-4:] == tail
    for m in tail:
        assert messages.count(m) == 1
    assert branches == 1  # the resumed run extended the thread, it did not fork it


def test_codex_resume_on_a_history_holding_model_is_not_doubled(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    settings = settings_for("sqlite", tmp_path, request)
    with FakeUpstream() as fake:
        config = {"server": {"api_keys": [KEY]},
                  "sessions": {"backend": "sqlite", "path": settings.path},
                  "models": [{"name": "held", "provider": "openai_responses", "model": "gpt-5",
                              "base_url": fake.url + "/v1", "api_key": OPENAI_KEY,
                              "hold_history": True}]}
        with GatewayProcess(config, tmp_path) as gw:
            assert TEXT in _codex(gw.url, tmp_path, "held", "opening question zq1")
            assert TEXT in _codex(gw.url, tmp_path, "held", "resume", "--last",
                                  "follow-up question zq2")
        sent = fake.find("follow-up question zq2")[-1].json_text()
    assert sent.count("opening question zq1") == 1
    assert sent.count("follow-up question zq2") == 1
    assert sent.count(TEXT) == 1
