"""The usage ledger's rows and queries, on every backend (memory, SQLite, real PostgreSQL):
filters, newest-first listing with a limit, sums grouped by tenant, model and UTC day."""

from __future__ import annotations

import calendar

import pytest

from dragoman.sessions import SessionStore
from dragoman.sessions.usage import UsageGroup, UsageQuery, UsageRow, row_values


def _ms(day: str, hour: int = 12) -> int:
    y, m, d = (int(x) for x in day.split("-"))
    return calendar.timegm((y, m, d, hour, 0, 0)) * 1000


def _row(ts: int, tenant: str, model: str, *, tokens: tuple[int, int] = (10, 5),
         cost: float = 0.01, outcome: str = "ok", latency: float = 100.0) -> UsageRow:
    return UsageRow(ts=ts, tenant=tenant, key_id=f"kid-{tenant}", model=model,
                    deployment=f"{model}#0", provider="openai", dialect="openai_chat",
                    stream=outcome == "ok", input_tokens=tokens[0], output_tokens=tokens[1],
                    cached_tokens=2, cost=cost, latency_ms=latency,
                    ttft_ms=12.5 if outcome == "ok" else None, upstream_ms=40.0,
                    status=200 if outcome == "ok" else 502, outcome=outcome, thread="th-1")


ROWS = [
    _row(_ms("2026-12-01", 9), "acme", "gpt", latency=100.0),
    _row(_ms("2026-12-01", 23), "acme", "claude", tokens=(100, 50), cost=0.5, latency=300.0),
    _row(_ms("2026-12-02", 0), "acme", "gpt", outcome="upstream", tokens=(0, 0), cost=0.0),
    _row(_ms("2026-12-02", 8), "globex", "gpt", tokens=(7, 3), cost=0.02),
    _row(_ms("2026-12-03", 1), "globex", "claude", tokens=(1, 1), cost=0.001),
]


async def _filled(store: SessionStore) -> None:
    await store.append_usage([row_values(r) for r in ROWS[:2]])  # (values, as the server)
    await store.append_usage([row_values(r) for r in ROWS[2:]])


async def test_rows_round_trip_newest_first(store: SessionStore) -> None:
    await _filled(store)
    rows = await store.usage_rows(UsageQuery())
    assert rows == list(reversed(ROWS))
    assert rows[0].stream is True and rows[2].stream is False and rows[2].ttft_ms is None
    limited = await store.usage_rows(UsageQuery(limit=2))
    assert limited == [ROWS[4], ROWS[3]]


async def test_filters(store: SessionStore) -> None:
    await _filled(store)
    acme = await store.usage_rows(UsageQuery(tenant="acme"))
    assert [r.model for r in acme] == ["gpt", "claude", "gpt"]
    claude = await store.usage_rows(UsageQuery(model="claude"))
    assert [r.tenant for r in claude] == ["globex", "acme"]
    # since inclusive, until exclusive
    window = await store.usage_rows(UsageQuery(since=_ms("2026-12-02", 0),
                                               until=_ms("2026-12-03", 1)))
    assert window == [ROWS[3], ROWS[2]]
    assert await store.usage_rows(UsageQuery(tenant="nobody")) == []


async def test_groups(store: SessionStore) -> None:
    await _filled(store)
    by_tenant = await store.usage_groups(UsageQuery(), ("tenant",))
    assert [(g.tenant, g.requests, g.errors, g.input_tokens, g.output_tokens)
            for g in by_tenant] == [("acme", 3, 1, 110, 55), ("globex", 2, 0, 8, 4)]
    assert by_tenant[0].cost == pytest.approx(0.51)
    assert by_tenant[0].cached_tokens == 6
    assert by_tenant[0].latency_ms_avg == pytest.approx((100 + 300 + 100) / 3)

    by_day_model = await store.usage_groups(UsageQuery(tenant="acme"), ("day", "model"))
    assert [(g.day, g.model, g.requests) for g in by_day_model] == [
        ("2026-12-01", "claude", 1), ("2026-12-01", "gpt", 1), ("2026-12-02", "gpt", 1)]
    assert all(g.tenant is None for g in by_day_model)

    everything = await store.usage_groups(UsageQuery(), ())
    assert len(everything) == 1 and everything[0].requests == 5
    nothing = await store.usage_groups(UsageQuery(tenant="nobody"), ())
    assert nothing == [UsageGroup()]



def test_the_server_writes_its_records_in_column_order() -> None:
    """``ledger_values`` builds the row tuple by hand (the cheapest way): its order is
    ``COLUMNS``, field by field, as a ``UsageRow`` read back shows."""
    from dragoman.core import Usage
    from dragoman.router.usage import UsageRecord
    from dragoman.server.operations import ledger_values
    from dragoman.sessions.usage import row_from_db

    rec = UsageRecord(tenant="acme", model="gpt", provider="openai", dialect="openai_chat",
                      stream=True, passthrough=False,
                      usage=Usage(input_tokens=11, output_tokens=7, cached_tokens=3,
                                  reasoning_tokens=2),
                      cost=0.25, outcome="upstream", duration_ms=81.5, deployment="gpt#1",
                      served_model="gpt", key_id="kid-1", thread="th-9",
                      started=1_764_000_000.5, ttft_ms=12.0, upstream_ms=40.5, status=502)
    assert row_from_db(ledger_values(rec)) == UsageRow(
        ts=1_764_000_000_500, tenant="acme", key_id="kid-1", model="gpt", deployment="gpt#1",
        provider="openai", dialect="openai_chat", stream=True, input_tokens=11,
        output_tokens=7, cached_tokens=3, reasoning_tokens=2, cost=0.25, latency_ms=81.5,
        ttft_ms=12.0, upstream_ms=40.5, status=502, outcome="upstream", thread="th-9")
