"""``dragoman sessions purge``, the ``sessions:`` config section, and what a client sees
when a turn cannot be saved (it is then not acknowledged)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

import dragoman
from dragoman.config import ConfigError, parse_config
from dragoman.providers import EchoProvider
from dragoman.sessions import open_store
from dragoman.sessions.memory import MemoryStore
from dragoman.sessions.plans import Plan
from tests.gateway_proc import free_port
from tests.sessions.conftest import sessions_section, settings_for
from tests.sessions.helpers import count_rows, turn, user


def _purge(config: Path, older_than: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dragoman.cli", "sessions", "purge",
                           "--older-than", older_than, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


async def test_purge_command(backend: str, tmp_path: Path,
                             request: pytest.FixtureRequest) -> None:
    settings = settings_for(backend, tmp_path, request)
    store = open_store(settings)
    try:
        old, _ = await turn(store, "t", [user("old")], "a", created=int(time.time()) - 3 * 86400)
        await turn(store, "t", [user("kept")], "b")
    finally:
        await store.aclose()
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"sessions": sessions_section(settings)}))
    res = await asyncio.to_thread(_purge, cfg, "2d")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("purged 1 stored responses")
    store = open_store(settings)
    try:
        assert await store.get_response("t", old) is None
        assert await count_rows(store, "responses") == 1
    finally:
        await store.aclose()
    bad = await asyncio.to_thread(_purge, cfg, "2 days")
    assert bad.returncode == 2 and "invalid duration" in bad.stderr
    if backend == "postgres":  # an unreachable server is reported without the password
        cfg.write_text(yaml.safe_dump({"sessions": {
            "backend": "postgres", "dsn": "postgresql://u:hunter2@127.0.0.1:1/db"}}))
        res = await asyncio.to_thread(_purge, cfg, "1d")
        assert res.returncode != 0 and "127.0.0.1:1/db" in res.stderr
        assert "hunter2" not in res.stderr + res.stdout


@pytest.mark.parametrize(("section", "message"), [
    ({"backend": "redis"}, "$.sessions.backend"),
    ({"backend": "postgres"}, "`$.sessions.dsn` is required"),
    ({"ttl": "forever"}, "`$.sessions.ttl`"),
    ({"lock_wait": -1}, "`$.sessions.lock_wait`"),
    ({"pool_size": 0}, "$.sessions.pool_size"),
    ({"path": "x", "colour": "blue"}, "colour"),
])
def test_sessions_config_errors_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"sessions": section}).sessions.settings()
    assert message in str(e.value)


def test_sessions_config_defaults_and_secret_free_repr() -> None:
    s = parse_config({}).sessions.settings()
    assert s.backend == "sqlite" and s.ttl == 30 * 86400 and s.record_threads
    assert str(s.sqlite_path()).endswith("dragoman/sessions.db")
    cfg = parse_config({"sessions": {"backend": "postgres", "ttl": None,
                                     "dsn": "postgresql://u:hunter2@db/x"}})
    assert cfg.sessions.settings().ttl is None
    assert "hunter2" not in repr(cfg.sessions) + repr(cfg.sessions.settings())


class BrokenStore(MemoryStore):
    """Reads work; every write fails like a database that went away."""

    async def _execute(self, plan: Plan[Any], write: bool) -> Any:
        if write:
            plan.close()
            raise OSError("disk I/O error")
        return await super()._execute(plan, write)


@contextlib.asynccontextmanager
async def _served(store: MemoryStore) -> AsyncIterator[openai.AsyncOpenAI]:
    gw = dragoman.Gateway(dragoman.ModelTable([dragoman.Deployment("echo", EchoProvider())]),
                          sessions=store)
    port = free_port()
    task = asyncio.create_task(dragoman.serve(gw, port=port))
    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x",
                                max_retries=0)
    try:
        for _ in range(100):
            try:
                await client.models.list()
                break
            except openai.APIConnectionError:
                await asyncio.sleep(0.05)
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await task


async def test_a_turn_that_cannot_be_saved_is_not_acknowledged() -> None:
    async with _served(BrokenStore()) as client:
        with pytest.raises(openai.APIStatusError) as e:
            await client.responses.create(model="echo", input="::reply hi")
        assert e.value.status_code == 503
        assert e.value.body["code"] == "session_store_unavailable"  # type: ignore[index]
        assert "disk" not in str(e.value.body)  # internals stay in the server log
        stream = await client.responses.create(model="echo", input="::reply hi", stream=True)
        types = [ev.type async for ev in stream]
        assert "response.completed" not in types
        assert types[-1] in ("response.failed", "error")
        # Not storing is fine: store=false never touches the store.
        ok = await client.responses.create(model="echo", input="::reply fine", store=False)
        assert ok.output_text == "fine"
