"""``observe.BatchWriter`` (the usage ledger's writer) and ``observe.series``: batches,
a failing store keeps and retries its records, shutdown writes the rest, and the
dashboard's percentiles and steps."""

from __future__ import annotations

import asyncio

from dragoman.observe import BatchWriter, percentile, series
from dragoman.sessions.usage import UsageRow


class Sink:
    """A store that records each batch and fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failing = False

    async def __call__(self, batch: list[int]) -> None:
        await asyncio.sleep(0)
        if self.failing:
            raise OSError("database unavailable")
        self.batches.append(list(batch))


async def test_batches_by_size_and_interval() -> None:
    sink = Sink()
    w: BatchWriter[int] = BatchWriter(sink, interval=0.05, max_batch=4)
    w.start()
    for i in range(10):
        w.add(i)
    await asyncio.sleep(0.3)
    assert [x for b in sink.batches for x in b] == list(range(10))
    assert all(len(b) <= 4 for b in sink.batches) and w.pending == 0
    await w.aclose()


async def test_records_arriving_during_a_write_wait_for_the_next_one() -> None:
    """Steady traffic, each write taking a while: a batch per interval, not a flush that
    goes on writing the few records that arrived during its previous write."""
    sink = Sink()

    async def slow(batch: list[int]) -> None:
        await asyncio.sleep(0.01)
        await sink(batch)

    w: BatchWriter[int] = BatchWriter(slow, interval=0.2, max_batch=10_000)
    w.start()
    n = 0
    loop = asyncio.get_running_loop()
    until = loop.time() + 1.0
    while loop.time() < until:  # a record every 2 ms for a second
        w.add(n)
        n += 1
        await asyncio.sleep(0.002)
    await w.aclose()
    assert [x for b in sink.batches for x in b] == list(range(n))
    assert len(sink.batches) <= 8  # (~5 intervals, and the rest at shutdown; was ~80)


async def test_a_failing_store_keeps_the_records_in_order() -> None:
    sink = Sink()
    sink.failing = True
    w: BatchWriter[int] = BatchWriter(sink, interval=0.02, max_batch=3)
    w.start()
    for i in range(7):
        w.add(i)
    await asyncio.sleep(0.1)
    assert sink.batches == [] and w.pending == 7
    sink.failing = False
    w.add(7)
    await w.aclose()  # shutdown writes what is left
    assert [x for b in sink.batches for x in b] == list(range(8))


async def test_shutdown_writes_everything_without_waiting_for_the_interval() -> None:
    sink = Sink()
    w: BatchWriter[int] = BatchWriter(sink, interval=3600, max_batch=1000)
    w.start()
    for i in range(2500):
        w.add(i)
    await w.aclose()
    assert sum(len(b) for b in sink.batches) == 2500 and w.pending == 0


async def test_bounded_while_the_store_is_down() -> None:
    sink = Sink()
    sink.failing = True
    w: BatchWriter[int] = BatchWriter(sink, interval=3600, max_batch=10, max_pending=25)
    for i in range(40):
        w.add(i)
    assert not await w.flush()
    assert w.pending == 25 and w.dropped == 15
    sink.failing = False
    assert await w.flush()
    assert [x for b in sink.batches for x in b] == list(range(15, 40))  # the newest kept


def test_series_steps_and_percentiles() -> None:
    def row(ts: int, latency: float, outcome: str = "ok", tenant: str = "a") -> UsageRow:
        return UsageRow(ts=ts, tenant=tenant, model="m", latency_ms=latency,
                        ttft_ms=latency / 2 if outcome == "ok" else None, outcome=outcome,
                        input_tokens=3, output_tokens=2, cost=0.5)

    rows = [row(1000 + i, float(i + 1)) for i in range(10)]  # step 0: latencies 1..10
    rows += [row(61_000, 50.0, "upstream", tenant="b"), row(200_000, 1.0)]  # 200 s: outside
    s = series(rows, since_ms=0, until_ms=120_000, step_ms=60_000)
    assert s["t"] == [0.0, 60.0]
    assert s["requests"] == [10, 1]
    assert s["errors"] == {"upstream": [0, 1]}
    assert s["latency_ms"]["p50"] == [5.0, 50.0] and s["latency_ms"]["p99"] == [10.0, 50.0]
    assert s["ttft_ms"]["p90"] == [4.5, None]  # no TTFT in a step: a gap, not a zero
    assert s["tokens"]["tenant"] == {"a": [50, 0], "b": [0, 5]}
    assert s["cost"]["model"] == {"m": [5.0, 0.5]}
    assert percentile([], 50) is None and percentile([1.0, 2.0, 3.0, 4.0], 75) == 3.0

