"""A ledger batch in parts (``ledger_parts``): encoded a slice at a time with the loop
turning between slices, each part decoding to its rows; the SQLite store takes a second's
records as one batch (``ledger_batch_rows``) from the server's batch writer, stages its
parts in one transaction under one key, folds them in order, and turns a resend of the
whole batch away."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec

from dragoman.router import ModelTable
from dragoman.router.usage import UsageAccounting
from dragoman.server.operations import Operations
from dragoman.sessions import SessionStore
from dragoman.sessions.ledger_inserts import connect
from dragoman.sessions.ledger_parts import PART_ROWS, SLICE_ROWS, encode_parts
from dragoman.sessions.ledger_staging import LedgerStage
from dragoman.sessions.sqlite import _INSERT_USAGE, SqliteStore
from dragoman.sessions.usage import UsageQuery
from tests.sessions.test_sqlite_ledger import _folded, _rows, _staged


def _keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as other:
        return [k for (k,) in other.execute("SELECT batch FROM usage_staged ORDER BY rowid")]


async def test_parts_decode_to_the_rows_and_the_loop_turns_between_slices() -> None:
    rows = _rows(2 * PART_ROWS + 234)
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1
    ticker = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    try:
        parts = await encode_parts(rows)
    finally:
        ticker.cancel()
    assert [n for n, _ in parts] == [PART_ROWS, PART_ROWS, 234]
    decode = msgspec.msgpack.Decoder().decode
    assert [row for _, data in parts for row in decode(data)] == [list(r) for r in rows]
    assert turns >= len(rows) // SLICE_ROWS  # (a turn after each slice)
    # a part of fewer than 16 rows has a one-byte array header, one of more three
    for n in (1, 15, 16, SLICE_ROWS + 1):
        [(count, data)] = await encode_parts(rows[:n])
        assert count == n and decode(data) == [list(r) for r in rows[:n]]


async def test_a_second_s_records_are_one_batch_staged_in_parts(
        sqlite_store: SessionStore) -> None:
    """The server's batch writer (``Operations``) hands the SQLite store up to
    ``ledger_batch_rows`` records at once: 1,200 records waiting are one batch, staged as
    three parts in one transaction under one key, and read back in order."""
    assert isinstance(sqlite_store, SqliteStore)
    ops = Operations(ModelTable([]), sqlite_store, UsageAccounting(), admin=False)
    assert ops.ledger.max_batch == SqliteStore.ledger_batch_rows > 2 * PART_ROWS
    for row in _rows(1200):
        ops.ledger.add(row)
    assert await ops.ledger.flush()
    assert _staged(sqlite_store.path) == [(500, True), (500, True), (200, True)]
    keys = _keys(sqlite_store.path)
    prefix = keys[0].rsplit("/", 1)[0]
    assert keys == [f"{prefix}/{i}" for i in range(3)]
    got = await sqlite_store.usage_rows(UsageQuery(limit=2000))
    assert [r.input_tokens for r in got] == list(reversed(range(1200)))
    assert _folded(sqlite_store.path) == 1200


async def test_a_resent_batch_of_parts_is_staged_once(sqlite_store: SessionStore) -> None:
    assert isinstance(sqlite_store, SqliteStore)
    path = sqlite_store.path
    stage = LedgerStage(lambda: connect(path, 10.0), _INSERT_USAGE)
    parts = await encode_parts(_rows(PART_ROWS + 3))
    stage.stage("gw-7", parts)
    stage.stage("gw-7", parts)  # resent (its writer died before answering)
    assert stage.staged == PART_ROWS + 3
    stage.close()
    assert _staged(path) == [(PART_ROWS, True), (3, True)]
    got = await sqlite_store.usage_rows(UsageQuery(limit=2000))
    assert sorted(r.input_tokens for r in got) == list(range(PART_ROWS + 3))
