"""``SessionStore``: the interface every backend offers (semantics in the package
docstring), implemented once on top of the plans in ``plans.py``."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ..core import Conflict, DragomanError, Message, Overloaded, new_id
from . import plans
from .history import ThreadView
from .records import PreviousResponse, PurgeStats, StoredResponse, Turn, TurnResult
from .settings import StoreSettings
from .usage import GroupKey, UsageGroup, UsageQuery, UsageRow, UsageValues

log = logging.getLogger("dragoman.sessions")

R = TypeVar("R")

#: A history-holding turn keeps its thread leased for this long, renewed every third of
#: it while the turn runs; a process killed mid-turn frees the thread after at most this.
LEASE_MS = 30_000


class StoreError(Exception):
    """The store cannot be opened (bad path, server unreachable, schema too new). The
    message is safe to print: it never contains a password."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A history-holding turn's exclusive hold on a thread (``SessionStore.hold``)."""

    thread_id: str
    token: str


def _ms() -> int:
    return int(time.time() * 1000)


class SessionStore(abc.ABC):
    """Stored Responses and threads for one backend; safe for concurrent use by many
    requests and many processes (SQLite file or PostgreSQL server)."""

    #: Exceptions of the backend's driver that mean "the store is unavailable".
    unavailable: tuple[type[Exception], ...] = (OSError, StoreError)
    #: The most usage-ledger rows the server's batch writer hands ``append_usage`` at once
    #: (it sends one batch a second, and at once when this many are waiting).
    ledger_batch_rows = 500

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self._opened = False
        self._open_lock: asyncio.Lock | None = None
        #: Called with (operation, seconds) after every store operation (the metrics'
        #: store latency); None costs nothing.
        self.on_timing: Callable[[str, float], None] | None = None
        #: Usage-ledger records waiting to be appended (the server's batch writer sets
        #: it): the SQLite ledger's writer process is judged by it.
        self.ledger_backlog: Callable[[], float] | None = None

    # --- backend hooks ----------------------------------------------------------------------

    @abc.abstractmethod
    async def _open(self) -> None:
        """Connect and migrate the schema to the current version (idempotent)."""

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    async def _execute(self, plan: plans.Plan[R], write: bool) -> R:
        """Run ``plan`` in one transaction (``write``: it may modify rows)."""

    # --- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and migrate; called on first use anyway. Raises ``StoreError``."""
        if self._opened:
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if not self._opened:
                await self._open()
                self._opened = True

    async def aclose(self) -> None:
        if self._opened:
            self._opened = False
            await self._close()

    def closing(self) -> None:
        """The server's graceful shutdown has begun: the usage ledger's last batches follow
        (``append_usage``), then ``aclose``. A store whose ledger writer runs at a low
        priority writes them at once instead (``ledger_process``); the others have nothing
        to change."""
        return

    async def ping(self) -> None:
        """Raise unless the store answers a query (``/readyz``): one indexed lookup of a
        response id that cannot exist."""
        await self._run(plans.load_response("", "~ping", 0))

    def _run(self, plan: plans.Plan[R], write: bool = False) -> Awaitable[R]:
        # a plain function handing back the awaitable: untimed, a store call is one
        # coroutine (``_guarded``), not three
        work = self._guarded(plan, write)
        if self.on_timing is None:
            return work
        return self._timed(plan.__name__, work)  # type: ignore[attr-defined]

    async def _guarded(self, plan: plans.Plan[R], write: bool) -> R:
        """Run ``plan``; the driver's errors that mean "unavailable" reach the client as
        ``Overloaded`` (their text, which may name the server, only the log)."""
        try:
            await self.open()
            return await self._execute(plan, write)
        except DragomanError:
            raise
        except self.unavailable as e:
            log.error("session store failed: %s: %s", type(e).__name__, e)
            raise Overloaded("The session store is unavailable; please retry.",
                             code="session_store_unavailable") from None

    async def _timed(self, operation: str, work: Awaitable[R]) -> R:
        """Await ``work``, telling ``on_timing`` how long ``operation`` took (failed or
        not): the one place a store operation is timed."""
        timing = self.on_timing
        if timing is None:
            return await work
        started = time.perf_counter()
        try:
            return await work
        finally:
            timing(operation, time.perf_counter() - started)

    def _min_created(self) -> int:
        ttl = self.settings.ttl
        return int(time.time() - ttl) if ttl else 0

    def _min_updated(self) -> int:
        ttl = self.settings.ttl
        return _ms() - int(ttl * 1000) if ttl else 0

    # --- Responses state --------------------------------------------------------------------

    async def get_response(self, tenant: str, id: str) -> StoredResponse | None:
        """A stored response of ``tenant`` (None for another tenant's, or expired)."""
        return await self._run(plans.load_response(tenant, id, self._min_created()))

    async def previous(self, tenant: str, id: str) -> PreviousResponse | None:
        """The history ``previous_response_id`` continues: two indexed queries, whatever
        the length of the chain."""
        return await self._run(plans.load_previous(tenant, id, self._min_created()))

    async def response_input(self, tenant: str, id: str) -> list[Message] | None:
        """The input messages of a stored response (``input_items``), oldest first."""
        return await self._run(plans.load_input(tenant, id, self._min_created()))

    async def delete_response(self, tenant: str, id: str) -> bool:
        return await self._run(plans.delete_response(tenant, id), write=True)

    # --- threads and turns ------------------------------------------------------------------

    async def thread_history(self, tenant: str, key: str) -> ThreadView:
        """The main branch of thread ``key`` (an empty view if there is none)."""
        return await self._run(plans.thread_view(tenant, key, self._min_updated()))

    async def commit_turn(self, turn: Turn) -> TurnResult:
        """Record a completed turn in one transaction; returns once it is durable."""
        return await self._run(plans.commit_turn(turn, _ms(), self._min_updated()), write=True)

    @contextlib.asynccontextmanager
    async def hold(self, tenant: str, key: str, *, wait: float | None = None
                   ) -> AsyncIterator[Lease]:
        """Hold thread ``key`` exclusively (history-holding turns). Waits up to ``wait``
        seconds (default ``settings.lock_wait``) for a running turn to finish, then raises
        ``Conflict`` (409). Works across processes; renewed while held."""
        wait = self.settings.lock_wait if wait is None else wait
        token = new_id("lease_")
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            now = _ms()
            thread_id = await self._run(plans.take_lease(tenant, key, token, now,
                                                         now + LEASE_MS), write=True)
            if thread_id is not None:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise Conflict(f"Thread '{key[:100]}' is busy with another request; retry "
                               "when it has finished.", code="thread_busy")
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.25)
        lease = Lease(thread_id, token)
        renewer = asyncio.create_task(self._renew(lease))
        try:
            yield lease
        finally:
            renewer.cancel()
            release = asyncio.ensure_future(
                self._run(plans.release_lease(thread_id, token), write=True))
            with contextlib.suppress(DragomanError):  # else the lease expires by itself
                await asyncio.shield(release)

    async def _renew(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(LEASE_MS / 3000)
            try:
                await self._run(plans.renew_lease(lease.thread_id, lease.token,
                                                  _ms() + LEASE_MS), write=True)
            except DragomanError:
                log.warning("could not renew a thread lease; retrying")

    # --- agent turns ------------------------------------------------------------------------

    async def put_agent_turn(self, tenant: str, call_ids: list[str], data: bytes) -> None:
        """Keep an agent's hidden part of a turn (``data``, opaque here) under each of the
        client call ids the turn ended with, until the TTL (``dragoman.agents.turns``)."""
        await self._run(plans.put_agent_turn(tenant, call_ids, data, _ms()), write=True)

    async def get_agent_turn(self, tenant: str, call_id: str) -> bytes | None:
        """The record ``put_agent_turn`` kept for ``(tenant, call_id)`` (None for another
        tenant's, or expired)."""
        return await self._run(plans.load_agent_turn(tenant, call_id, self._min_updated()))

    # --- retention --------------------------------------------------------------------------

    async def purge(self, older_than: float) -> PurgeStats:
        """Delete stored responses and agent turns created, and threads and branches last
        written, more than ``older_than`` seconds ago (branches a newer fork reads are
        kept)."""
        before_ms = _ms() - int(older_than * 1000)
        return await self._run(plans.purge(before_ms // 1000, before_ms), write=True)

    # --- usage ledger (``usage.py``) ---------------------------------------------------------

    async def append_usage(self, rows: list[UsageValues]) -> None:
        """Append ledger rows (values in ``usage.COLUMNS`` order) in one transaction
        (durable when this returns)."""
        await self._run(plans.append_usage(rows), write=True)

    async def usage_rows(self, query: UsageQuery) -> list[UsageRow]:
        """Ledger rows matching ``query``, newest first."""
        return await self._run(plans.usage_rows(query))

    async def usage_groups(self, query: UsageQuery,
                           by: tuple[GroupKey, ...]) -> list[UsageGroup]:
        """Ledger sums per group of ``by`` (tenant, model, day) over rows matching
        ``query`` (its ``limit`` does not apply)."""
        return await self._run(plans.usage_groups(query, by))

