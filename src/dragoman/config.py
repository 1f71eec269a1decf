"""Load ``dragoman.yaml`` → build the gateway.

Validation is msgspec's, with unknown keys forbidden, so a typo is reported with its path
(``unknown field `provder` - at `$.models[0]```). ``${VAR}`` and ``${VAR:-default}`` are
replaced from the environment in every string value; a missing variable is an error that
names the variable and the key, never a value.
"""

from __future__ import annotations

import logging
import os
import re
import time
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from .agents.orchestrator_spec import (
    OrchestratorSpec,
    OrchestratorSpecError,
    build_orchestrator,
    references,
    with_default_kind,
)
from .agents.spec import (
    AgentSpec,
    AgentSpecError,
    AnyAgentSpec,
    HarnessSpec,
    build_agent,
    build_harness,
)
from .auth import AuthResolver
from .auth.settings import AuthConfig, AuthConfigError, build_resolver
from .config_errors import (
    SourceMap,
    did_you_mean,
    load_yaml,
    schema_hint,
    with_root_path,
    yaml_error,
)
from .core import Capabilities, ErrorKind
from .core.extras import MissingExtra
from .net import Timeouts
from .net.fetch import FetchPolicy
from .net.http import DEFAULT_POOL
from .observe.tracing_settings import TracingSettings
from .observe.tracing_settings import effective as effective_tracing
from .providers import registry
from .providers.base import LlmProvider
from .providers.registry import ProviderSpec
from .router import BreakerPolicy, Deployment, ModelTable, RetryPolicy, RoutePolicy
from .router.limits import (
    Budget,
    Limiter,
    LimitsPolicy,
    LimitStore,
    MemoryLimitStore,
    RateLimit,
)
from .router.routed import RoutedProvider
from .router.table import DEFAULT_FALLBACK_ON, Route
from .server.agent_turns import StoredTurns
from .server.gateway import DEFAULT_MAX_BODY, Gateway, normalize_prefix
from .server.http_limits import HTTP_LIMITS, HttpLimits
from .server.model_choice import ModelChoice
from .sessions import StoreSettings, open_store, parse_duration
from .sessions.settings import DEFAULT_LOCK_WAIT

log = logging.getLogger("dragoman.config")


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


_DEPLOYMENT_KEYS = frozenset(DeploymentConfig.__struct_fields__) - {"options"}
_MODEL_KEYS = frozenset(ModelConfig.__struct_fields__) - {"options"}


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
                             usage_ledger=self.usage_ledger)


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


def _split(entry: Any, common: frozenset[str]) -> Any:
    """A model or deployment mapping with its provider-specific keys under ``options``."""
    if not isinstance(entry, dict):
        return entry
    out = {k: v for k, v in entry.items() if k in common}
    out["options"] = {k: v for k, v in entry.items() if k not in common}
    if isinstance(out.get("deployments"), list):
        out["deployments"] = [_split(d, _DEPLOYMENT_KEYS) for d in out["deployments"]]
    return out


def _split_model_options(data: dict[str, Any]) -> dict[str, Any]:
    """Move each model entry's (and deployment's) provider-specific keys under ``options``."""
    models = data.get("models")
    if not isinstance(models, list):
        return data
    return {**data, "models": [_split(m, _MODEL_KEYS) for m in models]}


#: What ``dragoman serve`` offers with no configuration: the offline echo model.
DEFAULT_MODELS = [ModelConfig(name="dragoman/echo", provider="echo"),
                  ModelConfig(name="echo", provider="echo")]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, path: str) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            var, default = m.group(1), m.group(2)
            got = os.environ.get(var)
            if got is None:
                if default is None:
                    raise ConfigError(f"environment variable {var} is not set (used at {path})")
                return default
            return got
        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def parse_config(data: Any) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping at the top level")
    data = _interpolate(data, "$")
    if isinstance(data, dict) and "agents" in data:
        data = {**data, "agents": with_default_kind(data["agents"])}
    try:
        cfg = msgspec.convert(_split_model_options(data), Config)
    except msgspec.ValidationError as e:
        msg = with_root_path(str(e)).replace(".options", "")
        raise ConfigError(f"invalid configuration: {msg}{schema_hint(msg, Config)}") \
            from None
    names = [m.name for m in cfg.models]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"duplicate model name(s) in `$.models`: {', '.join(sorted(dup))}")
    for i, m in enumerate(cfg.models):
        _check_model(i, m, set(names))
    _check_agents(cfg)
    if cfg.limits is not None:
        cfg.limits.policy()  # durations checked now, not at the first request
    return cfg


