"""The usage ledger's rows and queries, on every backend (memory, SQLite, real PostgreSQL):
filters, newest-first listing with a limit, sums grouped by tenant, model and UTC day."""

from __future__ import annotations

import calendar

import pytest

from dragoman.sessions import SessionStore
from dragoman.sessions.usage import UsageGroup, UsageQuery, UsageRow


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
    await store.append_usage(ROWS[:2])
    await store.append_usage(ROWS[2:])


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

