"""A 50-turn ``previous_response_id`` chain on each session backend: how lookup, history
load and commit times and the stored bytes grow with the chain (bench/README.md).

    python bench/sessions_chain.py [--turns 50] [--pg-dsn postgresql://…]

Without ``--pg-dsn`` a private PostgreSQL server is started (tests/infra/postgres.py) when
one is installed. Each turn: one user message (~400 characters) answered by one assistant
message (~800 characters), committed like the gateway commits a stored Responses turn;
then ``get_response`` (the indexed lookup) and ``previous`` (lookup + the whole history)
are timed, median of ``--reps`` calls; the chain is built ``--rounds`` times and each
cell is the best round (the machine is shared: noise only ever adds time).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from dragoman.core import ChatRequest, ChatResponse, Message, Text, new_id
from dragoman.sessions import NewResponse, StoreSettings, Turn, open_store

USER = "Please look at the following function and tell me what it does. " * 6
ANSWER = "The function walks the list once, keeps a running total and returns it. " * 11
REPORT_AT = (1, 10, 25, 50)


async def median_us(fn: Callable[[], Awaitable[Any]], reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


async def chain(settings: StoreSettings, turns: int, reps: int) -> list[dict[str, float]]:
    store = open_store(settings)
    await store.open()
    rows: list[dict[str, float]] = []
    prev = None
    stored = naive = 0
    try:
        for n in range(1, turns + 1):
            history = prev.messages if prev else []
            user = Message(role="user", content=[Text(text=f"{n}: {USER}")])
            rid = new_id("resp_")
            answer = ChatResponse(id=rid, model="m", content=[Text(text=ANSWER)])
            t = time.perf_counter()
            await store.commit_turn(Turn(
                tenant="bench", messages=[*history, user],
                output=[Message(role="assistant", content=answer.content)], input_count=1,
                previous=prev, response=NewResponse(
                    id=rid, model="m", created=int(time.time()),
                    request=ChatRequest(model="m"), response=answer)))
            commit = (time.perf_counter() - t) * 1e6
            prev = await store.previous("bench", rid)
            assert prev is not None and len(prev.messages) == 2 * n
            turn_bytes = sum(len(msgspec.msgpack.encode(m)) for m in prev.messages[-2:])
            stored += turn_bytes
            naive += sum(len(msgspec.msgpack.encode(m)) for m in prev.messages)
            if n in REPORT_AT or n == turns:
                lookup = await median_us(lambda r=rid: store.get_response("bench", r), reps)
                load = await median_us(lambda r=rid: store.previous("bench", r), reps)
                rows.append({"turn": n, "messages": 2 * n, "lookup": lookup, "history": load,
                             "commit": commit, "stored_kb": stored / 1024,
                             "naive_kb": naive / 1024})
    finally:
        await store.aclose()
    return rows


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=50)
    ap.add_argument("--reps", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=3,
                    help="build the chain this many times; each cell is the best round")
    ap.add_argument("--pg-dsn")
    args = ap.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        backends = [StoreSettings(backend="memory"),
                    StoreSettings(backend="sqlite", path=str(tmp / "bench.db"))]
        dsn = args.pg_dsn
        if dsn is None:
            try:
                from tests.infra.postgres import running_postgres

                dsn = stack.enter_context(running_postgres())
            except Exception as e:  # not installed: report without it
                print(f"(postgres skipped: {e})")
        if dsn:
            backends.append(StoreSettings(backend="postgres", dsn=dsn))
        print("| backend | turn | history msgs | lookup µs | lookup + history µs | "
              "commit µs | stored KiB | full-history-per-response KiB |")
        print("|---|---|---|---|---|---|---|---|")
        for i, s in enumerate(backends):
            rounds = []
            for n in range(args.rounds):
                if s.backend == "sqlite":  # a fresh file each round
                    s = StoreSettings(backend="sqlite", path=str(tmp / f"bench-{i}-{n}.db"))
                rounds.append(await chain(s, args.turns, args.reps))
            best = [{k: min(rnd[j][k] for rnd in rounds) for k in rounds[0][j]}
                    for j in range(len(rounds[0]))]
            for r in best:
                print(f"| {s.backend} | {r['turn']:.0f} | {r['messages']:.0f} | "
                      f"{r['lookup']:.0f} | {r['history']:.0f} | {r['commit']:.0f} | "
                      f"{r['stored_kb']:.0f} | {r['naive_kb']:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
