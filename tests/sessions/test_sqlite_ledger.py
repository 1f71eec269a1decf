"""The SQLite backend writes the usage ledger on a connection of its own (a writer process
or a thread), each batch staged as one row and folded into ``usage_ledger`` later
(``ledger_staging``; bench/README.md has why): another worker's connection sees all of a
batch or none of it, the store's own calls answer meanwhile, a batch whose rows cannot be
inserted is kept aside whole without blocking the others, and the thread writer stages and
folds as the process does."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from dragoman.core import Overloaded
from dragoman.observe import BatchWriter
from dragoman.sessions import SessionStore, StoreSettings, open_store
from dragoman.sessions.ledger_inserts import SLICE
from dragoman.sessions.ledger_staging import LIGHT_BATCH, LIGHT_RUN, QUIET
from dragoman.sessions.sqlite import SqliteStore
from dragoman.sessions.sqlite_ledger import SqliteLedger
from dragoman.sessions.usage import UsageQuery, UsageRow, UsageValues, row_values


def _rows(n: int, first: int = 0) -> list[UsageValues]:
    return [row_values(UsageRow(ts=1_700_000_000_000 + i, tenant="acme", model="gpt",
                                input_tokens=i)) for i in range(first, first + n)]


def _count(path: Path) -> int:
    """The records in the database, folded or still staged, as another worker's
    connection to the file reads them."""
    with sqlite3.connect(path) as other:
        folded = other.execute("SELECT count(*) FROM usage_ledger").fetchone()[0]
        staged = other.execute("SELECT coalesce(sum(rows), 0) FROM usage_staged "
                               "WHERE rows > 0").fetchone()[0]
    return int(folded) + int(staged)


def _folded(path: Path) -> int:
    """The rows in ``usage_ledger`` alone."""
    with sqlite3.connect(path) as other:
        return int(other.execute("SELECT count(*) FROM usage_ledger").fetchone()[0])


def _staged(path: Path) -> list[tuple[int, bool]]:
    """Each row of ``usage_staged``: its ``rows`` and whether it still has its frame."""
    with sqlite3.connect(path) as other:
        return [(n, f) for n, f in other.execute(
            "SELECT rows, frame IS NOT NULL FROM usage_staged ORDER BY rowid")]


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


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_a_batch_that_cannot_be_inserted_is_kept_aside_whole(
        tmp_path: Path, writer: str, caplog: pytest.LogCaptureFixture) -> None:
    """Staged as any batch (staging does not look inside); the fold inserts none of its
    rows, keeps its frame with its ``rows`` negated, logs an error, and folds the batches
    after it."""
    store = open_store(StoreSettings(backend="sqlite", ledger_writer=writer,
                                     path=str(tmp_path / "sessions.db")))
    await store.open()
    try:
        bad = list(_rows(1, SLICE + 1)[0])
        bad[1] = None  # tenant NOT NULL: the second slice fails
        await store.append_usage(_rows(2, 1000))
        await store.append_usage([*_rows(SLICE + 1), tuple(bad), *_rows(SLICE, SLICE + 2)])
        # (not light: the process's writer would fold the batch before at once, logging
        # the error in its own stderr, not here)
        await store.append_usage(_rows(LIGHT_BATCH, 2000))
        got = await store.usage_rows(UsageQuery(limit=10_000))
    finally:
        await store.aclose()
    assert sorted(r.input_tokens for r in got) == [1000, 1001,
                                                   *range(2000, 2000 + LIGHT_BATCH)]
    assert _staged(tmp_path / "sessions.db") == [(0, False), (-(2 * SLICE + 2), True),
                                                 (0, False)]
    assert "cannot be inserted" in caplog.text


async def test_the_thread_writer_stages_and_folds_when_quiet(tmp_path: Path) -> None:
    """``ledger_writer: thread``: each batch one staged row (a hop of the ledger's thread),
    folded by that thread once no batch has come for ``QUIET`` seconds; under light
    traffic (``LIGHT_RUN`` batches in a row of fewer than ``LIGHT_BATCH`` rows) right after
    each batch."""
    store = open_store(StoreSettings(backend="sqlite", ledger_writer="thread",
                                     path=str(tmp_path / "sessions.db")))
    await store.open()
    n = LIGHT_BATCH
    try:
        assert isinstance(store, SqliteStore) and isinstance(store._ledger, SqliteLedger)
        await store.append_usage(_rows(n))
        await store.append_usage(_rows(n + 1, n))
        assert _staged(store.path) == [(n, True), (n + 1, True)]
        assert _folded(store.path) == 0
        await asyncio.sleep(QUIET + 1.5)
        assert _staged(store.path) == [(0, False), (0, False)]
        assert _folded(store.path) == 2 * n + 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(LIGHT_RUN):
            assert _folded(store.path) == 2 * n + 1  # (light batches before: staged)
            await store.append_usage(_rows(3, 2 * n + 1 + 3 * i))
        while _folded(store.path) < 2 * n + 1 + 3 * LIGHT_RUN and loop.time() < start + 30:
            await asyncio.sleep(0.01)
        assert _folded(store.path) == 2 * n + 1 + 3 * LIGHT_RUN
        assert loop.time() < start + QUIET  # folded after the batch, not when quiet
        got = await store.usage_rows(UsageQuery(limit=1000))
        assert sorted(r.input_tokens for r in got) == list(range(2 * n + 1 + 3 * LIGHT_RUN))
    finally:
        await store.aclose()


async def test_ledger_writes_are_timed_like_plans_but_keep_the_driver_error(
        sqlite_store: SessionStore) -> None:
    """One timing mechanism (``SessionStore._timed``) for the plans and the ledger's own
    writer, failed calls included; a plan's driver error reaches the caller as
    ``Overloaded``, a ledger write's as the driver raised it (the batch writer's)."""
    assert isinstance(sqlite_store, SqliteStore)
    timed: list[str] = []
    sqlite_store.on_timing = lambda operation, seconds: timed.append(operation)
    # (not a light batch: its writer would fold it at once, before the read below)
    await sqlite_store.append_usage(_rows(LIGHT_BATCH))
    await sqlite_store.usage_rows(UsageQuery())  # a fold (a chunk, then none), the read
    with sqlite3.connect(sqlite_store.path) as other:
        other.execute("DROP TABLE usage_ledger")
    with pytest.raises(Overloaded):
        await sqlite_store.usage_rows(UsageQuery())
    with sqlite3.connect(sqlite_store.path) as other:
        other.execute("DROP TABLE usage_staged")
    with pytest.raises(sqlite3.OperationalError):
        await sqlite_store.append_usage(_rows(1))
    assert timed == ["append_usage", "fold_staged_usage", "fold_staged_usage", "usage_rows",
                     "fold_staged_usage", "usage_rows", "append_usage"]


async def test_two_flushes_at_once_write_every_record_once(
        sqlite_store: SessionStore) -> None:
    """A flush called while the background writer's is under way (bench/ledger_lag.py
    does) waits for it: the writer takes one batch at a time."""
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
