"""The SQLite backend's usage ledger writer on a thread of the gateway
(``sessions.ledger_writer: thread``, and the fallback when no writer process can start):
its own connection on its own thread, staging each batch (its parts, ``ledger_parts``)
and folding the staged batches into ``usage_ledger`` when no batch has come for ``QUIET``
seconds or after each batch under light traffic (``LedgerStage.light``), or a chunk after
each batch while more than ``FOLD_BOUND`` rows are staged: the same staging
and fold as the writer process (``ledger_staging``), one thread hop per batch staged and
per chunk folded.

Why a thread of its own (issue 17, bench/README.md, "The usage ledger's writes and the
event loop"): the sessions store's calls never queue behind a ledger write in the store's
pool. Why staged (bench/README.md, "The ledger's batches staged, folded when quiet"): a
row insert binds 19 values holding the gateway's GIL; staging binds four per batch, and
the rows are inserted when the gateway is quiet. A fold chunk holds the GIL while it binds
its rows (~5 ms for ``FOLD_CHUNK`` rows), which a request arriving in a pause may wait
for.

The thread keeps normal priority. At idle priority (``SCHED_IDLE`` or nice 19) it would
only take the time the loop leaves idle, but it holds the GIL while it binds a slice's
values: starved by other work on its core right then, it stalls the loop, which waits for
the GIL (bench/ledger_lag.py, loaded machine: the loop's p90 delay during writes 29-33 ms
against 1.8-2.6 ms at normal priority; bench/README.md, "The ledger writer's priority and
its cost per row").
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from .ledger_frames import Part
from .ledger_parts import encode_parts
from .ledger_staging import FOLD_BOUND, FOLD_CHUNK, QUIET, BatchKeys, LedgerStage, log
from .usage import UsageValues

__all__ = ["SqliteLedger"]


class SqliteLedger:
    def __init__(self, connect: Callable[[], sqlite3.Connection], insert_sql: str) -> None:
        self._stage = LedgerStage(connect, insert_sql)
        self._keys = BatchKeys()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dragoman-ledger")
        self._quiet: asyncio.TimerHandle | None = None
        self._folding: asyncio.Task[None] | None = None
        self._batches = 0  # batches staged: a quiet fold stops when this changes

    async def append(self, rows: list[UsageValues]) -> None:
        """Stage ``rows`` as one batch, committed when this returns."""
        await self.append_parts(self._keys(), await encode_parts(rows))

    async def append_parts(self, key: str, parts: Sequence[Part]) -> None:
        """Stage one batch already encoded, under ``key`` (the writer process's, when its
        batch comes here: staged once even if a killed child had staged it)."""
        loop = asyncio.get_running_loop()
        self._batches += 1
        await loop.run_in_executor(self._pool, self._stage.stage, key, parts)
        if self._stage.staged > FOLD_BOUND:
            await loop.run_in_executor(self._pool, self._stage.fold, FOLD_CHUNK)
        # (light traffic: no pause to wait for)
        self.fold_when_quiet(0.0 if self._stage.light else QUIET)

    def fold_leftovers(self) -> None:
        """Batches left staged by a previous run (the store found some): folded when
        quiet, as after a batch."""
        self.fold_when_quiet()

    def fold_when_quiet(self, after: float = QUIET) -> None:
        """Fold what is staged once no batch has come for ``after`` seconds."""
        if self._quiet is not None:
            self._quiet.cancel()
        loop = asyncio.get_running_loop()
        self._quiet = loop.call_later(after, self._start_fold)

    def _start_fold(self) -> None:
        self._quiet = None
        if self._folding is None or self._folding.done():
            self._folding = asyncio.get_running_loop().create_task(self._fold())

    async def _fold(self) -> None:
        loop = asyncio.get_running_loop()
        batches = self._batches
        try:
            left = 1  # (at least one chunk: leftovers, before this thread read any)
            while left and self._batches == batches:  # (a new batch: quiet again later)
                left = await loop.run_in_executor(self._pool, self._stage.fold, FOLD_CHUNK)
        except sqlite3.Error as e:
            log.error("folding the staged usage-ledger batches failed (%s: %s); they stay "
                      "staged, for the next fold or read", type(e).__name__, e)

    async def aclose(self) -> None:
        if self._quiet is not None:
            self._quiet.cancel()
        if self._folding is not None:
            self._folding.cancel()  # (a chunk under way finishes on the thread)
            with contextlib.suppress(asyncio.CancelledError):
                await self._folding
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Wait for a write under way, then close the connection (any thread)."""
        if self._quiet is not None:
            self._quiet.cancel()
        self._pool.shutdown(wait=True)
        self._stage.close()
