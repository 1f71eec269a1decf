"""The ledger's writer process at idle priority (``sessions.ledger_priority: idle``) and
its catch-up rule, with real children: a child that gets no CPU (here: SIGSTOPped, the
extreme of an idle-priority process on a saturated core) while the backlog behind it grows
(or for ``starved_after`` seconds) is killed, its transaction rolled back (the SQLite write
lock free again for the sessions store), its batch resent to a child at nice 10, which
writes until nothing waits, then an idle child again; nothing is lost or written twice, no
child is left behind, and a stopped child does not hold up a shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from dragoman.observe import BatchWriter
from dragoman.sessions import StoreSettings, open_store
from dragoman.sessions import ledger_process as lp
from dragoman.sessions.sqlite import LEDGER_NICE, SqliteStore
from dragoman.sessions.usage import UsageQuery, UsageRow, UsageValues
from tests.fakes.upstream import FakeUpstream
from tests.gateway_proc import run_gateway
from tests.sessions.test_ledger_process import _chat, _config, _writers
from tests.sessions.test_sqlite_ledger import _count, _rows

#: how long a test's idle child may go unanswered: long enough for a loaded test machine
#: to give an idle process some CPU, short enough for the tests
STARVED_AFTER = 2.0


async def _open(tmp_path: Path, priority: str = "idle") -> SqliteStore:
    store = open_store(StoreSettings(backend="sqlite", path=str(tmp_path / "sessions.db"),
                                     ledger_priority=priority))  # type: ignore[arg-type]
    assert isinstance(store, SqliteStore)
    await store.open()
    return store


@pytest.fixture
async def idle_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await _open(tmp_path)
    ledger = _ledger(store)
    ledger.starved_after = STARVED_AFTER
    try:
        yield store
    finally:
        for pid in _writers(store.path):  # (a test that failed with its child stopped)
            os.kill(pid, signal.SIGCONT)
        await store.aclose()
    assert _writers(store.path) == []


def _ledger(store: SqliteStore) -> lp.ProcessLedger:
    assert isinstance(store._ledger, lp.ProcessLedger)
    return store._ledger


def _policy(pid: int) -> tuple[int, int]:
    """(scheduling policy, nice value) of a process."""
    return os.sched_getscheduler(pid), os.getpriority(os.PRIO_PROCESS, pid)


def _gone(pid: int) -> bool:
    """Ended and reaped (no zombie left behind)."""
    return not Path(f"/proc/{pid}").exists()


def _locked(path: Path) -> bool:
    """Whether a writer holds the database's write lock (a sessions store's write would
    wait for it)."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


async def _started(store: SqliteStore, rows: list[UsageValues]) -> int:
    await store.append_usage(rows)
    pid = _ledger(store).pid
    assert pid is not None
    return pid


async def test_each_priority_as_configured(tmp_path: Path) -> None:
    own_nice = os.getpriority(os.PRIO_PROCESS, 0)
    for priority, expected in (("idle", (os.SCHED_IDLE, own_nice)),
                               ("nice", (os.SCHED_OTHER, own_nice + LEDGER_NICE))):
        store = await _open(tmp_path, priority)
        # no catch-up here, however loaded the machine: the child checked is the first
        _ledger(store).starved_after = 60.0
        try:
            assert _policy(await _started(store, _rows(2))) == expected
            assert _ledger(store).catch_ups == 0
        finally:
            await store.aclose()
    assert _count(tmp_path / "sessions.db") == 4


