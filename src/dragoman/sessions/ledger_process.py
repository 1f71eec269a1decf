"""The SQLite usage ledger written by a child process (``ledger_writer``), so that its
SQLite work runs under the child's GIL, not the gateway's (bench/README.md, "The ledger
writer in a process of its own").

``append`` sends a batch (one msgpack frame, ``ledger_frames.batch_frame``, with a key of
its own, ``ledger_staging.BatchKeys``) and returns when the child has answered that it
committed it: staged as one row (``ledger_staging``), a flush still means "on disk". The
child's error comes back as the same ``sqlite3`` error class (``IntegrityError``…), so the
batch writer keeps and retries the batch. A child that died (killed, crashed) is started
again and the unanswered batch resent with the same key: no record is lost, and one the
dead child had committed between its ``COMMIT`` and its answer is not staged twice
(``INSERT OR IGNORE`` on the key; before staging it was written twice). A child that
cannot start at all (no usable ``sys.executable``, a broken installation) makes this writer
fall back, for good and with a warning, to the thread (``sqlite_ledger``).

**Priority** (bench/README.md, "The ledger writer at idle priority"): the child runs at
``nice`` (a nice value) or, with ``idle=True``, at Linux's ``SCHED_IDLE``, where a waking
event loop on its core preempts it at once, but where it also starves while the loop keeps
the core busy, perhaps inside its transaction, holding the SQLite write lock that the
sessions store's own writes need. Staging a batch takes a fraction of a millisecond of
CPU, so an idle child starves only when the gateway's core is saturated. Hence the
**catch-up rule**, keyed on the backlog actually growing: an idle child that has not
answered a batch (or its start) while the records waiting behind it (``backlog``: the
batch writer's records waiting) grew by ``BACKLOG_GROWTH``, or at all within
``starved_after`` seconds (a stopped child; the last batches at shutdown, which no backlog
follows), is killed (SQLite rolls its transaction back), an answer it had written
meanwhile is still read, and the batch goes to a new child at ``nice``. That child writes
as long as records wait: at the first answer after which fewer than ``HOLD_BELOW`` wait,
the hold ends, and the next batch goes to a new idle child (the nice one's stdin closed: it
ends there). (An unprivileged process cannot go back from ``SCHED_IDLE`` to a normal
policy, nor can its parent raise it: hence a new child rather than the same one raised.)

**Shutdown.** ``closing`` (the server's graceful shutdown has begun; the batch writer's
last flush follows) ends the wait for an idle child's answer at once: on a machine kept
busy by other processes an idle child may not run for seconds, and a wait of
``starved_after`` plus a new child's start could outlast the grace period before the
SIGKILL (docker's is 10 s), losing the last batches. The child is killed (its transaction,
a fold's or an unanswered batch's, rolled back; an answer it had written is still read)
and the last batches are staged by this process, on the thread writer
(``sqlite_ledger``), at the gateway's own priority: no process starts during a shutdown.

``aclose`` (the store's graceful close, after the batch writer's last flush) closes the
child's stdin, the child ends there, and is waited for (at most ``CLOSE_WAIT`` seconds,
``CLOSING_WAIT`` once the shutdown has begun, then killed).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path

import msgspec

from .ledger_frames import HEADER, READY, batch_frame
from .ledger_parts import BATCH_ROWS, PART_ROWS, encode_parts
from .ledger_staging import BatchKeys
from .sqlite_ledger import SqliteLedger
from .usage import UsageValues

log = logging.getLogger("dragoman.sessions")

MODULE = "dragoman.sessions.ledger_writer"
#: The child's ``python -c``: ``dragoman`` and ``dragoman.sessions`` as bare packages (their
#: ``__init__`` imports the whole gateway, seconds on a loaded machine), then the writer,
#: which imports only its few modules (``ledger_staging``, ``ledger_frames``…), after it has
#: lowered its priority (the last argument), so that these imports run at it too (``0``:
#: main's own setting of it skipped, as it is done).
BOOT = """
import sys, types
for name, path in ((sys.argv[1], sys.argv[2]), (sys.argv[1] + ".sessions", sys.argv[3])):
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = [path]
from dragoman.sessions.ledger_priority import lower_priority
lower_priority(sys.argv[-1])
from dragoman.sessions.ledger_writer import main
main(sys.argv[4:-1] + ["0"])
"""
_HERE = Path(__file__).resolve().parent
#: times a batch is sent to a newly started child after the previous one died with it
RESENDS = 3
CLOSE_WAIT = 10.0
#: the same once the server's shutdown has begun (``closing``): a child still folding, or
#: starved, is not worth a grace period's seconds
CLOSING_WAIT = 0.5
#: records that may gather behind an idle child's unanswered batch before it counts as
#: starved: three of the SQLite store's batches (3 s at 5,000 requests a second; below
#: that ``STARVED_AFTER`` comes first). Not less: each catch-up starts two processes on the
#: gateway's core (the nice child, later a new idle one), and at 1,500 records (session 10,
#: 500-row batches) a saturated worker caught up every few seconds, which was most of the
#: ledger's added p99 (bench/README.md, "One ledger batch a second")
BACKLOG_GROWTH = 3.0 * BATCH_ROWS
#: records waiting below which a catch-up's hold ends (a part's worth: ``ledger_parts``)
HOLD_BELOW = float(PART_ROWS)
#: an idle child's longest wait for its answer, whatever the backlog (a stopped child, or
#: the last batches at shutdown): staging a batch needs well under a millisecond of CPU
STARVED_AFTER = 5.0
#: how often a wait for an idle child's answer looks at the backlog
CHECK_EVERY = 0.05

_answer = msgspec.msgpack.Decoder(str | list[str] | None).decode


class Starved(Exception):
    """An idle-priority child did not answer in time: killed, to be replaced."""


class ProcessLedger:
    def __init__(self, path: Path, busy_timeout: float, insert_sql: str,
                 fallback: Callable[[], SqliteLedger], *, nice: int = 0,
                 idle: bool = False) -> None:
        self._args = (str(path), repr(busy_timeout), insert_sql)
        self._nice = nice
        self.idle = idle
        self.starved_after = STARVED_AFTER
        #: records waiting to be sent (the batch writer's; the store
        #: sets it): what a starved idle child lets grow
        self.backlog: Callable[[], float] = _nothing
        self._keys = BatchKeys()
        self._holding = False  # a catch-up's nice child writes until nothing waits
        self._proc_idle = False  # the running child's policy
        #: starved idle children replaced by a child at ``nice``
        self.catch_ups = 0
        self._boot = ("-c", BOOT, "dragoman", str(_HERE.parent), str(_HERE))
        self._fallback = fallback
        self._thread: SqliteLedger | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()  # one batch in flight: answers come in order
        self._leftovers: asyncio.Task[None] | None = None
        #: children started (the first, and one after each death)
        self.started = 0
        self._closing = False  # the server's shutdown has begun (``closing``)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def append(self, rows: list[UsageValues]) -> None:
        """Stage ``rows`` as one batch (``ledger_staging``), committed when this returns."""
        # (one key, resends included; encoded before the lock, while the previous
        # batch may still be in flight)
        key, parts = self._keys(), await encode_parts(rows)
        data = batch_frame(key, parts)
        async with self._lock:
            for _ in range(RESENDS):
                if self._closing and self._thread is None:
                    await self._hand_over_for_close()
                    break
                if self._proc is not None and self.idle and not self._proc_idle and \
                        not self._holding:
                    await self._retire(self._proc)  # the hold is over: an idle child again
                try:
                    proc = self._proc or await self._start()
                except ConnectionError as e:  # killed while it started
                    log.warning("the usage ledger's writer process died: %s", e)
                    continue
                except Starved as e:
                    self._caught_up(e)
                    continue
                if proc is None:
                    break
                try:
                    answer = _answer(await self._within(proc, self._proc_idle,
                                                        _exchange(proc, data)))
                except Starved as e:
                    self._caught_up(e)
                    continue
                except (ConnectionError, asyncio.IncompleteReadError) as e:
                    log.warning("the usage ledger's writer process %d died (%s: %s): "
                                "starting another, resending its batch", proc.pid,
                                type(e).__name__, e)
                    self._end(proc)
                    continue
                except BaseException:
                    # cancelled while the child writes: its answer would be read as the
                    # next batch's; it ends here (its batch committed or rolled back)
                    self._end(proc)
                    raise
                if self._holding and self.backlog() < HOLD_BELOW:
                    self._holding = False  # nothing waits: an idle child for the next
                if answer is not None:
                    raise _error(answer)
                return
            else:
                raise ConnectionError(f"the usage ledger's writer process died {RESENDS} "
                                      "times in a row with one batch")
        assert self._thread is not None
        await self._thread.append_parts(key, parts)

    def closing(self) -> None:
        """The server's shutdown has begun: from now on no wait for an idle child, and the
        last batches are staged by this process (the module's "Shutdown")."""
        self._closing = True

    async def _hand_over_for_close(self) -> None:
        """Kill the child (between two batches: idle, or inside a fold's transaction,
        which rolls back) and write from here on with the thread writer."""
        if self._proc is not None:
            proc = self._proc
            self._end(proc)
            await proc.wait()
        self._thread = self._fallback()

    def fold_leftovers(self) -> None:
        """Start a child now (batches left staged by a previous run: it folds them when
        quiet), not at the first batch."""
        self._leftovers = asyncio.get_running_loop().create_task(self._start_for_leftovers())

    async def _start_for_leftovers(self) -> None:
        async with self._lock:
            if self._proc is None:
                try:
                    await self._start()
                except (ConnectionError, Starved) as e:  # the first batch starts another
                    log.warning("the usage ledger's writer process for the staged batches "
                                "left did not start: %s", e)

    async def _start(self) -> asyncio.subprocess.Process | None:
        """A new child, its connection open; None: none can start, the thread instead."""
        if self._thread is not None:
            return None
        idle = self.idle and not self._holding
        try:
            if not sys.executable:
                raise OSError("sys.executable is empty")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *self._boot, *self._args, "idle" if idle else str(self._nice),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        except OSError as e:
            self._fall_back(f"{type(e).__name__}: {e}")
            return None
        try:
            ready = _answer(await self._within(proc, idle, _read_frame(proc)))
        except (asyncio.IncompleteReadError, msgspec.DecodeError) as e:
            # (its stdout closed: it ended) by a signal, from outside: another may start
            if isinstance(e, asyncio.IncompleteReadError) and (status := await proc.wait()) < 0:
                raise ConnectionError(f"killed by signal {-status} as it started") from None
            self._end(proc)
            self._fall_back(f"it ended before it was ready ({type(e).__name__}, "
                            f"exit status {proc.returncode})")
            return None
        except BaseException:  # cancelled as it started
            self._end(proc)
            raise
        if ready != READY:
            self._end(proc)
            self._fall_back(f"it answered {ready!r}")
            return None
        self._proc = proc
        self._proc_idle = idle
        self.started += 1
        return proc

    async def _within(self, proc: asyncio.subprocess.Process, idle: bool,
                      exchange: Coroutine[object, object, bytes]) -> bytes:
        """``exchange``'s answer; from an idle child, before the backlog grew by
        ``BACKLOG_GROWTH`` records and within ``starved_after`` seconds, or the child is
        killed (its transaction rolled back) and ``Starved`` raised, unless it had written
        its answer whole by then (its batch committed: not to be resent)."""
        if not idle:
            return await exchange
        task = asyncio.ensure_future(exchange)
        try:
            sent, before = time.monotonic(), self.backlog()
            while not (await asyncio.wait((task,), timeout=CHECK_EVERY))[0]:
                if self._closing or self.backlog() - before >= BACKLOG_GROWTH or \
                        time.monotonic() - sent >= self.starved_after:
                    self._end(proc)
                    await proc.wait()  # (dead: its stdout at its end, what it wrote there)
                    try:
                        return await task
                    except (ConnectionError, asyncio.IncompleteReadError):
                        raise Starved(proc.pid) from None
            return task.result()
        finally:
            task.cancel()  # (done by then, but when this is cancelled)

    def _caught_up(self, e: Starved) -> None:
        if self._closing:  # (not starved: the shutdown ended the wait; no hold follows)
            return
        self.catch_ups += 1
        self._holding = True
        log.info("the usage ledger's writer process %s at idle priority got too little CPU "
                 "(%.0f records waiting): killed, its batch resent to one at nice %d until "
                 "none waits", e, self.backlog(), self._nice)

    def _fall_back(self, why: str) -> None:
        log.warning("the usage ledger's writer process cannot start (%s): writing the "
                    "ledger from a thread of the gateway instead", why)
        self._thread = self._fallback()
        self._thread.fold_leftovers()  # (what this writer's child would have folded)

    def _end(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            proc.kill()
        if self._proc is proc:
            self._proc = None

    async def aclose(self) -> None:
        """Let the child finish and end (its stdin closed), or kill it after a while."""
        if self._leftovers is not None:
            self._leftovers.cancel()  # (not started yet: no child to start now)
        async with self._lock:
            if self._proc is not None:
                await self._retire(self._proc)
            if self._thread is not None:
                await self._thread.aclose()

    async def _retire(self, proc: asyncio.subprocess.Process) -> None:
        """End a child between two batches: its stdin closed, it ends there (or is killed
        after ``CLOSE_WAIT`` seconds, ``CLOSING_WAIT`` once the shutdown has begun: stopped,
        or starved at idle priority; every batch it took is answered, so what it is left
        doing is a fold, which rolls back)."""
        if self._proc is proc:
            self._proc = None
        proc.stdin.close()  # type: ignore[union-attr]
        try:
            async with asyncio.timeout(CLOSING_WAIT if self._closing else CLOSE_WAIT):
                await proc.wait()
        except TimeoutError:
            if not self._closing:
                log.error("the usage ledger's writer process %d did not end: killed",
                          proc.pid)
            proc.kill()
            await proc.wait()

    def close(self) -> None:
        """The store closing without ``aclose`` (a failed open): kill a child left."""
        if self._leftovers is not None:
            self._leftovers.cancel()
        if self._proc is not None:
            self._end(self._proc)
        if self._thread is not None:
            self._thread.close()


def _nothing() -> float:
    return 0.0


async def _exchange(proc: asyncio.subprocess.Process, data: bytes) -> bytes:
    """Send one batch, read its answer."""
    proc.stdin.write(data)  # type: ignore[union-attr]
    await proc.stdin.drain()  # type: ignore[union-attr]
    return await _read_frame(proc)


async def _read_frame(proc: asyncio.subprocess.Process) -> bytes:
    assert proc.stdout is not None
    header = await proc.stdout.readexactly(HEADER.size)
    return await proc.stdout.readexactly(HEADER.unpack(header)[0])


def _error(answer: str | list[str]) -> Exception:
    """The child's error as the gateway raises it: ``sqlite3``'s classes as themselves."""
    name, message = (answer[0], answer[1]) if isinstance(answer, list) else ("Error", answer)
    cls = getattr(sqlite3, name, None)
    if isinstance(cls, type) and issubclass(cls, sqlite3.Error):
        return cls(message)
    return RuntimeError(f"the usage ledger's writer process failed: {name}: {message}")
