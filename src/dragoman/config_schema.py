"""The schema of ``dragoman.yaml``: the msgspec structs that ``config.py`` validates a
loaded file into (and that the docs' configuration reference is generated from).

Each struct turns its own section into the runtime object it configures (``policy()``,
``settings()``, ``store()``, …); loading, ``${VAR}`` interpolation and the checks across
sections live in ``config.py``, which re-exports every public name of this module.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from .agents.orchestrator_spec import OrchestratorSpec
from .agents.spec import AnyAgentSpec
from .auth.settings import AuthConfig
from .core import Capabilities, ErrorKind
from .net import Timeouts
from .net.fetch import FetchPolicy
from .net.http import DEFAULT_POOL
from .observe.tracing_settings import TracingSettings
from .providers.registry import ProviderSpec
from .router import BreakerPolicy, RetryPolicy, RoutePolicy
from .router.limits import (
    Budget,
    LimitsPolicy,
    LimitStore,
    MemoryLimitStore,
    RateLimit,
)
from .router.table import DEFAULT_FALLBACK_ON
from .server.gateway import DEFAULT_MAX_BODY
from .server.http_limits import HTTP_LIMITS, HttpLimits
from .sessions import StoreSettings, parse_duration
from .sessions.settings import DEFAULT_LOCK_WAIT


class ConfigError(ValueError):
    pass


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080
    workers: Annotated[int, msgspec.Meta(ge=1)] = 1
    max_body_bytes: int = DEFAULT_MAX_BODY
    # The HTTP/1 front door (``server.http_limits.HttpLimits``; docs/configuration.md,
    # "Request limits").
    max_head_bytes: Annotated[int, msgspec.Meta(ge=1024)] = HTTP_LIMITS.max_head_bytes
    max_headers: Annotated[int, msgspec.Meta(ge=1)] = HTTP_LIMITS.max_headers
    max_request_line: Annotated[int, msgspec.Meta(ge=64)] = HTTP_LIMITS.max_request_line
    head_timeout: Annotated[float, msgspec.Meta(gt=0)] = HTTP_LIMITS.head_timeout
    body_timeout: Annotated[float, msgspec.Meta(gt=0)] = HTTP_LIMITS.body_timeout
    keepalive_timeout: Annotated[float, msgspec.Meta(gt=0)] = HTTP_LIMITS.keepalive_timeout
    api_keys: list[str] = msgspec.field(default_factory=list)
    #: the model for requests that name none; with ``unknown_model: default`` also for
    #: names no model matches (otherwise those are a 404)
    default_model: str | None = None
    unknown_model: Literal["404", "default"] = "404"
    #: serve every route under this path (``/openai`` → ``/openai/v1/chat/completions``)
    path_prefix: str = ""
    #: names/payloads of agent events on the wire: ``dragoman.*`` or tako's ``tako.*``
    agents_events: Literal["dragoman", "tako"] = "dragoman"
    #: Keys for the operator's routes (``/metrics``, ``/admin/*``, ``/ui``); client keys
    #: never open them, and with none configured they refuse everyone.
    admin_keys: list[str] = msgspec.field(default_factory=list)

    def http_limits(self) -> HttpLimits:
        return HttpLimits(max_head_bytes=self.max_head_bytes, max_headers=self.max_headers,
                          max_request_line=self.max_request_line,
                          head_timeout=self.head_timeout, body_timeout=self.body_timeout,
                          keepalive_timeout=self.keepalive_timeout)


class TimeoutConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    connect: float = 10.0
    first_byte: float = 600.0
    idle: float = 300.0
    total: float | None = None


Duration = str | float


def _seconds(value: Duration, where: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as e:
        raise ConfigError(f"invalid configuration: {e} - at `{where}`") from None


class BreakerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A deployment's circuit breaker (``router.health.BreakerPolicy``)."""

    failures: Annotated[int, msgspec.Meta(ge=0)] = 5
    error_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    min_requests: Annotated[int, msgspec.Meta(ge=1)] = 20
    window: Duration = 30.0
    cooldown: Duration = 30.0

    def policy(self, where: str) -> BreakerPolicy:
        return BreakerPolicy(failures=self.failures, error_rate=self.error_rate,
                             min_requests=self.min_requests,
                             window=_seconds(self.window, f"{where}.window"),
                             cooldown=_seconds(self.cooldown, f"{where}.cooldown"))


class RetryConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``router.table.RetryPolicy``: attempts after the first, and their back-off."""

    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 0
    backoff: Annotated[float, msgspec.Meta(ge=0)] = 0.25
    max_backoff: Annotated[float, msgspec.Meta(ge=0)] = 8.0
    max_retry_after: Annotated[float, msgspec.Meta(ge=0)] = 20.0

    def policy(self) -> RetryPolicy:
        return RetryPolicy(retries=self.retries, backoff=self.backoff,
                           max_backoff=self.max_backoff, max_retry_after=self.max_retry_after)


class DeploymentConfig(msgspec.Struct, kw_only=True):
    """The keys every deployment may have; any other key is provider-specific and is
    validated by that provider (see ``providers.registry``)."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeouts: TimeoutConfig = msgspec.field(default_factory=TimeoutConfig)
    capabilities: Capabilities | None = None
    passthrough: bool = True
    """False: never take the same-dialect fast path (always translate)."""
    weight: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_POOL
    """Size of this deployment's upstream connection pool."""
    breaker: BreakerConfig | None = None
    """None: a breaker with the defaults when the model has another deployment or a
    fallback, else none."""
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:  # the key must never reach a log
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r})"

    def spec(self, name: str) -> ProviderSpec:
        t = self.timeouts
        assert self.provider is not None
        return ProviderSpec(name=name, provider=self.provider, model=self.model,
                            base_url=self.base_url, api_key=self.api_key, headers=self.headers,
                            timeouts=Timeouts(connect=t.connect, first_byte=t.first_byte,
                                              idle=t.idle, total=t.total),
                            max_connections=self.max_connections,
                            capabilities=self.capabilities, options=self.options)


class ModelConfig(DeploymentConfig, kw_only=True):
    """One client-visible model name: either one deployment written inline
    (``provider``, ``model``, …) or several under ``deployments``, plus how requests are
    spread over them and where they go when all fail."""

    name: str
    deployments: list[DeploymentConfig] = msgspec.field(default_factory=list)
    hold_history: bool = False
    """True: dragoman holds the conversation of thread-keyed requests (sessions)."""
    balance: Literal["weighted", "least_outstanding", "latency"] = "weighted"
    fallbacks: list[str] = msgspec.field(default_factory=list)
    fallback_on: list[ErrorKind] | None = None
    retry: RetryConfig = msgspec.field(default_factory=RetryConfig)

    def __repr__(self) -> str:  # the key must never reach a log
        return f"ModelConfig(name={self.name!r}, provider={self.provider!r}, model={self.model!r})"

    def deployment_configs(self) -> list[DeploymentConfig]:
        return self.deployments or [self]

    def route_policy(self) -> RoutePolicy:
        on = frozenset(self.fallback_on) if self.fallback_on is not None \
            else DEFAULT_FALLBACK_ON
        return RoutePolicy(balance=self.balance, fallbacks=tuple(self.fallbacks),
                           fallback_on=on, retry=self.retry.policy())


class RateLimitConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rpm: Annotated[float, msgspec.Meta(gt=0)] | None = None
    tpm: Annotated[float, msgspec.Meta(gt=0)] | None = None

    def limit(self) -> RateLimit:
        return RateLimit(rpm=self.rpm, tpm=self.tpm)


class BudgetConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    usd: Annotated[float, msgspec.Meta(ge=0)]
    window: Duration = "30d"

    def budget(self, where: str) -> Budget:
        window = _seconds(self.window, f"{where}.window")
        if window <= 0:  # the counters divide the window into buckets
            raise ConfigError(f"invalid configuration: a budget window must be longer than "
                              f"0 - at `{where}.window`")
        return Budget(amount=self.usd, window=window)


class LimitsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``limits:`` — rate limits and budgets (``router.limits``). ``backend: redis`` shares
    the counters between every worker and host pointed at the same Redis."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
    redis_prefix: str = "dragoman"
    tenant: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)
    tenants: dict[str, RateLimitConfig] = msgspec.field(default_factory=dict)
    models: dict[str, RateLimitConfig] = msgspec.field(default_factory=dict)
    budget: BudgetConfig | None = None
    budgets: dict[str, BudgetConfig] = msgspec.field(default_factory=dict)
    reserve_output_tokens: Annotated[int, msgspec.Meta(gt=0)] = 4096

    def __repr__(self) -> str:  # the Redis URL may hold a password
        return f"LimitsConfig(backend={self.backend!r})"

    def policy(self) -> LimitsPolicy:
        w = "$.limits"
        return LimitsPolicy(
            tenant=self.tenant.limit(),
            tenants={k: v.limit() for k, v in self.tenants.items()},
            models={k: v.limit() for k, v in self.models.items()},
            budget=self.budget.budget(f"{w}.budget") if self.budget else None,
            budgets={k: v.budget(f"{w}.budgets.{k}") for k, v in self.budgets.items()},
            reserve_output_tokens=self.reserve_output_tokens)

    def store(self) -> LimitStore:
        if self.backend == "memory":
            return MemoryLimitStore()
        if not self.redis_url:
            raise ConfigError("`$.limits.redis_url` is required for the redis backend "
                              "(redis://[:password@]host:port/db)")
        try:
            from .router.limits.redis_store import RedisLimitStore
        except ImportError:
            raise ConfigError("the redis backend of `$.limits` needs the redis package: "
                              "pip install 'dragoman[redis]'") from None
        try:
            return RedisLimitStore(self.redis_url, prefix=self.redis_prefix)
        except ValueError:  # redis-py's message would quote the URL, password included
            raise ConfigError("invalid configuration: not a Redis URL (redis://, rediss:// "
                              "or unix://) - at `$.limits.redis_url`") from None


class FetchConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``fetch:`` — how dragoman fetches URLs itself (images for vendors that cannot take
    URLs: Bedrock, Ollama) through the SSRF-safe fetcher. ``allow_hosts`` names hosts
    exempt from the private/loopback/metadata address checks (e.g. an internal image
    server); everything else must resolve to public addresses only."""

    allow_hosts: list[str] = msgspec.field(default_factory=list)
    max_bytes: Annotated[int, msgspec.Meta(gt=0)] = 20 * 1024 * 1024
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    max_redirects: Annotated[int, msgspec.Meta(ge=0)] = 5

    def image_policy(self) -> FetchPolicy:
        return FetchPolicy(max_bytes=self.max_bytes, timeout=self.timeout,
                           max_redirects=self.max_redirects, allowed_content_types=("image/",),
                           allow_hosts=frozenset(h.strip().strip("[]").rstrip(".").lower()
                                                 for h in self.allow_hosts))


class SessionsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``sessions:`` — where stored Responses and threads live (``dragoman.sessions``).
    ``path`` defaults to ``$XDG_DATA_HOME/dragoman/sessions.db``; durations are ``7d``,
    ``12h``, ``30m``, ``45s`` or seconds; ``ttl: null`` keeps everything."""

    backend: Literal["sqlite", "postgres", "memory"] = "sqlite"
    path: str | None = None
    dsn: str | None = None
    pool_size: Annotated[int, msgspec.Meta(ge=1)] | None = None
    ttl: str | float | None = "30d"
    lock_wait: str | float = DEFAULT_LOCK_WAIT
    record_threads: bool = True
    #: keep the usage ledger in this store (off: metrics only, ``/admin/usage`` is empty)
    usage_ledger: bool = True
    #: SQLite: who writes the usage ledger, a child process of each worker (its own GIL)
    #: or a thread of the worker (``docs/operations.md``, "The usage ledger")
    ledger_writer: Literal["process", "thread"] = "process"
    #: SQLite, process writer: its priority, ``idle`` (Linux ``SCHED_IDLE``, a starved
    #: writer replaced by one at ``nice`` while batches wait) or ``nice`` (nice 10)
    ledger_priority: Literal["idle", "nice"] = "idle"

    def __repr__(self) -> str:  # the DSN may hold a password
        return f"SessionsConfig(backend={self.backend!r}, path={self.path!r})"

    def settings(self) -> StoreSettings:
        def duration(key: str, value: str | float) -> float:
            try:
                return parse_duration(value)
            except ValueError as e:
                raise ConfigError(f"invalid configuration: {e} - at `$.sessions.{key}`") from None
        if self.backend == "postgres" and not self.dsn:
            raise ConfigError("`$.sessions.dsn` is required for the postgres backend "
                              "(postgresql://user:password@host:port/database)")
        ttl = duration("ttl", self.ttl) if self.ttl is not None else None
        return StoreSettings(backend=self.backend, path=self.path, dsn=self.dsn,
                             pool_size=self.pool_size, ttl=ttl or None,
                             lock_wait=duration("lock_wait", self.lock_wait),
                             record_threads=self.record_threads,
                             usage_ledger=self.usage_ledger,
                             ledger_writer=self.ledger_writer,
                             ledger_priority=self.ledger_priority)


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    #: Who may call: a resolver (static tokens, jwt, oidc, vault, chain); see README.
    #: ``server.api_keys`` is the shorthand for a static table of bare keys.
    auth: AuthConfig | None = None
    fetch: FetchConfig = msgspec.field(default_factory=FetchConfig)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
    agents: list[AnyAgentSpec | OrchestratorSpec] = msgspec.field(default_factory=list)
    sessions: SessionsConfig = msgspec.field(default_factory=lambda: SessionsConfig())
    limits: LimitsConfig | None = None
    #: OpenTelemetry traces (the ``otel`` extra); see docs/operations.md "Tracing".
    tracing: TracingSettings | None = None