async def test_a_child_stopped_inside_its_transaction_is_replaced(
        idle_store: SqliteStore) -> None:
    """Stopped while it holds the write lock: killed, its transaction rolled back (the lock
    free), the batch written once by a child at nice 10."""
    ledger = _ledger(idle_store)
    written = 0
    for _ in range(5):  # until the stop falls inside a transaction
        # an idle child (after a catch-up of its own on a loaded machine: a new one)
        ledger._holding = False
        ledger.starved_after = 60.0  # (its start not timed out on a loaded machine)
        pid = await _started(idle_store, [])
        ledger.starved_after = STARVED_AFTER
        assert _policy(pid)[0] == os.SCHED_IDLE
        catch_ups = ledger.catch_ups
        n = 20_000
        write = asyncio.create_task(idle_store.append_usage(_rows(n, written)))
        while not write.done() and not _locked(idle_store.path):
            await asyncio.sleep(0.001)
        os.kill(pid, signal.SIGSTOP)
        caught = _locked(idle_store.path)  # (stopped: nothing changes now)
        if not caught:
            os.kill(pid, signal.SIGCONT)
        await write
        written += n
        if caught:
            break
    else:
        pytest.fail("never stopped inside a transaction")
    assert ledger.catch_ups == catch_ups + 1 and _gone(pid)
    assert not _locked(idle_store.path)
    new = ledger.pid
    assert new is not None and new != pid
    assert _policy(new)[0] == os.SCHED_OTHER
    assert _count(idle_store.path) == written  # each row once
    got = sorted(r.input_tokens  # (read: folded first)
                 for r in await idle_store.usage_rows(UsageQuery(limit=2 * written)))
    assert got == list(range(written))


async def test_an_idle_child_is_replaced_when_the_backlog_behind_it_grows(
        idle_store: SqliteStore) -> None:
    """Not by its answer's time alone: a stopped child is waited for while the records
    behind its batch grow by less than ``BACKLOG_GROWTH``, and replaced once they grow by
    that many (here long before ``starved_after``)."""
    ledger = _ledger(idle_store)
    ledger.starved_after = 60.0
    waiting = [0.0]
    ledger.backlog = lambda: waiting[0]
    first = await _started(idle_store, _rows(1))
    os.kill(first, signal.SIGSTOP)
    write = asyncio.create_task(idle_store.append_usage(_rows(10, 1)))
    await asyncio.sleep(0.1)  # sent
    waiting[0] = lp.BACKLOG_GROWTH - 0.5  # grown, but not by enough
    await asyncio.sleep(0.5)
    assert not write.done() and ledger.catch_ups == 0 and ledger.pid == first
    t = time.monotonic()
    waiting[0] = lp.BACKLOG_GROWTH + 0.5
    await write
    assert time.monotonic() - t < 5
    assert ledger.catch_ups == 1 and _gone(first)
    held = ledger.pid
    assert held is not None and _policy(held)[0] == os.SCHED_OTHER
    assert _count(idle_store.path) == 11


async def test_the_catch_up_ends_its_hold_when_nothing_waits(
        idle_store: SqliteStore) -> None:
    """After a catch-up the nice child writes while records wait behind the batch it
    answers; at the first answer with fewer than ``HOLD_BELOW`` waiting the hold ends, and
    the next batch goes to a new idle child (the nice one ended, not killed)."""
    ledger = _ledger(idle_store)
    waiting = [4 * lp.HOLD_BELOW]
    ledger.backlog = lambda: waiting[0]
    first = await _started(idle_store, _rows(1))
    os.kill(first, signal.SIGSTOP)  # stopped before the batch reaches it: starved after 2 s
    await idle_store.append_usage(_rows(3, 1))
    held = ledger.pid
    assert ledger.catch_ups == 1 and _gone(first) and held is not None
    assert _policy(held)[0] == os.SCHED_OTHER
    await idle_store.append_usage(_rows(2, 4))  # records still wait: the same child
    assert ledger.pid == held
    waiting[0] = lp.HOLD_BELOW - 1
    await idle_store.append_usage(_rows(2, 6))  # answered by the nice child: the hold ends
    assert ledger.pid == held
    ledger.starved_after = 60.0  # (the idle child's start not timed out on a loaded machine)
    await idle_store.append_usage(_rows(2, 8))  # an idle child again
    again = ledger.pid
    assert again not in (None, held) and _gone(held)
    assert again is not None and _policy(again)[0] == os.SCHED_IDLE
    assert _count(idle_store.path) == 10 and ledger.started == 3 and ledger.catch_ups == 1