def _check_model(i: int, m: ModelConfig, names: set[str]) -> None:
    where = f"$.models[{i}]"
    if m.deployments and (m.provider or m.model or m.options):
        stray = sorted(m.options) or ["provider/model"]
        raise ConfigError(f"invalid configuration: `{where}` lists `deployments`, so "
                          f"{', '.join(stray)} belong(s) in each deployment, not the model "
                          f"- at `{where}`")
    for j, d in enumerate(m.deployment_configs()):
        at = f"{where}.deployments[{j}]" if m.deployments else where
        if d.provider is None:
            unknown = "".join(f"; unknown field `{k}`{did_you_mean(k, _MODEL_KEYS)}"
                              for k in sorted(d.options))
            raise ConfigError(f"invalid configuration: missing required field `provider` "
                              f"- at `{at}`{unknown}")
        if d.provider not in registry.PROVIDERS:
            raise ConfigError(f"unknown provider {d.provider!r} at `{at}.provider` "
                              f"(known: {', '.join(sorted(registry.PROVIDERS))})"
                              f"{did_you_mean(d.provider, registry.PROVIDERS)}")
        if d.provider not in registry.MODEL_OPTIONAL and not d.model:
            raise ConfigError(f"`{at}.model` is required for provider {d.provider!r}")
        if d.breaker is not None:
            d.breaker.policy(f"{at}.breaker")
    for f in m.fallbacks:
        if f == m.name or f not in names:
            raise ConfigError(f"`{where}.fallbacks`: {f!r} is not another model of `$.models`"
                              f"{did_you_mean(f, names - {m.name})}")


def _check_agents(cfg: Config) -> None:
    """Agent names are model names too (unique); each runs on a model (or an agent)
    defined before it, named exactly."""
    known = {m.name for m in cfg.models or DEFAULT_MODELS}
    later = {a.name: j for j, a in enumerate(cfg.agents)}
    for i, a in enumerate(cfg.agents):
        if a.name in known:
            raise ConfigError(f"`$.agents[{i}].name`: {a.name!r} is already a model or agent "
                              "name")
        refs = ([(".model", a.model)] if isinstance(a, AgentSpec | HarnessSpec)
                else references(a))
        for where, ref in refs:
            if ref in known:
                continue
            why = "is not a model (or agent) defined before this agent"
            if ref == a.name:
                why = "is this agent itself (a cycle)"
            elif later.get(ref, -1) > i:
                why = (f"is defined after this agent, at `$.agents[{later[ref]}]` (an agent "
                       "may use only models and agents defined before it, so that no cycle "
                       "can form)")
            raise ConfigError(f"`$.agents[{i}]{where}`: {ref!r} {why}"
                              f"{did_you_mean(ref, known)}")
        known.add(a.name)


def load_config(path: str | Path | None) -> Config:
    """The config of a YAML file (None: the default config); a ConfigError names the
    file, the line and the path (``config_errors``)."""
    return _load(path)[0]


def check_config(path: str | Path | None) -> Config:
    """``load_config``, then every check ``build_gateway`` makes (provider keys, agents,
    auth), its errors located in the file too: what ``dragoman serve`` and ``dragoman
    config check`` stop on. Nothing is connected to or started."""
    cfg, source = _load(path)
    try:
        build_gateway(cfg)
    except ConfigError as e:
        raise ConfigError(source.locate(str(e))) from None
    return cfg


def _load(path: str | Path | None) -> tuple[Config, SourceMap]:
    if path is None:
        return parse_config({}), SourceMap(None)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        data, source = load_yaml(text, path)
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error(e, path)) from None
    try:
        return parse_config(data), source
    except ConfigError as e:
        raise ConfigError(source.locate(str(e))) from None


def _build_provider(where: str, name: str, d: DeploymentConfig,
                    fetch_policy: FetchPolicy) -> LlmProvider:
    spec = d.spec(name)
    spec.fetch_policy = fetch_policy
    try:
        return registry.build(spec)
    except registry.OptionsError as e:
        msg = str(e).replace("`$", f"`{where}")
        if "- at `" not in msg:
            msg += f" - at `{where}`"
        if e.options_type is not None:
            msg += schema_hint(str(e), e.options_type, extra=_MODEL_KEYS)
        raise ConfigError(f"invalid configuration: {msg}") from None


def _deployments(i: int, m: ModelConfig, fetch_policy: FetchPolicy,
                 created: int) -> list[Deployment]:
    out = []
    for j, d in enumerate(m.deployment_configs()):
        where = f"$.models[{i}].deployments[{j}]" if m.deployments else f"$.models[{i}]"
        assert d.provider is not None
        out.append(Deployment(
            name=m.name, provider=_build_provider(where, m.name, d, fetch_policy),
            owned_by="dragoman" if d.provider == "echo" else d.provider,
            passthrough=d.passthrough, hold_history=m.hold_history, created=created,
            weight=d.weight,
            breaker=d.breaker.policy(f"{where}.breaker") if d.breaker is not None else None,
            label=f"{m.name}#{j}"))
    return out


#: Agents are not retried by the router: a failed run may have executed tools already.
_AGENT_POLICY = RoutePolicy(retry=RetryPolicy(retries=0))


