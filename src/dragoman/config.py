"""Load ``dragoman.yaml`` → build the gateway.

Validation is msgspec's, with unknown keys forbidden, so a typo is reported with its path
(``unknown field `provder` - at `$.models[0]```). ``${VAR}`` and ``${VAR:-default}`` are
replaced from the environment in every string value; a missing variable is an error that
names the variable and the key, never a value. The schema itself (the structs) is
``config_schema``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import yaml

from .agents.orchestrator_spec import (
    OrchestratorSpecError,
    build_orchestrator,
    references,
    with_default_kind,
)
from .agents.spec import (
    AgentSpec,
    AgentSpecError,
    HarnessSpec,
    build_agent,
    build_harness,
)
from .auth import AuthResolver
from .auth.settings import AuthConfigError, build_resolver
from .config_errors import (
    SourceMap,
    did_you_mean,
    load_yaml,
    schema_hint,
    with_root_path,
    yaml_error,
)
from .config_schema import (
    BreakerConfig,
    BudgetConfig,
    Config,
    ConfigError,
    DeploymentConfig,
    Duration,
    FetchConfig,
    LimitsConfig,
    ModelConfig,
    RateLimitConfig,
    RetryConfig,
    ServerConfig,
    SessionsConfig,
    TimeoutConfig,
)
from .core.extras import MissingExtra
from .net.fetch import FetchPolicy
from .observe.tracing_settings import effective as effective_tracing
from .providers import registry
from .providers.base import LlmProvider
from .router import Deployment, ModelTable, RetryPolicy, RoutePolicy
from .router.limits import Limiter
from .router.routed import RoutedProvider
from .router.table import Route
from .server.agent_turns import StoredTurns
from .server.gateway import Gateway, normalize_prefix
from .server.model_choice import ModelChoice
from .sessions import open_store

#: The schema is ``config_schema``; its public names are this module's too.
__all__ = [
    "DEFAULT_MODELS",
    "BreakerConfig",
    "BudgetConfig",
    "Config",
    "ConfigError",
    "DeploymentConfig",
    "Duration",
    "FetchConfig",
    "LimitsConfig",
    "ModelConfig",
    "RateLimitConfig",
    "RetryConfig",
    "ServerConfig",
    "SessionsConfig",
    "TimeoutConfig",
    "build_gateway",
    "check_config",
    "load_config",
    "parse_config",
]

log = logging.getLogger("dragoman.config")

#: the keys every deployment (model) has; any other key is provider-specific
_DEPLOYMENT_KEYS = frozenset(DeploymentConfig.__struct_fields__) - {"options"}
_MODEL_KEYS = frozenset(ModelConfig.__struct_fields__) - {"options"}


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
