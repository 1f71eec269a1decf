"""``dragoman usage [--config FILE] [--tenant T] [--model M] [--since S] [--until U]
[--group-by tenant,model,day] [--format table|csv|json] [--limit N]``: the usage ledger
read straight from the configured sessions database (no server needed). The filters and
their forms are those of ``GET /admin/usage`` (``server.admin``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import msgspec

from .config import ConfigError, load_config
from .core import DragomanError
from .server.admin import group_keys, to_csv, usage_query
from .sessions import open_store
from .sessions.store import StoreError
from .sessions.usage import COLUMNS, UsageGroup, UsageRow

#: Columns of the table view of listed rows (the CSV and JSON views have them all).
_ROW_COLUMNS = ("ts", "tenant", "model", "deployment", "outcome", "status", "input_tokens",
                "output_tokens", "cost", "latency_ms", "ttft_ms")
_SUMS = ("requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost",
         "latency_ms_avg")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("usage", help="read the usage ledger (one record per request)")
    p.add_argument("--config", "-c", help="YAML config file (its `sessions:` section)")
    p.add_argument("--tenant")
    p.add_argument("--model")
    p.add_argument("--since", help="epoch seconds, ISO date/date-time, or a duration ago (24h)")
    p.add_argument("--until", help="as --since")
    p.add_argument("--group-by", help="tenant, model and/or day, comma separated: sums "
                                      "instead of rows")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--limit", type=int, default=50, help="rows to list, newest first")
    p.add_argument("--log-level", default="warning")


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6f}".rstrip("0").rstrip(".") if v else "0"
    return str(v)


def _table(header: list[str], rows: list[list[object]]) -> str:
    cells = [header, *[[_cell(v) for v in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


def render_rows(rows: list[UsageRow], fmt: str) -> str:
    if fmt == "json":
        return msgspec.json.encode(rows).decode()
    if fmt == "csv":
        return to_csv(list(COLUMNS), [[getattr(r, c) for c in COLUMNS] for r in rows]).decode()
    out: list[list[object]] = []
    for r in rows:
        line: list[object] = [getattr(r, c) for c in _ROW_COLUMNS]
        line[0] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.ts / 1000))
        out.append(line)
    return _table(list(_ROW_COLUMNS), out)


def render_groups(by: tuple[str, ...], groups: list[UsageGroup], fmt: str) -> str:
    if fmt == "json":
        return msgspec.json.encode(groups).decode()
    cols = [*by, *_SUMS]
    rows = [[getattr(g, c) for c in cols] for g in groups]
    return to_csv(cols, rows).decode() if fmt == "csv" else _table(cols, rows)


def run(args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("tenant", args.tenant), ("model", args.model),
                                ("since", args.since), ("until", args.until),
                                ("limit", str(args.limit))) if v is not None}
    try:
        query = usage_query(params, time.time())
        by = group_keys(args.group_by)
        store = open_store(load_config(args.config).sessions.settings())
    except DragomanError as e:
        print(f"dragoman: {e.message}", file=sys.stderr)
        return 2
    except (ConfigError, StoreError) as e:
        print(f"dragoman: {e}", file=sys.stderr)
        return 2

    async def read() -> str:
        try:
            await store.open()
            if by:
                return render_groups(by, await store.usage_groups(query, by), args.format)
            return render_rows(await store.usage_rows(query), args.format)
        finally:
            await store.aclose()

    try:
        print(asyncio.run(read()))
    except (StoreError, DragomanError) as e:
        print(f"dragoman: session store: {e}", file=sys.stderr)
        return 1
    return 0
