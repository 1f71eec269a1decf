"""The SQLite usage ledger's batches staged, folded later (``ledger_staging``), with real
writer processes, real pipes and a real gateway: a read right after traffic sees every
record (the reader folds first) through ``/admin/usage`` and ``dragoman usage``; the
writer folds by itself when quiet, and under traffic past its bound; a batch resent after
its writer died between its ``COMMIT`` and its answer is staged once; a schema-4 database
keeps its rows, and batches left staged by a previous run are folded after start-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dragoman.sessions import StoreSettings, open_store
from dragoman.sessions import ledger_process as lp
from dragoman.sessions import ledger_writer as lw
from dragoman.sessions.ledger_frames import HEADER, READY, batch_frame, frame, part
from dragoman.sessions.ledger_inserts import connect
from dragoman.sessions.ledger_staging import LIGHT_BATCH, LIGHT_RUN, QUIET, BatchKeys, LedgerStage
from dragoman.sessions.schema import SQLITE
from dragoman.sessions.sqlite import _INSERT_USAGE, SqliteStore
from dragoman.sessions.usage import UsageQuery
from tests.fakes.upstream import OPENAI_KEY, FakeUpstream
from tests.gateway_proc import run_gateway
from tests.sessions.test_ledger_priority import _locked
from tests.sessions.test_ledger_process import KEY, _chat, _writers
from tests.sessions.test_ledger_rows import database_at
from tests.sessions.test_sqlite_ledger import _count, _folded, _rows, _staged

ADMIN = "adm-staging-test-key-0123"


def _waiting(path: Path) -> int:
    """Rows staged and not folded yet."""
    return sum(n for n, _ in _staged(path) if n > 0)


async def _store(tmp_path: Path) -> SqliteStore:
    store = open_store(StoreSettings(backend="sqlite", path=str(tmp_path / "sessions.db")))
    assert isinstance(store, SqliteStore)
    await store.open()
    return store


# --- the gateway: a read right after traffic ----------------------------------------------

@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def _burst(base: str, n: int, first: int, clients: int = 1) -> None:
    """``n`` requests, ``clients`` at a time."""
    def run(k: int) -> None:
        with httpx.Client() as client:
            for i in range(first + k, first + n, clients):
                _chat(client, base, i)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _staged_and_stopped(base: str, db: Path, sent: int) -> tuple[int, int]:
    """Send bursts until one is caught staged and not folded (the writer folds it after
    ``QUIET`` seconds without a batch): its writer then stopped between two batches (no
    quiet fold, no write lock held). A burst is more than ``LIGHT_BATCH`` requests, 8 at a
    time, so that its batch is not light (folded at once after it is staged). Returns
    (requests sent, the stopped writer's pid)."""
    burst = 2 * LIGHT_BATCH
    for _ in range(10):
        _burst(base, burst, sent, clients=8)
        sent += burst
        deadline = time.monotonic() + 30
        while _count(db) < sent and time.monotonic() < deadline:
            time.sleep(0.01)
        [pid] = _writers(db)
        os.kill(pid, signal.SIGSTOP)
        if _waiting(db) and not _locked(db):
            return sent, pid
        os.kill(pid, signal.SIGCONT)  # folded already (or folding): another burst
    pytest.fail("never caught a batch staged")


def test_a_read_right_after_traffic_sees_every_record(tmp_path: Path,
                                                      upstream: FakeUpstream) -> None:
    """With the writer stopped after staging (so nothing folds but the reader), the admin
    API and the CLI both see every answered request: the reader folds on its own
    connection before it reads."""
    db = tmp_path / "sessions.db"
    config = {
        "server": {"admin_keys": [ADMIN]},
        "auth": {"type": "static", "tokens": [{"token": KEY, "tenant": "acme"}]},
        "sessions": {"backend": "sqlite", "path": str(db)},
        "models": [{"name": "gpt", "provider": "openai", "model": "gpt-fake-chat",
                    "base_url": upstream.url + "/v1", "api_key": OPENAI_KEY}],
    }
    stopped: list[int] = []
    try:
        with run_gateway(config, tmp_path) as base:
            sent, pid = _staged_and_stopped(base, db, 0)
            stopped.append(pid)
            r = httpx.get(f"{base}/admin/usage?limit=10000", timeout=30,
                          headers={"authorization": f"Bearer {ADMIN}"})
            assert r.status_code == 200, r.text
            assert len(r.json()["data"]) == sent
            assert _waiting(db) == 0 and _folded(db) == sent  # folded by the read
            os.kill(pid, signal.SIGCONT)

            sent, pid = _staged_and_stopped(base, db, sent)
            stopped.append(pid)
            cfg = next(tmp_path.glob("dragoman-*.yaml"))
            out = subprocess.run([sys.executable, "-m", "dragoman.cli", "usage", "--config",
                                  str(cfg), "--format", "json", "--limit", "10000"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert len(json.loads(out.stdout)) == sent
            assert _waiting(db) == 0 and _folded(db) == sent
            os.kill(pid, signal.SIGCONT)
    finally:
        for pid in stopped:  # (a failed assertion with a writer stopped)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert _writers(db) == [] and _count(db) == sent


# --- the writer process folds by itself ------------------------------------------------------

async def test_the_writer_folds_by_itself_when_quiet(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        await store.append_usage(_rows(30))
        await store.append_usage(_rows(20, 30))
        staged = _staged(store.path)
        # (on a loaded machine the first batch may have been folded before the second came)
        assert sum(n for n, _ in staged) + _folded(store.path) == 50
        deadline = time.monotonic() + QUIET + 30
        while _waiting(store.path) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert _staged(store.path) == [(0, False), (0, False)]  # keys kept, frames gone
        assert _folded(store.path) == 50
    finally:
        await store.aclose()


class _Writer:
    """``ledger_writer.serve`` (the writer process's loop) on a thread, over real pipes
    (``select`` sees what waits in them), with the module's constants patched."""

    def __init__(self, path: Path) -> None:
        in_r, self._in = os.pipe()
        self._out, out_w = os.pipe()
        self._stdin = open(in_r, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        self._stdout = open(out_w, "wb")  # noqa: SIM115
        self._thread = threading.Thread(target=lw.serve, args=(
            str(path), 10.0, _INSERT_USAGE, self._stdin, self._stdout))
        self._thread.start()
        assert self._answer() == frame(READY)
        self._keys = BatchKeys()

    def _answer(self) -> bytes:
        header = os.read(self._out, HEADER.size)
        return header + os.read(self._out, HEADER.unpack(header)[0])

    def send(self, rows: list[tuple[object, ...]]) -> None:
        os.write(self._in, batch_frame(self._keys(), [part(rows)]))
        assert self._answer() == frame(None)

    def close(self) -> None:
        os.close(self._in)
        self._thread.join(30)
        self._stdin.close()
        self._stdout.close()
        os.close(self._out)


async def test_past_the_bound_the_writer_folds_under_traffic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches back to back (never quiet): once more than ``FOLD_BOUND`` rows are staged
    the writer folds a chunk after each batch, and the staged rows stay near the bound."""
    monkeypatch.setattr(lw, "QUIET", 3600.0)
    monkeypatch.setattr(lw, "FOLD_BOUND", 250)
    monkeypatch.setattr(lw, "FOLD_CHUNK", 100)
    store = await _store(tmp_path)  # (the schema)
    await store.aclose()
    writer = _Writer(store.path)
    try:
        for i in range(12):
            writer.send(_rows(100, 100 * i))
            assert _waiting(store.path) <= 250 + 100
    finally:
        writer.close()
    assert _folded(store.path) >= 1200 - 350 and _count(store.path) == 1200


async def test_a_batch_arriving_during_a_quiet_fold_is_staged_between_two_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lw, "QUIET", 0.2)
    monkeypatch.setattr(lw, "FOLD_CHUNK", 100)
    store = await _store(tmp_path)
    await store.aclose()
    stage = LedgerStage(lambda: connect(store.path, 10.0), _INSERT_USAGE)
    keys = BatchKeys()
    for i in range(100):  # leftovers: 10,000 rows staged, a hundred chunks to fold
        stage.stage(keys(), [part(_rows(100, 100 * i))])
    stage.close()
    writer = _Writer(store.path)
    try:
        deadline = time.monotonic() + 30
        while _folded(store.path) == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert 0 < _folded(store.path) < 10_000  # the quiet fold is under way
        writer.send(_rows(1, 10_000))  # answered between two chunks
        assert _waiting(store.path) > 1
    finally:
        writer.close()
    assert _count(store.path) == 10_001


def test_under_light_traffic_the_writer_folds_after_each_batch(tmp_path: Path) -> None:
    """``LIGHT_RUN`` small batches in a row (light traffic): folded right after the last,
    not after ``QUIET``; one small batch between two bursts is not (it is left for a
    pause)."""
    asyncio.run(_migrated(tmp_path))
    path = tmp_path / "sessions.db"
    writer = _Writer(path)
    try:
        writer.send(_rows(LIGHT_BATCH))
        writer.send(_rows(5, LIGHT_BATCH))  # small, between two bursts
        writer.send(_rows(LIGHT_BATCH, LIGHT_BATCH + 5))
        time.sleep(0.3)
        assert _folded(path) == 0
        start = time.monotonic()
        for i in range(LIGHT_RUN):
            writer.send(_rows(2, 2 * LIGHT_BATCH + 5 + 2 * i))
        while _waiting(path) and time.monotonic() < start + 30:
            time.sleep(0.01)
        assert _waiting(path) == 0 and time.monotonic() < start + QUIET
        assert _folded(path) == 2 * LIGHT_BATCH + 5 + 2 * LIGHT_RUN
    finally:
        writer.close()


# --- a batch staged once ---------------------------------------------------------------------

async def test_a_batch_resent_after_its_writer_died_is_staged_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer commits the batch and is killed before its answer is read: the gateway
    starts another and resends the batch under the same key, which is ignored."""
    store = await _store(tmp_path)
    ledger = store._ledger
    assert isinstance(ledger, lp.ProcessLedger)
    real = lp._exchange
    killed: list[int] = []

    async def commit_then_die(proc: asyncio.subprocess.Process, data: bytes) -> bytes:
        if killed:
            return await real(proc, data)
        proc.stdin.write(data)  # type: ignore[union-attr]
        await proc.stdin.drain()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while _count(store.path) < 6 and time.monotonic() < deadline:  # committed
            await asyncio.sleep(0.01)
        proc.kill()
        killed.append(proc.pid)
        raise ConnectionError("killed after its COMMIT")

    try:
        await store.append_usage(_rows(1))  # the writer started
        monkeypatch.setattr(lp, "_exchange", commit_then_die)
        await store.append_usage(_rows(5, 1))
        # (3 on a loaded machine: the new idle child's start timed out, a nice one instead)
        assert killed and ledger.started >= 2 and _count(store.path) == 6
        assert len(_staged(store.path)) <= 2
        got = await store.usage_rows(UsageQuery(limit=100))
    finally:
        await store.aclose()
    assert sorted(r.input_tokens for r in got) == list(range(6))


def test_a_folded_batch_s_key_still_turns_its_resend_away(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    asyncio.run(_migrated(tmp_path))
    stage = LedgerStage(lambda: connect(path, 10.0), _INSERT_USAGE)
    data = [part(_rows(4))]
    stage.stage("gw-1", data)
    assert stage.fold(500) == 0
    stage.stage("gw-1", data)  # resent after the fold
    assert stage.staged == 0 and stage.fold(500) == 0
    stage.close()
    assert _folded(path) == 4 and _staged(path) == [(0, False)]


async def _migrated(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    await store.aclose()


# --- migration and leftovers -----------------------------------------------------------------

async def test_a_schema_4_database_keeps_its_rows_and_stages_new_batches(
        tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    database_at(path, 4, _rows(3))
    store = await _store(tmp_path)
    try:
        await store.append_usage(_rows(2, 3))
        assert _folded(path) >= 3 and _count(path) == 5
        got = await store.usage_rows(UsageQuery())
    finally:
        await store.aclose()
    assert sorted(r.input_tokens for r in got) == list(range(5))
    with sqlite3.connect(path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM dragoman_schema")]
    assert versions == list(range(1, len(SQLITE) + 1)) == [1, 2, 3, 4, 5]


async def test_batches_left_staged_are_folded_after_start_up(tmp_path: Path) -> None:
    """A previous run's staged batches (its writer ended before it was quiet): the store
    starts a writer when it opens, which folds them when quiet, with no batch and no
    read."""
    await _migrated(tmp_path)
    path = tmp_path / "sessions.db"
    stage = LedgerStage(lambda: connect(path, 10.0), _INSERT_USAGE)
    stage.stage("previous-0", [part(_rows(7))])
    stage.close()
    store = await _store(tmp_path)
    try:
        deadline = time.monotonic() + QUIET + 30
        while _folded(path) < 7 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert _folded(path) == 7 and _waiting(path) == 0
        assert store._ledger is not None and isinstance(store._ledger, lp.ProcessLedger)
        assert store._ledger.started == 1
    finally:
        await store.aclose()
    assert _writers(path) == []
