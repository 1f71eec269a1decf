"""The usage ledger's rows and queries: one row per finished request, in the sessions
database (table ``usage_ledger``, schema version 3, 4 in SQLite), so every worker and host writes to
one place and ``dragoman usage`` or ``/admin/usage`` read it back.

Rows are immutable and never purged with the sessions TTL (they are what an operator
bills from). A query filters by tenant, model and a time range and either lists rows
(newest first) or sums them grouped by any of tenant, model and day (UTC). The SQL is
written once here for both SQL backends (``select_sql``/``group_sql``, which take the
placeholder style and the day expression); the memory backend runs the same filter and
grouping in Python (``matches``/``group_rows``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, get_args

import msgspec

GroupKey = Literal["tenant", "model", "day"]
GROUP_KEYS: tuple[GroupKey, ...] = ("tenant", "model", "day")


class UsageRow(msgspec.Struct, kw_only=True):
    """What one request used: ``ts`` when it started (ms since the epoch), ``latency_ms``
    until it ended, ``ttft_ms`` until its first streamed byte (None for whole answers),
    ``upstream_ms`` until the serving deployment's first answer (None when no deployment
    answered). ``outcome`` is ``ok``, an error kind or ``client_closed``."""

    ts: int
    tenant: str
    key_id: str | None = None
    model: str
    deployment: str = ""
    provider: str = ""
    dialect: str = ""
    stream: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    upstream_ms: float | None = None
    status: int = 200
    outcome: str = "ok"
    thread: str | None = None


#: Column order of ``usage_ledger`` (after its id), shared by inserts and selects.
COLUMNS: tuple[str, ...] = tuple(UsageRow.__struct_fields__)
#: Where in ``COLUMNS`` a value may be None, and where it is a bool (the SQLite ledger's
#: writer process binds these as plain floats and ints: ``ledger_writer``).
NULLABLE: tuple[int, ...] = tuple(i for i, f in enumerate(msgspec.structs.fields(UsageRow))
                                  if type(None) in get_args(f.type))
FLAGS: tuple[int, ...] = tuple(i for i, f in enumerate(msgspec.structs.fields(UsageRow))
                               if f.type is bool)


#: One ledger row as the databases take it: its values in ``COLUMNS`` order. The server
#: writes these (``server.operations.ledger_values``), not ``UsageRow``s: a tuple of plain
#: values is the cheapest row there is to build, and ``executemany`` takes it as it is.
UsageValues = tuple[object, ...]


def row_values(row: UsageRow) -> UsageValues:
    return tuple(getattr(row, c) for c in COLUMNS)


def row_from_db(values: Sequence[object]) -> UsageRow:
    """A selected row (``COLUMNS`` order) as a ``UsageRow`` (SQLite has no booleans)."""
    row = UsageRow(**dict(zip(COLUMNS, values, strict=True)))  # type: ignore[arg-type]
    row.stream = bool(row.stream)
    return row


class UsageQuery(msgspec.Struct, kw_only=True, frozen=True):
    """``since``/``until``: ms since the epoch, ``since <= ts < until``."""

    tenant: str | None = None
    model: str | None = None
    since: int | None = None
    until: int | None = None
    limit: int = 1000


class UsageGroup(msgspec.Struct, kw_only=True):
    """Sums over the rows of one group; a key not grouped by is None."""

    tenant: str | None = None
    model: str | None = None
    day: str | None = None
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    latency_ms_avg: float = 0.0


def day_of(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ms / 1000))


# --- SQL (SQLite and PostgreSQL) ------------------------------------------------------------

def _where(q: UsageQuery, ph: Callable[[int], str]) -> tuple[str, list[object]]:
    conds: list[str] = []
    args: list[object] = []
    for column, op, value in (("tenant", "=", q.tenant), ("model", "=", q.model),
                              ("ts", ">=", q.since), ("ts", "<", q.until)):
        if value is not None:
            args.append(value)
            conds.append(f"{column} {op} {ph(len(args))}")
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


def insert_sql(ph: Callable[[int], str]) -> str:
    return (f"INSERT INTO usage_ledger ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join(ph(i + 1) for i in range(len(COLUMNS)))})")


def select_sql(q: UsageQuery, ph: Callable[[int], str]) -> tuple[str, list[object]]:
    """Rows matching ``q``, newest first, at most ``q.limit``."""
    where, args = _where(q, ph)
    args.append(q.limit)
    return (f"SELECT {', '.join(COLUMNS)} FROM usage_ledger{where} "
            f"ORDER BY ts DESC, id DESC LIMIT {ph(len(args))}", args)


def group_sql(q: UsageQuery, by: Sequence[GroupKey], ph: Callable[[int], str],
              day: str) -> tuple[str, list[object]]:
    """Sums per group (``day``: the backend's expression for the UTC day of ``ts``),
    ordered by the group keys."""
    where, args = _where(q, ph)
    keys = [day if k == "day" else k for k in by]
    cols = ", ".join([*keys, "count(*)", "sum(CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END)",
                      "sum(input_tokens)", "sum(output_tokens)", "sum(cached_tokens)",
                      "sum(cost)", "avg(latency_ms)"])
    group = f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
    return f"SELECT {cols} FROM usage_ledger{where}{group}", args


def _keyed(by: Sequence[GroupKey], values: Sequence[object]) -> UsageGroup:
    g = UsageGroup()
    for k, v in zip(by, values, strict=False):
        setattr(g, k, v)
    return g


def group_from_row(by: Sequence[GroupKey], row: Sequence[object]) -> UsageGroup:
    """A ``group_sql`` result row as a ``UsageGroup``."""
    g = _keyed(by, row)
    n = len(by)
    g.requests = int(row[n] or 0)  # type: ignore[call-overload]
    g.errors = int(row[n + 1] or 0)  # type: ignore[call-overload]
    g.input_tokens = int(row[n + 2] or 0)  # type: ignore[call-overload]
    g.output_tokens = int(row[n + 3] or 0)  # type: ignore[call-overload]
    g.cached_tokens = int(row[n + 4] or 0)  # type: ignore[call-overload]
    g.cost = float(row[n + 5] or 0.0)  # type: ignore[arg-type]
    g.latency_ms_avg = float(row[n + 6] or 0.0)  # type: ignore[arg-type]
    return g


# --- the same in Python (memory backend) ----------------------------------------------------

def matches(q: UsageQuery, r: UsageRow) -> bool:
    return ((q.tenant is None or r.tenant == q.tenant)
            and (q.model is None or r.model == q.model)
            and (q.since is None or r.ts >= q.since)
            and (q.until is None or r.ts < q.until))


def group_rows(rows: Iterable[UsageRow], by: Sequence[GroupKey]) -> list[UsageGroup]:
    groups: dict[tuple[str, ...], tuple[UsageGroup, list[float]]] = {}
    for r in rows:
        values = {"tenant": r.tenant, "model": r.model, "day": day_of(r.ts)}
        key = tuple(values[k] for k in by)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = (_keyed(by, key), [])
        g, latencies = entry
        g.requests += 1
        g.errors += r.outcome != "ok"
        g.input_tokens += r.input_tokens
        g.output_tokens += r.output_tokens
        g.cached_tokens += r.cached_tokens
        g.cost += r.cost
        latencies.append(r.latency_ms)
    if not by and not groups:  # like SQL: one all-zero row for no rows and no keys
        return [UsageGroup()]
    out = []
    for key in sorted(groups):
        g, latencies = groups[key]
        g.latency_ms_avg = sum(latencies) / len(latencies)
        out.append(g)
    return out
