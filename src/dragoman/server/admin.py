"""The operator's routes, each behind an admin key (``admin_auth``):

- ``GET /metrics``: Prometheus text exposition of every worker (``observe.metrics``).
- ``GET /admin/usage``: the usage ledger. ``tenant``, ``model``, ``since``, ``until``
  filter (a time is epoch seconds, an ISO 8601 date or date-time (UTC unless it says),
  or a duration ago: ``24h``); ``group_by`` (``tenant``, ``model``, ``day``, comma
  separated) sums instead of listing; ``limit`` caps listed rows (newest first);
  ``format=csv`` answers CSV instead of JSON.
- ``GET /admin/deployments``: per deployment, its breaker, requests in flight, recent
  latency, rate-limit cool-down and open upstream connections (this worker's view).
- ``GET /admin/series``: the dashboard's time series over ``window`` (default 1h) in
  ``step`` seconds, computed from the ledger (``observe.series``).
- ``GET /admin/live``: requests and streams in flight over all workers, ledger rows
  waiting to be written.
"""

from __future__ import annotations

import csv
import io
import math
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import msgspec

from ..auth import Principal
from ..core import InvalidRequest
from ..observe import series
from ..observe.metrics import CONTENT_TYPE
from ..providers.base import HttpDialectProvider
from ..sessions import parse_duration
from ..sessions.usage import COLUMNS, GROUP_KEYS, GroupKey, UsageGroup, UsageQuery, UsageRow
from .accounting import deployment_label
from .admin_auth import admin_only
from .http import Receive, Scope, Send, send_bytes, send_json
from .state import GatewayState

_encode = msgspec.json.Encoder().encode

MAX_ROWS = 100_000
#: Rows the dashboard's series read at most (the newest, when a window holds more).
SERIES_ROWS = 200_000
MAX_STEPS = 1440


def query_params(scope: Scope) -> dict[str, str]:
    """The query string's parameters (the last value of a repeated one)."""
    raw = scope.get("query_string", b"").decode("latin-1")
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def parse_time(value: str, name: str, now: float) -> int:
    """A time parameter as ms since the epoch (see the module docstring for forms)."""
    v = value.strip()
    try:
        return int(float(v) * 1000)
    except ValueError:
        pass
    try:
        return int((now - parse_duration(v)) * 1000)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"'{name}' must be epoch seconds, an ISO 8601 date or date-time, "
                             "or a duration ago such as 24h.", param=name) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def _int_param(params: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        n = int(raw)
    except ValueError:
        n = lo - 1
    if not lo <= n <= hi:
        raise InvalidRequest(f"'{name}' must be a whole number from {lo} to {hi}.", param=name)
    return n


def usage_query(params: dict[str, str], now: float) -> UsageQuery:
    return UsageQuery(
        tenant=params.get("tenant") or None, model=params.get("model") or None,
        since=parse_time(params["since"], "since", now) if params.get("since") else None,
        until=parse_time(params["until"], "until", now) if params.get("until") else None,
        limit=_int_param(params, "limit", 1000, 1, MAX_ROWS))


def group_keys(raw: str | None) -> tuple[GroupKey, ...]:
    if not raw:
        return ()
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    for k in keys:
        if k not in GROUP_KEYS:
            raise InvalidRequest(f"'group_by' takes {', '.join(GROUP_KEYS)} (comma separated); "
                                 f"got '{k[:40]}'.", param="group_by")
    return tuple(dict.fromkeys(keys))  # type: ignore[arg-type]


def to_csv(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode()


def _csv_rows(rows: list[UsageRow]) -> bytes:
    return to_csv(list(COLUMNS), [[_cell(getattr(r, c)) for c in COLUMNS] for r in rows])


def _csv_groups(by: tuple[GroupKey, ...], groups: list[UsageGroup]) -> bytes:
    cols = [*by, "requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost",
            "latency_ms_avg"]
    return to_csv(cols, [[_cell(getattr(g, c)) for c in cols] for g in groups])


def _cell(v: object) -> object:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


@admin_only
async def metrics(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                  send: Send, params: list[str]) -> None:
    gw.ops.refresh()  # this worker's requests, breakers and pools as of now
    await send_bytes(send, 200, gw.ops.metrics.render(), CONTENT_TYPE)


@admin_only
async def usage(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                send: Send, params: list[str]) -> None:
    p = query_params(scope)
    q = usage_query(p, time.time())
    by = group_keys(p.get("group_by"))
    fmt = p.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidRequest("'format' is json or csv.", param="format")
    if by:
        groups = await gw.sessions.usage_groups(q, by)
        if fmt == "csv":
            await send_bytes(send, 200, _csv_groups(by, groups), b"text/csv; charset=utf-8")
        else:
            await send_json(send, _encode({"object": "list", "group_by": by, "data": groups}))
        return
    rows = await gw.sessions.usage_rows(q)
    if fmt == "csv":
        await send_bytes(send, 200, _csv_rows(rows), b"text/csv; charset=utf-8")
    else:
        await send_json(send, _encode({"object": "list", "data": rows}))


@admin_only
async def deployments(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                      send: Send, params: list[str]) -> None:
    now = time.monotonic()
    data = []
    for route in gw.models.routes():
        for d in route.deployments:
            h = d.health
            data.append({
                "model": route.name, "deployment": deployment_label(d),
                "provider": d.provider.name, "breaker": h.breaker.state.value,
                "available": h.breaker.available(now), "in_flight": h.inflight,
                "latency_ms": None if h.latency is None else round(h.latency * 1000, 3),
                "cooling_down_s": round(max(0.0, h.cool_until - now), 3),
                "open_connections": d.provider.http.open_connections
                if isinstance(d.provider, HttpDialectProvider) else None,
            })
    await send_json(send, _encode({"object": "list", "data": data}))


@admin_only
async def series_route(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
                       send: Send, params: list[str]) -> None:
    p = query_params(scope)
    try:
        window = parse_duration(p.get("window", "1h"))
    except ValueError:
        raise InvalidRequest("'window' is a duration such as 1h or 30m.",
                             param="window") from None
    step = _int_param(p, "step", max(1, math.ceil(window / 60)), 1, 86400)
    if window <= 0 or window / step > MAX_STEPS:
        raise InvalidRequest(f"'window' / 'step' must give 1 to {MAX_STEPS} steps.",
                             param="step")
    now_ms = int(time.time() * 1000)
    step_ms = step * 1000
    until = (now_ms // step_ms + 1) * step_ms  # steps aligned to the clock, the last one open
    since = until - math.ceil(window / step) * step_ms
    rows = await gw.sessions.usage_rows(UsageQuery(since=since, until=until,
                                                   limit=SERIES_ROWS))
    body = series(rows, since, until, step_ms)
    body["step"] = step
    await send_json(send, _encode(body))


@admin_only
async def live(gw: GatewayState, principal: Principal, scope: Scope, receive: Receive,
               send: Send, params: list[str]) -> None:
    gw.ops.refresh()
    t = gw.ops.metrics.totals("dragoman_requests_in_flight", "dragoman_streams_in_flight")
    await send_json(send, _encode({
        "in_flight_requests": t["dragoman_requests_in_flight"],
        "in_flight_streams": t["dragoman_streams_in_flight"],
        "ledger_pending": gw.ops.ledger.pending,
        "time": time.time(),
    }))
