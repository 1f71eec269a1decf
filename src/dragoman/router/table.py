"""The model table: what clients may ask for, and which deployments answer.

A *deployment* is one provider instance (provider + upstream model + weight). A *route* is
a client-visible model name: one or more deployments sharing that name, a load-balancing
strategy, retries, and ordered fallbacks to other names. Deployments listed under the same
name form one route; the route's policy comes from ``ModelTable(policies=…)``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..core import ErrorKind, NotFound
from ..providers.base import LlmProvider
from ..providers.legacy import with_context
from .health import DEFAULT_BREAKER, NO_BREAKER, BreakerPolicy, DeploymentHealth

Balance = Literal["weighted", "least_outstanding", "latency"]

#: Kinds worth another attempt (the same deployment after a back-off, or another one).
RETRYABLE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.UPSTREAM,
                       ErrorKind.TRANSPORT, ErrorKind.TIMEOUT})
#: Kinds that move a request on to the route's fallbacks once its own deployments failed.
DEFAULT_FALLBACK_ON = RETRYABLE | {ErrorKind.CONTEXT_LENGTH, ErrorKind.CIRCUIT_OPEN}


@dataclass(frozen=True, slots=True)
class Deployment:
    """A client-visible model name bound to one provider instance.

    ``name`` may be a glob (``claude-*``) so one entry answers every model name a client
    family sends (Claude Code asks for several ``claude-…`` names); globs are not listed
    in ``/v1/models``. Several deployments with one name share its traffic by ``weight``.
    """

    name: str
    provider: LlmProvider
    owned_by: str = "dragoman"
    created: int = 0
    passthrough: bool = True
    """Allow the same-dialect fast path (``providers.passthrough``); False always
    translates through the neutral model."""
    hold_history: bool = False
    """dragoman holds the conversation of thread-keyed requests (``dragoman.sessions``):
    clients may send only their newest message; turns on one thread are serialized."""
    weight: float = 1.0
    breaker: BreakerPolicy | None = None
    """None: ``DEFAULT_BREAKER`` when the route has another deployment or a fallback to
    turn to, else none (``NO_BREAKER``)."""
    label: str = ""
    """How logs and ``/readyz`` name this deployment (default ``name#index``)."""
    health: DeploymentHealth = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "health", DeploymentHealth(self.breaker or NO_BREAKER))
        # A provider of the one-argument protocol is called without the request context.
        object.__setattr__(self, "provider", with_context(self.provider))

    def _default_breaker(self, redundant: bool) -> None:
        """Called by the table once the route is known (see ``breaker``)."""
        if self.breaker is None and redundant:
            object.__setattr__(self, "health", DeploymentHealth(DEFAULT_BREAKER))

    @property
    def is_pattern(self) -> bool:
        return any(c in self.name for c in "*?[")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What happens after every deployment of a route has failed a request (failing over
    to another deployment needs no retry): ``retries`` more rounds, while nothing has
    reached the client. Back-off is exponential from ``backoff`` seconds up to
    ``max_backoff``, with jitter, and never shorter than the upstream's ``retry-after``; a
    ``retry-after`` longer than ``max_retry_after`` is not waited for (a fallback, or the
    429 goes to the client with that ``retry-after``).

    0 by default: the official SDKs already retry (twice, honouring ``retry-after``), and
    retries in both places multiply."""

    retries: int = 0
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 20.0


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    balance: Balance = "weighted"
    fallbacks: tuple[str, ...] = ()
    fallback_on: frozenset[ErrorKind] = DEFAULT_FALLBACK_ON
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Route:
    """What one model name resolves to."""

    name: str
    deployments: tuple[Deployment, ...]
    policy: RoutePolicy = RoutePolicy()

    @property
    def first(self) -> Deployment:
        return self.deployments[0]

    @property
    def provider(self) -> LlmProvider:
        """The first deployment's provider (token counting, model metadata)."""
        return self.deployments[0].provider

    @property
    def owned_by(self) -> str:
        return self.deployments[0].owned_by

    @property
    def created(self) -> int:
        return self.deployments[0].created

    @property
    def hold_history(self) -> bool:
        return any(d.hold_history for d in self.deployments)

    @property
    def is_pattern(self) -> bool:
        return self.deployments[0].is_pattern

    @property
    def max_context_tokens(self) -> int:
        return max(d.provider.capabilities().max_context_tokens for d in self.deployments)


def unknown_model(name: str) -> NotFound:
    """The 404 for a model name that is not configured or not this key's to use (one
    answer for both, so names cannot be probed). It says where the names are rather than
    listing any: only ``GET /v1/models`` knows which ones the caller's key may see."""
    return NotFound(f"The model '{name[:200]}' does not exist or you do not have access to "
                    "it; GET /v1/models lists the models this key may use.",
                    param="model", code="model_not_found")


class ModelTable:
    def __init__(self, deployments: Iterable[Deployment],
                 policies: Mapping[str, RoutePolicy] | None = None) -> None:
        grouped: dict[str, list[Deployment]] = {}
        for d in deployments:
            grouped.setdefault(d.name, []).append(d)
        policies = policies or {}
        unknown = set(policies) - set(grouped)
        if unknown:
            raise ValueError(f"policies for unknown model name(s): {', '.join(sorted(unknown))}")
        for name, p in policies.items():
            missing = [f for f in p.fallbacks if f not in grouped]
            if missing:
                raise ValueError(f"model {name!r} falls back to unknown model name(s): "
                                 f"{', '.join(missing)}")
        routes = [Route(name, tuple(ds), policies.get(name, RoutePolicy()))
                  for name, ds in grouped.items()]
        for r in routes:
            for d in r.deployments:
                d._default_breaker(len(r.deployments) > 1 or bool(r.policy.fallbacks))
        self._exact = {r.name: r for r in routes if not r.is_pattern}
        self._patterns = [r for r in routes if r.is_pattern]
        self._routes = routes

    def resolve(self, name: str) -> Route:
        r = self._exact.get(name)
        if r is not None:
            return r
        for p in self._patterns:
            if fnmatch.fnmatchcase(name, p.name):
                return p
        raise unknown_model(name)

    def route(self, name: str) -> Route:
        """A route by its exact configured name (fallback targets)."""
        return self._exact.get(name) or next(r for r in self._patterns if r.name == name)

    def fallbacks(self, route: Route) -> list[Route]:
        """The routes to try after ``route``, in order."""
        return [self.route(n) for n in route.policy.fallbacks if n != route.name]

    def listed(self) -> list[Route]:
        return list(self._exact.values())

    def routes(self) -> list[Route]:
        return list(self._routes)

    def deployments(self) -> list[Deployment]:
        return [d for r in self._routes for d in r.deployments]

    def providers(self) -> list[LlmProvider]:
        seen: dict[int, LlmProvider] = {}
        for d in self.deployments():
            seen.setdefault(id(d.provider), d.provider)
        return list(seen.values())
