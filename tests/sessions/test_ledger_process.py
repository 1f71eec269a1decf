"""The SQLite usage ledger written by a child process (``ledger_process``): the rows of
every answered request are in the database after a graceful stop, a writer killed
mid-run loses none (a new one is started, the unanswered batch resent), no writer
outlives its gateway, and without a usable Python for the child the ledger falls back
to the thread."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dragoman.sessions import SessionStore, ledger_process
from dragoman.sessions.ledger_process import MODULE, ProcessLedger
from dragoman.sessions.sqlite import SqliteStore
from dragoman.sessions.sqlite_ledger import SqliteLedger
from dragoman.sessions.usage import UsageQuery
from tests.fakes.upstream import OPENAI_KEY, FakeUpstream
from tests.gateway_proc import run_gateway
from tests.sessions.test_sqlite_ledger import _count, _rows

KEY = "sk-acme-test-key"


def _writers(db: Path) -> list[int]:
    """The pids of the ledger writer processes writing ``db``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(MODULE.encode() in a for a in argv) and str(db).encode() in argv:
            pids.append(int(entry.name))
    return pids


async def test_a_killed_writer_is_replaced_and_its_batch_resent(
        sqlite_store: SessionStore) -> None:
    assert isinstance(sqlite_store, SqliteStore)
    ledger = sqlite_store._ledger
    assert isinstance(ledger, ProcessLedger)
    await sqlite_store.append_usage(_rows(3))
    first = ledger.pid
    assert first is not None and _writers(sqlite_store.path) == [first]
    os.kill(first, signal.SIGKILL)
    await sqlite_store.append_usage(_rows(4, 3))  # sent to the dead one, then to a new one
    assert ledger.started == 2 and ledger.pid not in (None, first)
    got = await sqlite_store.usage_rows(UsageQuery(limit=100))
    assert sorted(r.input_tokens for r in got) == list(range(7))
    await sqlite_store.aclose()
    assert _writers(sqlite_store.path) == []


async def test_a_batch_abandoned_while_written_is_all_or_nothing(
        sqlite_store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write task cancelled while the child writes: the child (whose answer nobody
    will read) is ended, its batch committed whole or not at all, and the next batch goes
    to a new child."""
    assert isinstance(sqlite_store, SqliteStore)
    ledger = sqlite_store._ledger
    assert isinstance(ledger, ProcessLedger)
    await sqlite_store.append_usage(_rows(1, 1000))  # the child is started and ready
    sent = asyncio.Event()
    exchange = ledger_process._exchange

    async def noted(proc: asyncio.subprocess.Process, data: bytes) -> bytes:
        sent.set()
        return await exchange(proc, data)  # (written before its first wait)
    monkeypatch.setattr(ledger_process, "_exchange", noted)
    write = asyncio.create_task(sqlite_store.append_usage(_rows(2000)))
    await sent.wait()  # sent (encoded a slice at a time before), not answered yet
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    await sqlite_store.append_usage(_rows(3, 3000))
    got = sorted(r.input_tokens
                 for r in await sqlite_store.usage_rows(UsageQuery(limit=10_000)))
    assert got in ([1000, 3000, 3001, 3002], sorted([*range(2000), 1000, 3000, 3001, 3002]))
    assert ledger.started == 2


async def test_without_a_python_the_thread_writes(sqlite_store: SessionStore,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(sqlite_store, SqliteStore)
    ledger = sqlite_store._ledger
    assert isinstance(ledger, ProcessLedger)
    monkeypatch.setattr(sys, "executable", "")
    await sqlite_store.append_usage(_rows(2))
    assert isinstance(ledger._thread, SqliteLedger) and ledger.pid is None
    assert _count(sqlite_store.path) == 2


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def _config(upstream: FakeUpstream, db: Path) -> dict[str, object]:
    return {
        "auth": {"type": "static", "tokens": [{"token": KEY, "tenant": "acme"}]},
        "sessions": {"backend": "sqlite", "path": str(db)},
        "models": [{"name": "gpt", "provider": "openai", "model": "gpt-fake-chat",
                    "base_url": upstream.url + "/v1", "api_key": OPENAI_KEY}],
    }


def _chat(client: httpx.Client, base: str, i: int) -> None:
    r = client.post(f"{base}/v1/chat/completions", timeout=30,
                    headers={"authorization": f"Bearer {KEY}"},
                    json={"model": "gpt", "messages": [{"role": "user", "content": f"{i}"}]})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("workers", [1, 2])
def test_every_answered_request_is_in_the_database_after_a_graceful_stop(
        tmp_path: Path, upstream: FakeUpstream, workers: int) -> None:
    db = tmp_path / "sessions.db"
    n = 40
    args = ["--workers", str(workers), "--server", "granian"] if workers > 1 else []
    with run_gateway(_config(upstream, db), tmp_path, args=args, ready_timeout=90) as base, \
            httpx.Client() as client:
        for i in range(n):
            _chat(client, base, i)
        deadline = time.monotonic() + 30
        while len(_writers(db)) < workers and time.monotonic() < deadline:
            with httpx.Client() as another:  # a new connection: perhaps to another worker
                _chat(another, base, n)  # until every worker's writer has started
            n += 1
            time.sleep(0.1)
        assert len(_writers(db)) == workers
    assert _count(db) == n
    assert _writers(db) == []  # each ended with its gateway worker


def test_no_record_is_lost_when_the_writer_is_killed_mid_run(
        tmp_path: Path, upstream: FakeUpstream) -> None:
    db = tmp_path / "sessions.db"
    sent = 0
    stop = threading.Event()

    def traffic(base: str) -> None:
        nonlocal sent
        with httpx.Client() as client:
            while not stop.is_set():
                _chat(client, base, sent)
                sent += 1

    with run_gateway(_config(upstream, db), tmp_path) as base:
        t = threading.Thread(target=traffic, args=(base,))
        t.start()
        try:
            killed: list[int] = []
            deadline = time.monotonic() + 60
            while len(killed) < 3 and time.monotonic() < deadline:
                pids = [p for p in _writers(db) if p not in killed]
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                time.sleep(0.7)  # mid-run: requests come and batches are written
            assert len(killed) == 3
        finally:
            stop.set()
            t.join()
    # (a writer killed between its COMMIT and its answer: its batch resent under the same
    # key, staged once)
    assert sent > 0 and _count(db) == sent
    assert _writers(db) == []


def test_the_writer_ends_when_its_gateway_is_killed(tmp_path: Path,
                                                    upstream: FakeUpstream) -> None:
    """No orphan: a gateway killed outright (no graceful shutdown) closes the writer's
    stdin with its death, and the writer ends there."""
    db = tmp_path / "sessions.db"
    with run_gateway(_config(upstream, db), tmp_path) as base, httpx.Client() as client:
        deadline = time.monotonic() + 60
        while not _writers(db) and time.monotonic() < deadline:
            _chat(client, base, 0)  # until the first batch has started the writer
            time.sleep(0.2)
        [writer] = _writers(db)
        stat = Path(f"/proc/{writer}/stat").read_text()
        gateway = int(stat.rsplit(")", 1)[1].split()[1])  # the writer's parent
        os.kill(gateway, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _writers(db) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _writers(db) == []
