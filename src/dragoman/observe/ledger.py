"""``BatchWriter``: records handed over on the request path, written elsewhere in batches.

A request only appends its record to a list (``add``: no I/O, no await); a background
task writes what has gathered every ``interval`` seconds, or at once when ``max_batch``
records are waiting, in one call of ``sink`` (one transaction of the usage ledger). A
failed write keeps its records and is retried with a back-off; beyond ``max_pending``
the oldest are dropped, with an error in the log, rather than growing without bound while
the database is down. ``aclose`` (the server's graceful shutdown) writes everything still
waiting before it returns, so a record of a request that finished is never lost to a
SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger("dragoman.observe")

MAX_BACKOFF = 30.0


class BatchWriter(Generic[T]):
    def __init__(self, sink: Callable[[list[T]], Awaitable[None]], *, interval: float = 1.0,
                 max_batch: int = 500, max_pending: int = 100_000,
                 what: str = "usage ledger") -> None:
        self._sink = sink
        self.interval = interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._what = what
        self._pending: list[T] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._closing = False
        #: one flush at a time: two would interleave their batches' slices on the one
        #: connection (a flush called while the background writer's runs)
        self._flushing = asyncio.Lock()
        self.dropped = 0

    def add(self, item: T) -> None:
        """Queue one record (an append; the writer is woken when a batch is full)."""
        pending = self._pending
        pending.append(item)
        if len(pending) == self.max_batch and self._wake is not None:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start the background writer in the running loop (idempotent)."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            delay = self.interval if not self._failures else \
                min(MAX_BACKOFF, self.interval * 2 ** self._failures)
            # asyncio.timeout, not wait_for: on 3.11 wait_for wraps the wait in a task of
            # its own, a new one every interval for the gateway's whole life
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            # What is waiting now, not what arrives meanwhile: otherwise, with requests
            # arriving during each write, one flush went on writing a few rows at a time
            # back to back (300 writes a second at one connection, bench/README.md, "The
            # ledger writer at idle priority"), each a wake-up of the writer and a COMMIT.
            async with self._flushing:
                await self._flush(len(self._pending))

    async def flush(self) -> bool:
        """Write everything waiting; False (records kept) when the write failed."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self, upto: int | None = None) -> bool:
        """Write the waiting records: the first ``upto``, or until none is left (those
        arriving meanwhile too)."""
        while self._pending and (upto is None or upto > 0):
            batch = self._pending[:self.max_batch if upto is None else min(upto, self.max_batch)]
            del self._pending[:len(batch)]
            try:
                await self._sink(batch)
            except Exception as e:
                self._pending[:0] = batch  # put back, in order, for the next try
                self._failures += 1
                self._bound()
                log.warning("writing %d %s records failed (kept, retried): %s: %s",
                            len(batch), self._what, type(e).__name__, e)
                return False
            self._failures = 0
            if upto is not None:
                upto -= len(batch)
        return True

    def _bound(self) -> None:
        excess = len(self._pending) - self.max_pending
        if excess > 0:
            del self._pending[:excess]
            self.dropped += excess
            log.error("dropped the %d oldest %s records: the store has been failing for a "
                      "while and %d are waiting", excess, self._what, self.max_pending)

    async def aclose(self, attempts: int = 5) -> None:
        """Stop the background writer and write what is left (a few tries, a short
        pause between them, when the store fails)."""
        task, self._task = self._task, None
        if task is not None:
            # Not cancelled: a write under way finishes (cancelling it could lose its batch,
            # or write it twice when the database committed it anyway).
            self._closing = True
            assert self._wake is not None
            self._wake.set()
            await task
        for i in range(attempts):
            if await self.flush():
                return
            await asyncio.sleep(0.2 * (i + 1))
        if self._pending:
            log.error("lost %d %s records at shutdown: the store kept failing",
                      len(self._pending), self._what)
