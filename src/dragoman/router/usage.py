"""Usage accounting: one record per finished request, priced from the model's capabilities.

``UsageAccounting`` is the hook the gateway calls once per request (never per chunk). It
writes one structured log line (``dragoman.usage`` logger, INFO, logfmt; the record itself
rides along as ``extra={"dragoman_usage": record}`` for JSON log formatters), keeps running
totals per tenant in memory, and calls the listeners later features (budgets, metrics)
subscribe. A listener that fails is logged and never fails the request.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..core import Usage

log = logging.getLogger("dragoman.usage")


@dataclass(slots=True)
class UsageRecord:
    """What one request used and cost. ``outcome`` is ``ok``, an error kind
    (``rate_limited``…) or ``client_closed``; ``cost`` is in the configured currency
    (USD unless the operator prices otherwise)."""

    tenant: str
    model: str
    provider: str
    dialect: str
    stream: bool
    passthrough: bool
    usage: Usage
    cost: float
    outcome: str = "ok"
    duration_ms: float = 0.0
    deployment: str = ""
    """The label of the deployment that served (or was tried last); ``served_model`` its
    model name (another than ``model`` after a fallback)."""
    served_model: str = ""
    key_id: str | None = None
    thread: str | None = None
    started: float = 0.0
    """Wall-clock time the request arrived (seconds since the epoch)."""
    ttft_ms: float | None = None
    """Until the first streamed byte to the client; None for whole answers."""
    upstream_ms: float | None = None
    """Until the serving deployment's first answer (retries included); None without one."""
    status: int = 200
    retried: tuple[str, ...] = ()
    """Labels of the deployments whose attempt failed and was retried."""
    refused: bool = False
    """Refused by a rate limit or budget before reaching any deployment."""

    @property
    def input_tokens(self) -> int:
        return self.usage.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.usage.output_tokens

    @property
    def cached_tokens(self) -> int:
        return self.usage.cached_tokens

    def logfmt(self) -> str:
        u = self.usage
        return (f"tenant={logfmt_value(self.tenant)} model={logfmt_value(self.model)} "
                f"provider={logfmt_value(self.provider)} dialect={self.dialect} "
                f"stream={str(self.stream).lower()} passthrough={str(self.passthrough).lower()} "
                f"outcome={self.outcome} input_tokens={u.input_tokens} "
                f"output_tokens={u.output_tokens} cached_tokens={u.cached_tokens} "
                f"cache_write_tokens={u.cache_write_tokens} "
                f"reasoning_tokens={u.reasoning_tokens} cost_usd={format_cost(self.cost)} "
                f"duration_ms={self.duration_ms:.1f}")


def format_cost(cost: float) -> str:
    """Plain decimal, no exponent, no trailing zeros (``0.0000125``, ``0``)."""
    return f"{cost:.10f}".rstrip("0").rstrip(".") or "0"


def logfmt_value(value: str) -> str:
    """A logfmt value: bare when it is a plain token, else quoted and escaped."""
    if value and all(c.isalnum() or c in "-_./:*@" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(slots=True)
class UsageTotals:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


Listener = Callable[[UsageRecord], Awaitable[None] | None]


@dataclass
class UsageAccounting:
    listeners: list[Listener] = field(default_factory=list)
    totals: dict[str, UsageTotals] = field(default_factory=dict)
    """Running totals per tenant, since this process started."""

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(record)`` (plain or async) after every request."""
        self.listeners.append(listener)

    async def record(self, rec: UsageRecord) -> None:
        t = self.totals.get(rec.tenant)
        if t is None:
            t = self.totals[rec.tenant] = UsageTotals()
        t.requests += 1
        t.input_tokens += rec.usage.input_tokens
        t.output_tokens += rec.usage.output_tokens
        t.cost += rec.cost
        if log.isEnabledFor(logging.INFO):
            log.info("usage %s", rec.logfmt(), extra={"dragoman_usage": rec})
        for listener in self.listeners:
            try:
                got = listener(rec)
                if got is not None and inspect.isawaitable(got):  # (None: a plain listener)
                    await got
            except Exception:
                log.exception("usage listener %r failed", listener)