async def test_a_child_stopped_as_it_starts_is_replaced(idle_store: SqliteStore,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """No answer to its start (``ready``) in time either: replaced the same way."""
    ledger = _ledger(idle_store)
    ledger.starved_after = 0.3
    real = lp._read_frame
    stopped: list[int] = []

    async def stop_first(proc: asyncio.subprocess.Process) -> bytes:
        if not stopped:
            stopped.append(proc.pid)
            os.kill(proc.pid, signal.SIGSTOP)
        return await real(proc)

    monkeypatch.setattr(lp, "_read_frame", stop_first)
    await idle_store.append_usage(_rows(5))
    assert ledger.catch_ups == 1 and _gone(stopped[0]) and ledger.pid != stopped[0]
    assert _count(idle_store.path) == 5


async def test_the_last_batch_at_shutdown_reaches_the_database_past_a_stopped_child(
        idle_store: SqliteStore) -> None:
    """Without ``closing``: the stopped idle child is waited for ``starved_after``, then
    replaced by a child at nice 10, which writes the last batch."""
    writer: BatchWriter[UsageValues] = BatchWriter(idle_store.append_usage)
    writer.start()
    pid = await _started(idle_store, _rows(1))
    for row in _rows(40, 1):
        writer.add(row)
    os.kill(pid, signal.SIGSTOP)
    await writer.aclose()  # the last flush
    await idle_store.aclose()
    assert _gone(pid) and _writers(idle_store.path) == []
    assert _count(idle_store.path) == 41


async def test_a_shutdown_writes_its_last_batches_at_once_from_the_gateway(
        idle_store: SqliteStore) -> None:
    """The server's shutdown (``closing``, then the last flush): an idle child that does not
    run (stopped here, starved on a machine kept busy by other processes) is not waited
    for, nor is a process started: it is killed, and the last batches are staged from the
    gateway's process, each once, well within a grace period."""
    ledger = _ledger(idle_store)
    ledger.starved_after = 60.0  # (what the wait would be without ``closing``)
    writer: BatchWriter[UsageValues] = BatchWriter(idle_store.append_usage)
    writer.start()
    pid = await _started(idle_store, _rows(1))
    started = ledger.started
    for row in _rows(40, 1):
        writer.add(row)
    os.kill(pid, signal.SIGSTOP)
    t = time.monotonic()
    idle_store.closing()
    await writer.aclose()
    await idle_store.aclose()
    assert time.monotonic() - t < 5
    assert ledger.started == started and ledger.catch_ups == 0
    assert _gone(pid) and _writers(idle_store.path) == []
    assert _count(idle_store.path) == 41


async def test_a_shutdown_ends_the_wait_for_a_batch_sent_to_a_stopped_child(
        idle_store: SqliteStore) -> None:
    """A batch already sent to an idle child that does not run when the shutdown begins:
    the wait ends (the child killed, its transaction rolled back, the lock free), and the
    batch is staged from the gateway's process under its own key, once."""
    ledger = _ledger(idle_store)
    ledger.starved_after = 60.0
    pid = await _started(idle_store, _rows(1))
    os.kill(pid, signal.SIGSTOP)
    write = asyncio.create_task(idle_store.append_usage(_rows(30, 1)))
    await asyncio.sleep(0.2)  # sent, unanswered
    assert not write.done()
    t = time.monotonic()
    idle_store.closing()
    await write
    assert time.monotonic() - t < 5
    assert _gone(pid) and not _locked(idle_store.path)
    await idle_store.aclose()
    assert _writers(idle_store.path) == [] and ledger.catch_ups == 0
    got = sorted(r.input_tokens for r in await _reopened_rows(idle_store.path))
    assert got == list(range(31))


async def test_a_shutdown_with_nothing_left_does_not_wait_for_a_stopped_child(
        idle_store: SqliteStore) -> None:
    """No batch left at the shutdown: the child's end is waited for ``CLOSING_WAIT``, not
    ``CLOSE_WAIT`` (10 s), then it is killed; what it had staged stays."""
    pid = await _started(idle_store, _rows(3))
    os.kill(pid, signal.SIGSTOP)
    t = time.monotonic()
    idle_store.closing()
    await idle_store.aclose()
    assert time.monotonic() - t < lp.CLOSE_WAIT / 2
    assert _gone(pid) and _writers(idle_store.path) == []
    assert _count(idle_store.path) == 3


async def _reopened_rows(path: Path) -> list[UsageRow]:
    store = open_store(StoreSettings(backend="sqlite", path=str(path),
                                     ledger_writer="thread"))
    try:
        return await store.usage_rows(UsageQuery(limit=1000))
    finally:
        await store.aclose()


async def test_a_child_stopped_between_batches_does_not_hold_up_the_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lp, "CLOSE_WAIT", 0.5)
    store = await _open(tmp_path, "nice")
    pid = await _started(store, _rows(3))
    os.kill(pid, signal.SIGSTOP)
    t = time.monotonic()
    await store.aclose()
    assert time.monotonic() - t < 5 and _gone(pid) and _writers(store.path) == []
    assert _count(store.path) == 3


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def _traffic_until_an_idle_writer(client: httpx.Client, base: str, db: Path
                                  ) -> tuple[int, int]:
    """Requests, 20 at a time, until the gateway has an idle writer child: its pid and the
    requests sent. (On a loaded machine the first idle child may starve and be replaced,
    and the replacement kept while batches wait: then it is the next idle child.)"""
    sent = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for _ in range(20):
            _chat(client, base, sent)
            sent += 1
        for pid in _writers(db):
            if _policy(pid)[0] == os.SCHED_IDLE:
                return pid, sent
    raise AssertionError("no idle writer within 90 s")