def build_gateway(cfg: Config) -> Gateway:
    _install_tracing(cfg)
    models = cfg.models or DEFAULT_MODELS
    fetch_policy = cfg.fetch.image_policy()
    created = int(time.time())  # /v1/models "created": when this gateway configured them
    deployments = [d for i, m in enumerate(models)
                   for d in _deployments(i, m, fetch_policy, created)]
    policies = {m.name: m.route_policy() for m in models}
    table = ModelTable(deployments, policies)
    settings = cfg.sessions.settings()
    try:
        sessions = open_store(settings)
    except MissingExtra as e:
        raise ConfigError(f"invalid configuration: {e} - at `$.sessions`") from None
    turns = StoredTurns(sessions)  # a client-tool follow-up may reach any worker or host
    by_name = {r.name: r for r in table.routes()}
    for i, a in enumerate(cfg.agents):
        try:
            # The model's own deployment closes the shared provider; the agent's model
            # calls go through that model's route (retries, fallbacks, breakers).
            agent: LlmProvider
            if isinstance(a, HarnessSpec):  # the CLI calls the gateway back for its model
                agent = build_harness(a, default_key=next(iter(cfg.server.api_keys), None),
                                      ttl=settings.ttl)
            elif isinstance(a, AgentSpec):
                agent = build_agent(a, RoutedProvider(table, by_name[a.model]),
                                    owns_provider=False, turns=turns, ttl=settings.ttl)
            else:
                agent = build_orchestrator(a, partial(_routed, table, by_name))
        except (AgentSpecError, OrchestratorSpecError) as e:
            raise ConfigError(f"invalid configuration: {e.message} - at "
                              f"`$.agents[{i}]{e.where}`") from None
        deployments.append(Deployment(name=a.name, provider=agent, owned_by="dragoman-agent",
                                      passthrough=False, hold_history=True, created=created))
        policies[a.name] = _AGENT_POLICY
        table = ModelTable(deployments, policies)
        by_name = {r.name: r for r in table.routes()}
    return Gateway(table, auth=_build_auth(cfg),
                   api_keys=cfg.server.api_keys, max_body_bytes=cfg.server.max_body_bytes,
                   sessions=sessions, limiter=_build_limiter(cfg),
                   agents_events=cfg.server.agents_events,
                   admin_keys=cfg.server.admin_keys,
                   **_server_routing(cfg.server, table))


def _server_routing(server: ServerConfig, table: ModelTable) -> dict[str, Any]:
    """``server.default_model`` / ``unknown_model`` / ``path_prefix`` → Gateway keywords."""
    where = "$.server"
    if server.unknown_model == "default" and not server.default_model:
        raise ConfigError(f"`{where}.unknown_model: default` needs `{where}.default_model`")
    if server.default_model is not None and server.default_model not in \
            {r.name for r in table.routes()}:
        raise ConfigError(f"`{where}.default_model` names no model or agent: "
                          f"{server.default_model!r} - at `{where}.default_model`")
    try:
        prefix = normalize_prefix(server.path_prefix)
    except ValueError as e:
        raise ConfigError(f"invalid configuration: {e} - at `{where}.path_prefix`") from None
    return {"model_choice": ModelChoice(server.default_model, server.unknown_model),
            "path_prefix": prefix}


def _routed(table: ModelTable, routes: dict[str, Route], name: str) -> RoutedProvider:
    return RoutedProvider(table, routes[name])


def _install_tracing(cfg: Config) -> None:
    """Start exporting traces when the config or the ``OTEL_*`` variables ask for it."""
    settings = effective_tracing(cfg.tracing)
    if settings is None:
        return
    try:
        from .observe import tracing
    except ImportError:
        if cfg.tracing is None:  # only OTEL_TRACES_EXPORTER in the environment
            log.warning("OTEL_TRACES_EXPORTER is set but OpenTelemetry is not installed "
                        "(pip install 'dragoman[otel]'): no traces")
            return
        raise ConfigError("`$.tracing` needs OpenTelemetry: pip install 'dragoman[otel]'") \
            from None
    tracing.install(settings)


def _build_limiter(cfg: Config) -> Limiter | None:
    """Limits apply when configured, and whenever callers are authenticated (their
    credentials may carry ``rpm``/``tpm``/``budget_usd``); in process by default."""
    if cfg.limits is None and cfg.auth is None and not cfg.server.api_keys:
        return None
    limits = cfg.limits or LimitsConfig()
    return Limiter(limits.policy(), limits.store())


def _build_auth(cfg: Config) -> AuthResolver | None:
    if cfg.auth is None:
        return None
    if cfg.server.api_keys:
        raise ConfigError("`$.server.api_keys` and `$.auth` are both set: list the keys as "
                          "`auth: {type: static, tokens: [...]}` instead")
    try:
        return build_resolver(cfg.auth)
    except AuthConfigError as e:
        raise ConfigError(f"invalid configuration: {e.message} - at `$.auth{e.where}`") from None
