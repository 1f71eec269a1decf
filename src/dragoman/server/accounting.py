"""Per-request usage, as the server sees it: what one generation used, the response
headers that show it, and the record handed to ``Gateway.usage`` when the request ends
(which the metrics and the usage ledger subscribe to)."""

from __future__ import annotations

import time

from ..auth import Principal
from ..core import ChatRequest, DragomanError, Usage
from ..dialects.contract import Dialect
from ..observe import GatewayMetrics
from ..router import Deployment, Route
from ..router.usage import UsageAccounting, UsageRecord, format_cost


def deployment_label(dep: Deployment) -> str:
    """How metrics, the ledger and the admin API name a deployment."""
    return dep.label or dep.name


class RequestMeter:
    """Filled in while a request runs (``usage``, ``outcome``, ``status``,
    ``passthrough``, the deployments tried and the one that served, the first byte of a
    stream); ``finish`` prices it and records it once. Counted in flight (``metrics``)
    from creation to ``finish``. Nothing here runs per chunk."""

    __slots__ = ("_accounting", "_answered", "_caps", "_deployment", "_dialect", "_finished",
                 "_first_attempt", "_first_byte", "_key_id", "_metrics", "_model",
                 "_provider", "_retried", "_served_model", "_start", "_started", "_stream",
                 "_tenant", "_thread", "outcome", "passthrough", "refused",
                 "status", "usage")

    def __init__(self, accounting: UsageAccounting, principal: Principal, route: Route,
                 dialect: Dialect, req: ChatRequest, *, thread: str | None = None,
                 metrics: GatewayMetrics | None = None) -> None:
        self._accounting = accounting
        self._tenant = principal.tenant_id
        self._key_id = principal.subject
        self._thread = thread
        self._model = req.model
        self._provider = route.provider.name
        self._dialect = dialect.name
        self._stream = req.stream
        self._caps = route.provider.capabilities()
        self._start = time.perf_counter()
        self._started = time.time()
        self._finished = False
        self._deployment = ""
        self._served_model = ""
        self._first_attempt: float | None = None
        self._answered: float | None = None
        self._first_byte: float | None = None
        self._retried: list[str] | None = None
        self._metrics = metrics
        if metrics is not None:
            metrics.requests_now += 1
        self.usage: Usage | None = None
        self.outcome = "ok"
        self.status = 200
        self.passthrough = False
        self.refused = False

    @property
    def deployment(self) -> str | None:
        """The label of the deployment that took the request, or was tried last."""
        return self._deployment or None

    def attempt(self, deployment: Deployment) -> None:
        """An attempt starts on ``deployment`` (the one before it, if any, failed)."""
        if self._first_attempt is None:
            self._first_attempt = time.perf_counter()
        elif self._deployment:
            if self._retried is None:
                self._retried = []
            self._retried.append(self._deployment)
        self._deployment = deployment.label or deployment.name  # (deployment_label)

    def served_by(self, deployment: Deployment) -> None:
        """The deployment that took the request (priced at its rates)."""
        self._answered = time.perf_counter()
        self._deployment = deployment.label or deployment.name  # (deployment_label)
        self._served_model = deployment.name
        self._provider = deployment.provider.name
        self._caps = deployment.provider.capabilities()

    def failed(self, err: DragomanError, *, refused: bool = False) -> None:
        """The request ends with ``err`` (``refused``: by a rate limit or budget)."""
        self.outcome = err.kind.value
        self.status = err.status
        self.refused = refused

    def stream_started(self) -> None:
        """The first byte of a streamed answer goes out now (time to first token)."""
        self._first_byte = time.perf_counter()
        if self._metrics is not None:
            self._metrics.streams_now += 1

    def stream_ended(self) -> None:
        if self._metrics is not None:
            self._metrics.streams_now -= 1

    def cost(self) -> float | None:
        """What the request cost, or None while its usage is unknown."""
        return None if self.usage is None else self._cost_of(self.usage)

    def _cost_of(self, usage: Usage) -> float:
        """``Capabilities.cost_of``; a model with no prices (the default) costs 0.0
        without the call."""
        caps = self._caps
        if not (caps.input_cost_per_mtok or caps.output_cost_per_mtok
                or caps.cached_input_cost_per_mtok or caps.cache_write_cost_per_mtok):
            return 0.0
        return caps.cost_of(usage)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``x-dragoman-*`` response headers for a whole (non-stream) answer."""
        u = self.usage or Usage()
        return [(b"x-dragoman-input-tokens", str(u.input_tokens).encode()),
                (b"x-dragoman-output-tokens", str(u.output_tokens).encode()),
                (b"x-dragoman-cached-tokens", str(u.cached_tokens).encode()),
                (b"x-dragoman-cost-usd", format_cost(self._cost_of(u)).encode())]

    async def finish(self) -> None:
        """Record the request (once; later calls do nothing)."""
        if self._finished:
            return
        self._finished = True
        if self._metrics is not None:
            self._metrics.requests_now -= 1
        usage = self.usage or Usage()
        start = self._start
        first, answered, tried = self._first_byte, self._answered, self._first_attempt
        if self.outcome == "client_closed":
            self.status = 499
        await self._accounting.record(UsageRecord(
            tenant=self._tenant, model=self._model, provider=self._provider,
            dialect=self._dialect, stream=self._stream, passthrough=self.passthrough,
            usage=usage, cost=self._cost_of(usage), outcome=self.outcome,
            duration_ms=(time.perf_counter() - start) * 1000, deployment=self._deployment,
            served_model=self._served_model, key_id=self._key_id, thread=self._thread,
            started=self._started, status=self.status,
            ttft_ms=(first - start) * 1000 if first is not None else None,
            upstream_ms=(answered - tried) * 1000 if answered is not None and tried is not None
            else None,
            retried=tuple(self._retried) if self._retried else (), refused=self.refused))
