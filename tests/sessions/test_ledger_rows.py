"""What makes a SQLite usage-ledger row cheaper to write (bench/README.md, "A usage-ledger
row for less") keeps every value and every query: the writer process binds None as NaN
and a bool as 0/1 (SQLite stores NULL and the integer, as before), schema version 4
drops the ``(tenant, ts)`` index of an existing database and keeps its rows, and the
admin API's time-range and tenant queries still search ``usage_ledger_ts``."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from dragoman.sessions import StoreSettings, open_store
from dragoman.sessions.schema import SQLITE
from dragoman.sessions.usage import (
    COLUMNS,
    UsageQuery,
    UsageRow,
    group_sql,
    row_values,
    select_sql,
)

#: values at the edges of what each column type carries
EDGES = [
    UsageRow(ts=2**63 - 1, tenant="ténant ☃ 𝄞", key_id=None, model="m\x00odel\n\"'\\",
             deployment="", provider="p\x01\x1f\x7f", dialect="d", stream=True,
             input_tokens=2**63 - 1, output_tokens=0, cached_tokens=-(2**63),
             reasoning_tokens=1, cost=0.1 + 0.2, latency_ms=5e-324, ttft_ms=None,
             upstream_ms=1.7976931348623157e308, status=599, outcome="ok", thread=None),
    UsageRow(ts=1, tenant="t", key_id="\u2028key", model="m", stream=False, cost=math.inf,
             latency_ms=-0.0, ttft_ms=1e-300, upstream_ms=None, thread="\x00"),
]


def _raw(path: Path) -> list[tuple[object, ...]]:
    """Each row's values and SQLite's type of each, as another connection reads them."""
    cols = ", ".join(f"{c}, typeof({c})" for c in COLUMNS)
    with sqlite3.connect(path) as conn:
        return list(conn.execute(f"SELECT {cols} FROM usage_ledger ORDER BY ts"))


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_every_value_is_stored_as_bound_by_either_writer(tmp_path: Path,
                                                                writer: str) -> None:
    store = open_store(StoreSettings(backend="sqlite", ledger_writer=writer,
                                     path=str(tmp_path / "sessions.db")))
    await store.open()
    try:
        await store.append_usage([row_values(r) for r in EDGES])
        got = await store.usage_rows(UsageQuery())
    finally:
        await store.aclose()
    assert sorted(got, key=lambda r: r.ts) == sorted(EDGES, key=lambda r: r.ts)
    # what is stored, not just what reads back: NULL (not a NaN), 0/1 integers for the
    # booleans, integers and reals as such
    with sqlite3.connect(":memory:") as ref:
        ref.execute(f"CREATE TABLE t ({', '.join(COLUMNS)})")
        ref.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(COLUMNS))})",
                        [tuple(int(v) if isinstance(v, bool) else v for v in row_values(r))
                         for r in EDGES])
        cols = ", ".join(f"{c}, typeof({c})" for c in COLUMNS)
        expected = list(ref.execute(f"SELECT {cols} FROM t ORDER BY ts"))
    assert _raw(tmp_path / "sessions.db") == expected
    types = expected[1][1::2]
    assert (types[COLUMNS.index("ttft_ms")], types[COLUMNS.index("stream")]) == ("null",
                                                                                 "integer")


def database_at(path: Path, schema: int, rows: list[tuple[object, ...]]) -> None:
    """A sessions database as an older dragoman left it: migrated up to version
    ``schema``, with ``rows`` (values) in its ledger."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE dragoman_schema (version INTEGER NOT NULL, "
                     "applied INTEGER NOT NULL)")
        for v, version in enumerate(SQLITE[:schema], 1):
            for stmt in version:
                conn.execute(stmt)
            conn.execute("INSERT INTO dragoman_schema VALUES (?, 0)", (v,))
        conn.executemany(f"INSERT INTO usage_ledger ({', '.join(COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(COLUMNS))})",
                         [tuple(int(v) if isinstance(v, bool) else v for v in row)
                          for row in rows])


async def test_a_version_3_database_loses_the_tenant_index_and_keeps_its_rows(
        tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    database_at(path, 3, [row_values(EDGES[1])])
    store = open_store(StoreSettings(backend="sqlite", path=str(path)))
    await store.open()
    try:
        await store.append_usage([row_values(EDGES[0])])
        got = await store.usage_rows(UsageQuery())
    finally:
        await store.aclose()
    assert sorted(got, key=lambda r: r.ts) == sorted(EDGES, key=lambda r: r.ts)
    with sqlite3.connect(path) as conn:
        indexes = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_ledger'")}
        versions = [r[0] for r in conn.execute("SELECT version FROM dragoman_schema")]
    assert indexes == {"usage_ledger_ts"}
    assert versions == [1, 2, 3, 4, 5] == list(range(1, len(SQLITE) + 1))


def _plan(path: Path, sql: str, args: list[object]) -> str:
    with sqlite3.connect(path) as conn:
        return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))


@pytest.mark.parametrize("query", [
    UsageQuery(since=1, until=2),
    UsageQuery(since=1),
    UsageQuery(tenant="acme", since=1, until=2),
    UsageQuery(tenant="acme", model="m", since=1),
])
async def test_time_range_queries_search_the_time_index(tmp_path: Path,
                                                        query: UsageQuery) -> None:
    path = tmp_path / "sessions.db"
    store = open_store(StoreSettings(backend="sqlite", path=str(path)))
    await store.open()
    await store.aclose()
    search = "SEARCH usage_ledger USING INDEX usage_ledger_ts (ts>?"
    rows_plan = _plan(path, *select_sql(query, lambda i: f"?{i}"))
    assert search in rows_plan and "TEMP B-TREE" not in rows_plan  # newest first, no sort
    for by in ((), ("tenant",), ("tenant", "model")):
        sql, args = group_sql(query, by, lambda i: f"?{i}", "ts")
        assert search in _plan(path, sql, args)


async def test_a_tenant_s_newest_rows_walk_the_time_index_without_sorting(
        tmp_path: Path) -> None:
    """No time range: the rows list reads ``usage_ledger_ts`` backwards and stops at its
    limit, rather than reading the whole table and sorting it."""
    path = tmp_path / "sessions.db"
    store = open_store(StoreSettings(backend="sqlite", path=str(path)))
    await store.open()
    await store.aclose()
    plan = _plan(path, *select_sql(UsageQuery(tenant="acme", limit=10), lambda i: f"?{i}"))
    assert plan == "SCAN usage_ledger USING INDEX usage_ledger_ts"
