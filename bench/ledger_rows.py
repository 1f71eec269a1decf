"""Instructions per usage-ledger row written by the SQLite store, counted with callgrind:
the store's real schema, pragmas and writer, rows built by ``ledger_values`` as the
request path builds them, written in batches of ``--batch`` rows (a second's records at
that request rate, one transaction each), the difference of a short and a long run
divided by the extra rows (start-up, imports, migrations and building the rows cancel
out).

``--writer process`` (the default, as the store's): what the gateway does per batch
(``ledger_parts.encode_parts``, ``ledger_frames.batch_frame``) and what the writer process
does with it (``ledger_writer.serve`` reading those frames, staging each batch's parts and
answering it), both in this one process, so one count holds the whole row as the requests
pay for it; the pipe's system calls and the asyncio plumbing are not counted. ``--writer
fold``: the same, then every staged batch folded into ``usage_ledger``
(``LedgerStage.fold``, a chunk of ``FOLD_CHUNK`` rows per transaction, as the writer does
when quiet): its count minus ``process``'s is the fold's per row. ``--writer frames``: the
gateway's part alone. ``--writer thread``: the thread's staging (``LedgerStage.stage``
with the gateway's parts, called on one thread, without the hops between it and the loop).

    .venv/bin/python bench/ledger_rows.py [--writer process|fold|frames|thread]
        [--batch 100] [--rows 200,2200] [--keep DIR]

``--keep DIR`` keeps the long run's callgrind file (one per thread) for
``callgrind_annotate``. bench/README.md, "The ledger writer's priority and its cost per
row", "A usage-ledger row for less" and "The ledger's batches staged, folded when quiet"
have the numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/profile.py would shadow the standard library's ``profile``.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.append(str(HERE))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from instr import instructions  # noqa: E402


def _drive(n: int, batch: int, built: int, writer: str) -> None:
    """Run inside valgrind: open a fresh SQLite store and write ``n`` ledger rows (of
    ``built``, as many in every run: building them is the request path's work)."""
    from dragoman.core import Usage
    from dragoman.router.usage import UsageRecord
    from dragoman.server.operations import ledger_values
    from dragoman.server.runner import settle_heap
    from dragoman.sessions import open_store
    from dragoman.sessions.settings import StoreSettings

    start = time.time()
    rows = [ledger_values(UsageRecord(
        tenant=f"tenant-{i % 7}", model="static-model", provider="openai",
        dialect="openai_chat", stream=i % 3 == 0, passthrough=True,
        usage=Usage(input_tokens=10 + i % 50, output_tokens=5 + i % 20), cost=0.00012,
        duration_ms=1.5 + i % 9, deployment="static-model#0", served_model="static-model",
        key_id="bench", started=start + i / 1000, upstream_ms=1.0)) for i in range(built)]
    batches = [rows[i:min(n, i + batch)] for i in range(0, n, batch)]

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreSettings(backend="sqlite", path=f"{tmp}/sessions.db",
                                         ledger_writer="thread" if writer == "thread"
                                         else "process"))
        asyncio.run(store.open())
        ledger = store._ledger  # type: ignore[attr-defined]
        # as the server does after start-up: without, a full collection walking every
        # object the imports left falls into one run and not the other (±5k a row)
        settle_heap()
        if writer == "thread":
            _thread(ledger, batches)
        else:
            _process(ledger, batches, writer == "frames")
        if writer == "fold":
            _fold(ledger)
        asyncio.run(store.aclose())


def _encoded(batches: list[list[Any]]) -> list[Any]:
    """Each batch's parts as the gateway encodes them (``ledger_parts``, a slice at a
    time), the coroutine driven by hand: its turns of the loop (``asyncio.sleep(0)``, about
    six per 500 rows) are bare yields here, not counted (a pure-Python asyncio loop run
    for them under callgrind added ~12k a row, far more than uvloop's turn)."""
    from dragoman.sessions.ledger_parts import encode_parts

    out = []
    for rows in batches:
        coro = encode_parts(rows)
        try:
            while True:
                coro.send(None)
        except StopIteration as done:
            out.append(done.value)
    return out


def _thread(ledger: Any, batches: list[list[Any]]) -> None:
    """The writer's own work, called here on one thread: what the ledger's thread runs,
    a batch staged per hop, without the thread hops, whose count under callgrind depends
    on the machine's load (GIL hand-overs)."""
    for parts in _encoded(batches):
        ledger._stage.stage(ledger._keys(), parts)


def _fold(ledger: Any) -> None:
    """Every staged batch folded, as the writer does when quiet: a chunk per transaction,
    on a connection of its own."""
    from dragoman.sessions.ledger_inserts import connect
    from dragoman.sessions.ledger_staging import FOLD_CHUNK, LedgerStage

    path, busy_timeout, insert_sql = ledger._args[:3]
    stage = LedgerStage(lambda: connect(path, float(busy_timeout)), insert_sql)
    while stage.fold(FOLD_CHUNK):
        pass
    stage.close()


def _process(ledger: Any, batches: list[list[Any]], frames_only: bool) -> None:
    """The gateway's frame per batch, then (unless ``frames_only``) the writer process's
    loop reading them from a buffer, as it reads its stdin, and answering each."""
    from dragoman.sessions.ledger_frames import batch_frame, frame
    from dragoman.sessions.ledger_staging import BatchKeys
    from dragoman.sessions.ledger_writer import serve

    keys = BatchKeys()
    sent = [batch_frame(keys(), parts) for parts in _encoded(batches)]
    if frames_only:
        return
    path, busy_timeout, insert_sql = ledger._args[:3]
    answers = io.BytesIO()
    serve(path, float(busy_timeout), insert_sql, io.BytesIO(b"".join(sent)), answers)
    assert answers.getvalue().count(frame(None)) == len(batches), "a batch failed"


def _count(n: int, built: int, batch: int, writer: str, keep: str | None) -> int:
    out = f"{keep}/callgrind.{n}" if keep else "/dev/null"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           *(["--separate-threads=yes"] if keep else []), sys.executable, __file__,
           "--drive", str(n), "--built", str(built), "--batch", str(batch), "--writer", writer]
    # A fixed hash seed: with a random one the start-up's count moves by ~0.2 % between
    # runs (dicts probe differently), several thousand instructions per row once divided.
    run = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(HERE.parent / "src"),
                              "PYTHONHASHSEED": "0"})
    return instructions(run.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=100, help="rows per append_usage call")
    ap.add_argument("--rows", default="200,2200", help="the short and the long run's rows")
    ap.add_argument("--writer", choices=("process", "fold", "frames", "thread"),
                    default="process",
                    help="whose work is counted (see the docstring)")
    ap.add_argument("--keep", metavar="DIR", help="keep the callgrind files here")
    ap.add_argument("--drive", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--built", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive is not None:
        _drive(args.drive, args.batch, args.built, args.writer)
        return
    short, long = (int(n) for n in args.rows.split(","))
    # once without valgrind first: the bytecode of every module compiled and cached, so
    # neither counted run compiles any (the short one would, and the difference shrink)
    subprocess.run([sys.executable, __file__, "--drive", "1", "--built", "1",
                    "--writer", args.writer], check=True,
                   env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")})
    a = _count(short, long, args.batch, args.writer, None)
    b = _count(long, long, args.batch, args.writer, args.keep)
    print(f"{(b - a) / (long - short) / 1000:.2f}k instructions per ledger row "
          f"(batches of {args.batch}, {args.writer})")


if __name__ == "__main__":
    main()
