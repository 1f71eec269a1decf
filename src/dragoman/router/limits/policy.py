"""Who may spend what: requests and tokens per minute, and money over a window.

Limits apply per tenant (``tenant`` for every tenant, ``tenants`` for named ones), per
principal (the ``rpm``/``tpm``/``budget_usd`` a credential carries in
``Principal.limits``, counted per tenant and subject) and per model name across all
callers (``models``). Before dispatch a request is charged, all or nothing, one request
against every requests/min limit, its estimated input tokens against every tokens/min
limit, and a *reservation* against every budget: the most the request can cost (its
input estimate plus ``max_tokens``, or the model's output cap, or
``reserve_output_tokens``, at the dearest deployment's prices). When the request ends the
reservation is settled to what was really spent and the output tokens are added to the
tokens/min counters — always, also when the client left or the upstream failed, so
nothing leaks. Reserving the maximum is what makes a budget impossible to overspend with
concurrent requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ...core import BudgetExhausted, ChatRequest, DragomanError, Overloaded, RateLimited
from ...core.estimate import estimate_request
from ..table import Route
from .store import Charge, Held, LimitExceeded, LimitStore

log = logging.getLogger("dragoman.limits")

MINUTE = 60.0


class Caller(Protocol):
    """Who is charged: ``dragoman.auth.Principal`` has these (the router does not import
    auth; see DESIGN.md's layering)."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def subject(self) -> str | None: ...

    @property
    def limits(self) -> Mapping[str, float]: ...


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests and tokens per minute; None is no limit."""

    rpm: float | None = None
    tpm: float | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``amount`` (in the configured prices' currency) spent in any ``window``
    seconds."""

    amount: float
    window: float = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class LimitsPolicy:
    tenant: RateLimit = RateLimit()
    tenants: Mapping[str, RateLimit] = field(default_factory=dict)
    models: Mapping[str, RateLimit] = field(default_factory=dict)
    budget: Budget | None = None
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    reserve_output_tokens: int = 4096

    def is_empty(self) -> bool:
        return (self.tenant == RateLimit() and not self.tenants and not self.models
                and self.budget is None and not self.budgets)


@dataclass(slots=True)
class _Counted:
    """One limit a request is charged against: what to say if it is exceeded."""

    charge: Charge
    what: str  # "tenant 'acme'", "model 'gpt-4o'"
    unit: str  # "requests", "tokens", "USD"
    budget: bool = False


class Admission:
    """A request let in. ``settle`` exactly once when it ends (idempotent)."""

    __slots__ = ("_budgets", "_input_cost", "_reserved", "_settled", "_store", "_tpm")

    def __init__(self, store: LimitStore | None, budgets: list[Held], tpm: list[Charge],
                 reserved: float, input_cost: float) -> None:
        self._store = store
        self._budgets = budgets
        self._tpm = tpm
        self._reserved = reserved
        self._input_cost = input_cost
        self._settled = False

    @property
    def reserved(self) -> float:
        return self._reserved

    @property
    def pending(self) -> bool:
        """Something is left to settle (nothing for a request no limit applied to)."""
        return not self._settled and self._store is not None and bool(
            self._budgets or self._tpm)

    async def settle(self, cost: float | None, output_tokens: int = 0) -> None:
        """``cost``: what the request really cost (None: unknown — the client left before
        usage arrived; the input share of the reservation is kept)."""
        store = self._store
        if self._settled or store is None:
            return
        self._settled = True
        try:
            if output_tokens > 0:
                for c in self._tpm:
                    await store.add(c.key, c.window, float(output_tokens))
            if self._budgets:
                spent = self._input_cost if cost is None else cost
                for held in self._budgets:
                    await store.adjust(held, spent - self._reserved)
        except DragomanError as e:  # the store went away: its counters expire on their own
            log.warning("settling limits failed: %s", e.message)


ADMIT_ALL = Admission(None, [], [], 0.0, 0.0)


class Limiter:
    def __init__(self, policy: LimitsPolicy, store: LimitStore) -> None:
        self.policy = policy
        self.store = store
        #: No limit of the policy's own: only a credential's ``limits`` can apply, so a
        #: caller without any is admitted without calling ``admit`` (``ADMIT_ALL``).
        self.idle = policy.is_empty()

    async def admit(self, principal: Caller, route: Route, req: ChatRequest) -> Admission:
        counted = self._limits_for(principal, route)
        if not counted:
            return ADMIT_ALL
        needs_tokens = any(c.unit != "requests" for c in counted)
        input_tokens = estimate_request(req) if needs_tokens else 0
        reserve = self._reservation(route, req, input_tokens) if any(
            c.budget for c in counted) else 0.0
        charges = []
        for c in counted:
            amount = 1.0 if c.unit == "requests" else (
                reserve if c.budget else float(input_tokens))
            c.charge = Charge(c.charge.key, c.charge.limit, c.charge.window, amount)
            charges.append(c.charge)
        try:
            held = await self.store.acquire(charges)
        except LimitExceeded as e:
            raise _refusal(counted[e.index], e) from None
        except DragomanError as e:
            # Limits that cannot be checked are not waived: the request is refused as the
            # gateway being unavailable (503, like a session store or identity provider
            # that is down), which clients retry and load balancers understand.
            log.error("limits store failed: %s", e.message)
            raise Overloaded("The rate-limit store is unavailable; please retry.",
                             code="limits_unavailable") from None
        budgets = [h for h, c in zip(held, counted, strict=True) if c.budget]
        tpm = [c.charge for c in counted if c.unit == "tokens"]
        return Admission(self.store, budgets, tpm, reserve,
                         _input_cost(route, input_tokens) if budgets else 0.0)

    def _limits_for(self, principal: Caller, route: Route) -> list[_Counted]:
        p = self.policy
        tenant = principal.tenant_id
        out: list[_Counted] = []
        who = f"tenant '{tenant}'"
        _rate(out, f"t:{tenant}", who, p.tenants.get(tenant, p.tenant))
        if principal.limits:
            lim = principal.limits
            sub = f"p:{tenant}:{principal.subject or ''}"
            _rate(out, sub, f"credential of {who}", RateLimit(lim.get("rpm"), lim.get("tpm")))
            if lim.get("budget_usd") is not None:
                window = (p.budgets.get(tenant) or p.budget or Budget(0)).window
                _budget(out, sub, f"credential of {who}", Budget(lim["budget_usd"], window))
        model = p.models.get(route.name)
        if model is not None:
            _rate(out, f"m:{route.name}", f"model '{route.name}'", model)
        budget = p.budgets.get(tenant, p.budget)
        if budget is not None:
            _budget(out, f"t:{tenant}", who, budget)
        return out

    def _reservation(self, route: Route, req: ChatRequest, input_tokens: int) -> float:
        """The most this request can cost on the dearest deployment of its route."""
        worst = 0.0
        for d in route.deployments:
            caps = d.provider.capabilities()
            out = req.max_tokens or caps.max_output_tokens or self.policy.reserve_output_tokens
            worst = max(worst, caps.cost(input_tokens, out))
        return worst


def _input_cost(route: Route, input_tokens: int) -> float:
    return max(d.provider.capabilities().cost(input_tokens, 0) for d in route.deployments)


def _rate(out: list[_Counted], key: str, who: str, limit: RateLimit) -> None:
    if limit.rpm is not None:
        out.append(_Counted(Charge(f"{key}:rpm", limit.rpm, MINUTE, 1.0), who, "requests"))
    if limit.tpm is not None:
        out.append(_Counted(Charge(f"{key}:tpm", limit.tpm, MINUTE, 0.0), who, "tokens"))


def _budget(out: list[_Counted], key: str, who: str, budget: Budget) -> None:
    out.append(_Counted(Charge(f"{key}:usd", budget.amount, budget.window, 0.0), who, "USD",
                        budget=True))


def _window(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _refusal(c: _Counted, e: LimitExceeded) -> DragomanError:
    limit = f"{c.charge.limit:g} {c.unit} per {_window(c.charge.window)}"
    when = ("" if e.retry_after is None
            else f" Please try again in {max(1, round(e.retry_after))}s.")
    if c.budget:
        # No code of our own: each dialect renders its standard one (OpenAI
        # ``insufficient_quota``), which is what clients branch on.
        if e.retry_after is None:
            return BudgetExhausted(f"This request could cost more than the whole budget of "
                                   f"{c.what} ({limit}); lower max_tokens.")
        return BudgetExhausted(f"The budget of {c.what} is exhausted ({limit}).{when}",
                               retry_after=e.retry_after)
    if e.retry_after is None:
        return RateLimited(f"This request alone exceeds the rate limit of {c.what} "
                           f"({limit}).", code="rate_limit_exceeded")
    return RateLimited(f"Rate limit reached for {c.what}: {limit}.{when}",
                       code="rate_limit_exceeded", retry_after=e.retry_after)


async def settle_quietly(adm: Admission, cost: float | None, output_tokens: int) -> None:
    """Settle even while the request's task is being cancelled (shutdown): shielded."""
    if adm.pending:  # (shield makes a task: not for the many requests with nothing to do)
        await asyncio.shield(adm.settle(cost, output_tokens))