def test_a_gateway_whose_idle_writer_is_stopped_mid_run_loses_nothing(
        tmp_path: Path, upstream: FakeUpstream) -> None:
    """A real gateway (the default configuration: an idle child) under traffic, its writer
    stopped: replaced by one at normal policy, and every answered request is in the
    database after a graceful stop."""
    db = tmp_path / "sessions.db"
    with run_gateway(_config(upstream, db), tmp_path) as base, httpx.Client() as client:
        stopped, sent = _traffic_until_an_idle_writer(client, base, db)
        os.kill(stopped, signal.SIGSTOP)
        deadline = time.monotonic() + 90
        while (stopped in _writers(db) or not _writers(db)) and time.monotonic() < deadline:
            for _ in range(20):  # batches: the stopped child's, then its replacement's
                _chat(client, base, sent)
                sent += 1
        assert stopped not in _writers(db) and len(_writers(db)) == 1
    # the stopped child was killed (the gateway's catch-up rule) and reaped; a batch it
    # had staged before its answer was resent under the same key: staged once
    assert _gone(stopped) and _writers(db) == []
    assert _count(db) == sent


def test_a_gateway_stopped_while_its_idle_writer_does_not_run_loses_nothing_and_waits_not(
        tmp_path: Path, upstream: FakeUpstream) -> None:
    """A real gateway SIGTERMed while its idle writer does not run (stopped here; starved
    on a machine kept busy by other processes): the shutdown does not wait ``starved_after``
    (5 s) nor start a process, so it ends well within docker's 10 s grace, and every
    answered request is in the database."""
    db = tmp_path / "sessions.db"
    stop = time.monotonic()
    with run_gateway(_config(upstream, db), tmp_path) as base, httpx.Client() as client:
        idle, sent = _traffic_until_an_idle_writer(client, base, db)
        for _ in range(10):  # records waiting in the gateway, or a batch sent to the child
            _chat(client, base, sent)
            sent += 1
        os.kill(idle, signal.SIGSTOP)
        stop = time.monotonic()
    assert time.monotonic() - stop < 4.5
    assert _gone(idle) and _writers(db) == []
    assert _count(db) == sent
