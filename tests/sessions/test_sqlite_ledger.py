"""The SQLite backend writes the usage ledger on a connection and thread of its own, a
batch in slices of ``SLICE`` rows (one thread hop each, the event loop free between them;
bench/README.md has why) but in one transaction: another worker's connection sees all of
a batch or none of it, the store's own calls answer meanwhile, a batch that fails half-way
leaves nothing behind, and one abandoned half-way does not block the next."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from dragoman.core import Overloaded
from dragoman.observe import BatchWriter
from dragoman.sessions import SessionStore, StoreSettings, open_store
from dragoman.sessions.sqlite import SqliteStore
from dragoman.sessions.sqlite_ledger import SLICE, SqliteLedger
from dragoman.sessions.usage import UsageQuery, UsageRow, UsageValues, row_values


def _rows(n: int, first: int = 0) -> list[UsageValues]:
    return [row_values(UsageRow(ts=1_700_000_000_000 + i, tenant="acme", model="gpt",
                                input_tokens=i)) for i in range(first, first + n)]


def _count(path: Path) -> int:
    with sqlite3.connect(path) as other:  # another worker's connection to the file
        return int(other.execute("SELECT count(*) FROM usage_ledger").fetchone()[0])


async def test_a_batch_of_many_slices_is_one_transaction(sqlite_store: SessionStore) -> None:
    assert isinstance(sqlite_store, SqliteStore)
    rows = _rows(3 * SLICE + 7)
    write = asyncio.create_task(sqlite_store.append_usage(rows))
    seen: set[int] = set()
    while not write.done():
        seen.add(_count(sqlite_store.path))
        # the store's own calls go on meanwhile (its pool is not the ledger's thread)
        seen.add(len(await sqlite_store.usage_rows(UsageQuery(limit=10_000))))
    await write
    assert seen <= {0, len(rows)}
    got = await sqlite_store.usage_rows(UsageQuery(limit=10_000))
    assert [r.input_tokens for r in got] == list(reversed(range(len(rows))))


async def test_a_batch_failing_half_way_leaves_nothing(sqlite_store: SessionStore) -> None:
    assert isinstance(sqlite_store, SqliteStore)
    bad = list(_rows(1, SLICE + 1)[0])
    bad[1] = None  # tenant NOT NULL: the second slice fails
    rows = [*_rows(SLICE + 1), tuple(bad), *_rows(SLICE, SLICE + 2)]
    with pytest.raises(sqlite3.IntegrityError):
        await sqlite_store.append_usage(rows)
    assert _count(sqlite_store.path) == 0
    await sqlite_store.append_usage(_rows(2))  # the writer is usable again
    assert _count(sqlite_store.path) == 2


async def test_a_batch_abandoned_half_way_is_rolled_back(tmp_path: Path) -> None:
    """A write task cancelled between two slices (its transaction left open) neither
    commits its first slice nor blocks the next batch (the thread writer's slices; the
    writer process's are tested in test_ledger_process.py)."""
    sqlite_store = open_store(StoreSettings(backend="sqlite", ledger_writer="thread",
                                            path=str(tmp_path / "sessions.db")))
    await sqlite_store.open()
    try:
        await _abandon_half_way(sqlite_store)
    finally:
        await sqlite_store.aclose()


async def _abandon_half_way(sqlite_store: SessionStore) -> None:
    assert isinstance(sqlite_store, SqliteStore)
    ledger = sqlite_store._ledger
    assert isinstance(ledger, SqliteLedger)
    loop = asyncio.get_running_loop()
    # what the first hop of a several-slice batch does, and then nothing more
    await loop.run_in_executor(ledger._pool, ledger._write, _rows(SLICE), True, False)
    await sqlite_store.append_usage(_rows(3, 100))
    got = await sqlite_store.usage_rows(UsageQuery())
    assert sorted(r.input_tokens for r in got) == [100, 101, 102]


async def test_ledger_writes_are_timed_like_plans_but_keep_the_driver_error(
        sqlite_store: SessionStore) -> None:
    """One timing mechanism (``SessionStore._timed``) for the plans and the ledger's own
    writer, failed calls included; a plan's driver error reaches the caller as
    ``Overloaded``, a ledger write's as the driver raised it (the batch writer's)."""
    assert isinstance(sqlite_store, SqliteStore)
    timed: list[str] = []
    sqlite_store.on_timing = lambda operation, seconds: timed.append(operation)
    await sqlite_store.append_usage(_rows(2))
    await sqlite_store.usage_rows(UsageQuery())
    bad = list(_rows(1)[0])
    bad[1] = None  # tenant NOT NULL
    with pytest.raises(sqlite3.IntegrityError):
        await sqlite_store.append_usage([tuple(bad)])
    with sqlite3.connect(sqlite_store.path) as other:
        other.execute("DROP TABLE usage_ledger")
    with pytest.raises(Overloaded):
        await sqlite_store.usage_rows(UsageQuery())
    with pytest.raises(sqlite3.OperationalError):
        await sqlite_store.append_usage(_rows(1))
    assert timed == ["append_usage", "usage_rows", "append_usage", "usage_rows",
                     "append_usage"]


async def test_two_flushes_at_once_write_every_record_once(
        sqlite_store: SessionStore) -> None:
    """A flush called while the background writer's is under way (bench/ledger_lag.py
    does) waits for it: two batches' slices interleaved on the one connection would have
    the second ``BEGIN`` roll the first batch back half-way."""
    assert isinstance(sqlite_store, SqliteStore)
    writer: BatchWriter[UsageValues] = BatchWriter(sqlite_store.append_usage,
                                                   interval=3600, max_batch=3 * SLICE)
    rows = _rows(6 * SLICE)
    for r in rows:
        writer.add(r)
    assert await asyncio.gather(writer.flush(), writer.flush()) == [True, True]
    assert _count(sqlite_store.path) == len(rows) and writer.pending == 0
    got = await sqlite_store.usage_rows(UsageQuery(limit=10_000))
    assert sorted(r.input_tokens for r in got) == list(range(len(rows)))
