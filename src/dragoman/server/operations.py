"""The operator's side of one gateway process: its metrics, the usage ledger writer, and
the sampler that copies breaker states and upstream pool sizes into the metrics.

Every finished generation is handed to two listeners of ``UsageAccounting``: the metrics
tally it by label set at once (``GatewayMetrics.count``: a dict lookup and a few number
adds), and the ledger's row, one plain tuple, is queued for the batch writer, which
appends it to the sessions database (``observe.ledger``). Nothing is kept per request
for later; every second, and before a scrape or shutdown, ``refresh`` adds the tallies
into the metrics (work per label set, not per request) and samples breakers and pools.

Nothing at all is done per request for what nobody can read: the metrics only with
admin keys (``/metrics`` and ``/admin/*`` refuse everyone without them), the ledger only
with admin keys or a durable session store (``dragoman usage`` reads the database; rows of
the in-memory store die with the process and only ``/admin/usage`` shows them), and never
with ``sessions.usage_ledger: false``. Neither: no listener, no in-flight counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..observe import BatchWriter, GatewayMetrics
from ..providers.base import HttpDialectProvider
from ..router import ModelTable
from ..router.usage import UsageAccounting, UsageRecord
from ..sessions import SessionStore
from ..sessions.usage import UsageValues
from .accounting import deployment_label

log = logging.getLogger("dragoman.server")

#: Seconds between metric flushes (and samples of breakers and upstream connections): how
#: stale another worker's numbers may be in a scrape.
SAMPLE_EVERY = 1.0


def ledger_values(rec: UsageRecord) -> UsageValues:
    """``rec`` as a ledger row: its values in ``usage.COLUMNS`` order (a plain tuple, the
    cheapest row to build; tests/observe checks the order against ``UsageRow``)."""
    u = rec.usage
    return (int(rec.started * 1000), rec.tenant, rec.key_id, rec.model, rec.deployment,
            rec.provider, rec.dialect, rec.stream, u.input_tokens, u.output_tokens,
            u.cached_tokens, u.reasoning_tokens, rec.cost, rec.duration_ms, rec.ttft_ms,
            rec.upstream_ms, rec.status, rec.outcome, rec.thread)


class Operations:
    def __init__(self, models: ModelTable, sessions: SessionStore, usage: UsageAccounting, *,
                 admin: bool) -> None:
        """``admin``: the operator's keys are configured (someone can read the metrics)."""
        self._models = models
        self._sessions = sessions
        self.metrics = GatewayMetrics()
        self.ledger: BatchWriter[UsageValues] = BatchWriter(
            sessions.append_usage, max_batch=sessions.ledger_batch_rows)
        sessions.ledger_backlog = lambda: self.ledger.pending
        self._sampler: asyncio.Task[None] | None = None
        #: the metrics the request path updates (in-flight counts), None when unreadable
        self.live_metrics: GatewayMetrics | None = self.metrics if admin else None
        self._ledger_on = sessions.settings.usage_ledger and (
            admin or sessions.settings.backend != "memory")
        if admin:
            usage.subscribe(self.metrics.count)
            sessions.on_timing = self.metrics.store_timing()
        if self._ledger_on:
            usage.subscribe(self._keep_row)

    def _keep_row(self, rec: UsageRecord) -> None:
        self.ledger.add(ledger_values(rec))

    def refresh(self) -> None:
        """Add the requests tallied since the last call into the metrics, and copy each
        deployment's breaker state and open upstream connections into them (this worker's
        view; the metrics merge the workers)."""
        m = self.metrics
        m.flush()
        for d in self._models.deployments():
            label = deployment_label(d)
            m.set_breaker(label, d.health.breaker.state.value)
            if isinstance(d.provider, HttpDialectProvider):
                m.set_connections(label, d.provider.http.open_connections)

    async def _sample_forever(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception:
                log.warning("sampling metrics failed", exc_info=True)
            await asyncio.sleep(SAMPLE_EVERY)

    def start(self) -> None:
        self.ledger.start()
        if self._sampler is None:
            self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())

    async def aclose(self) -> None:
        """Write the rest of the ledger (before the session store closes)."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        self.refresh()
        self._sessions.closing()  # (its last batches written at once, not at idle priority)
        await self.ledger.aclose()
        self.metrics.close()
