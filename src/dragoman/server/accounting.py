"""Per-request usage, as the server sees it: what one generation used, the response
headers that show it, and the record handed to ``Gateway.usage`` when the request ends."""

from __future__ import annotations

import time

from ..auth import Principal
from ..core import ChatRequest, Usage
from ..dialects.base import Dialect
from ..router import Deployment, Route
from ..router.usage import UsageAccounting, UsageRecord, format_cost


class RequestMeter:
    """Filled in while a request runs (``usage``, ``outcome``, ``passthrough``, the
    deployment that served it); ``finish`` prices it and records it once. Nothing here
    runs per chunk."""

    __slots__ = ("_accounting", "_caps", "_dialect", "_finished", "_model", "_provider",
                 "_start", "_stream", "_tenant", "deployment", "outcome", "passthrough",
                 "usage")

    def __init__(self, accounting: UsageAccounting, principal: Principal, route: Route,
                 dialect: Dialect, req: ChatRequest) -> None:
        self._accounting = accounting
        self._tenant = principal.tenant_id
        self._model = req.model
        self._provider = route.provider.name
        self._dialect = dialect.name
        self._stream = req.stream
        self._caps = route.provider.capabilities()
        self._start = time.perf_counter()
        self._finished = False
        self.usage: Usage | None = None
        self.outcome = "ok"
        self.passthrough = False
        self.deployment: str | None = None
        """the label of the deployment that took the request, or was tried last
        (``model#0``)"""

    def served_by(self, deployment: Deployment) -> None:
        """The deployment that took the request (priced at its rates)."""
        self._provider = deployment.provider.name
        self._caps = deployment.provider.capabilities()

    def cost(self) -> float | None:
        """What the request cost, or None while its usage is unknown."""
        return None if self.usage is None else self._caps.cost_of(self.usage)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``x-dragoman-*`` response headers for a whole (non-stream) answer."""
        u = self.usage or Usage()
        return [(b"x-dragoman-input-tokens", str(u.input_tokens).encode()),
                (b"x-dragoman-output-tokens", str(u.output_tokens).encode()),
                (b"x-dragoman-cached-tokens", str(u.cached_tokens).encode()),
                (b"x-dragoman-cost-usd", format_cost(self._caps.cost_of(u)).encode())]

    async def finish(self) -> None:
        """Record the request (once; later calls do nothing)."""
        if self._finished:
            return
        self._finished = True
        usage = self.usage or Usage()
        await self._accounting.record(UsageRecord(
            tenant=self._tenant, model=self._model, provider=self._provider,
            dialect=self._dialect, stream=self._stream, passthrough=self.passthrough,
            usage=usage, cost=self._caps.cost_of(usage), outcome=self.outcome,
            duration_ms=(time.perf_counter() - self._start) * 1000))
