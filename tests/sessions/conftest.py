"""Backends for the sessions suite: every test taking ``backend``/``store`` runs on SQLite
and on a real PostgreSQL server (started once per session, see tests/infra/postgres.py),
and store-level tests on the memory backend too. Each PostgreSQL test gets its own schema
(``search_path`` in the DSN), so tests never see each other's rows."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dragoman.core import new_id
from dragoman.sessions import SessionStore, StoreSettings, open_store
from tests.infra.postgres import PostgresMissing, running_postgres


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    try:
        cm = running_postgres()
        dsn = cm.__enter__()
    except PostgresMissing as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e}; scripts/test installs it on CI")
        pytest.skip(str(e))
    try:
        yield dsn
    finally:
        cm.__exit__(None, None, None)


def fresh_schema_dsn(server_dsn: str) -> str:
    """A DSN whose connections live in a new, empty schema."""
    schema = new_id("t_")

    async def create() -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(f"CREATE SCHEMA {schema}")
        finally:
            await conn.close()

    # In a thread of its own: callers may be inside the test session's event loop.
    with ThreadPoolExecutor(1) as ex:
        ex.submit(asyncio.run, create()).result()
    return f"{server_dsn}?search_path={schema}"


def settings_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                 **kw: Any) -> StoreSettings:
    if backend == "postgres":
        dsn = fresh_schema_dsn(request.getfixturevalue("pg_server"))
        return StoreSettings(backend="postgres", dsn=dsn, **kw)
    if backend == "sqlite":
        return StoreSettings(backend="sqlite", path=str(tmp_path / "sessions.db"), **kw)
    return StoreSettings(backend="memory", **kw)


def sessions_section(settings: StoreSettings) -> dict[str, Any]:
    """The ``sessions:`` config section of a gateway process on the same database."""
    if settings.backend == "postgres":
        return {"backend": "postgres", "dsn": settings.dsn}
    return {"backend": "sqlite", "path": settings.path}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_settings(store_backend: str, tmp_path: Path,
                   request: pytest.FixtureRequest) -> StoreSettings:
    return settings_for(store_backend, tmp_path, request)


@pytest.fixture
async def store(store_settings: StoreSettings) -> AsyncIterator[SessionStore]:
    s = open_store(store_settings)
    await s.open()
    try:
        yield s
    finally:
        await s.aclose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """A durable backend, for tests against gateway processes."""
    return str(request.param)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A SQLite store in its default configuration (the ledger's writer process)."""
    s = open_store(StoreSettings(backend="sqlite", path=str(tmp_path / "sessions.db")))
    await s.open()
    try:
        yield s
    finally:
        await s.aclose()
