"""Load ``dragoman.yaml`` → build the gateway.

Validation is msgspec's, with unknown keys forbidden, so a typo is reported with its path
(``unknown field `provder` - at `$.models[0]```). ``${VAR}`` and ``${VAR:-default}`` are
replaced from the environment in every string value; a missing variable is an error that
names the variable and the key, never a value.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from .agents.spec import AgentSpec, AgentSpecError, build_agent
from .auth import AuthResolver
from .auth.settings import AuthConfig, AuthConfigError, build_resolver
from .core import Capabilities
from .net import Timeouts
from .net.fetch import FetchPolicy
from .providers import registry
from .providers.base import LlmProvider
from .providers.registry import ProviderSpec
from .router import Deployment, ModelTable
from .server.agent_turns import StoredTurns
from .server.gateway import DEFAULT_MAX_BODY, Gateway
from .sessions import StoreSettings, open_store, parse_duration
from .sessions.settings import DEFAULT_LOCK_WAIT


class ConfigError(ValueError):
    pass


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY
    api_keys: list[str] = msgspec.field(default_factory=list)


class TimeoutConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    connect: float = 10.0
    first_byte: float = 600.0
    idle: float = 300.0


class ModelConfig(msgspec.Struct, kw_only=True):
    """The keys every model entry may have; any other key is provider-specific and is
    validated by that provider (see ``providers.registry``)."""

    name: str
    provider: str
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeouts: TimeoutConfig = msgspec.field(default_factory=TimeoutConfig)
    capabilities: Capabilities | None = None
    passthrough: bool = True
    """False: never take the same-dialect fast path (always translate)."""
    hold_history: bool = False
    """True: dragoman holds the conversation of thread-keyed requests (sessions)."""
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:  # the key must never reach a log
        return f"ModelConfig(name={self.name!r}, provider={self.provider!r}, model={self.model!r})"

    def spec(self) -> ProviderSpec:
        t = self.timeouts
        return ProviderSpec(name=self.name, provider=self.provider, model=self.model,
                            base_url=self.base_url, api_key=self.api_key, headers=self.headers,
                            timeouts=Timeouts(connect=t.connect, first_byte=t.first_byte,
                                              idle=t.idle),
                            capabilities=self.capabilities, options=self.options)


_COMMON_KEYS = frozenset(ModelConfig.__struct_fields__) - {"options"}


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
                             record_threads=self.record_threads)


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    #: Who may call: a resolver (static tokens, jwt, oidc, vault, chain); see README.
    #: ``server.api_keys`` is the shorthand for a static table of bare keys.
    auth: AuthConfig | None = None
    fetch: FetchConfig = msgspec.field(default_factory=FetchConfig)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
    agents: list[AgentSpec] = msgspec.field(default_factory=list)
    sessions: SessionsConfig = msgspec.field(default_factory=lambda: SessionsConfig())


def _split_model_options(data: dict[str, Any]) -> dict[str, Any]:
    """Move each model entry's provider-specific keys under ``options``."""
    models = data.get("models")
    if not isinstance(models, list):
        return data
    out = []
    for m in models:
        if isinstance(m, dict):
            common = {k: v for k, v in m.items() if k in _COMMON_KEYS}
            common["options"] = {k: v for k, v in m.items() if k not in _COMMON_KEYS}
            m = common
        out.append(m)
    return {**data, "models": out}
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
    try:
        cfg = msgspec.convert(_split_model_options(_interpolate(data, "$")), Config)
    except msgspec.ValidationError as e:
        raise ConfigError(f"invalid configuration: {e}".replace(".options", "")) from None
    names = [m.name for m in cfg.models]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"duplicate model name(s) in `$.models`: {', '.join(sorted(dup))}")
    for i, m in enumerate(cfg.models):
        if m.provider not in registry.PROVIDERS:
            raise ConfigError(f"unknown provider {m.provider!r} at `$.models[{i}].provider` "
                              f"(known: {', '.join(sorted(registry.PROVIDERS))})")
        if m.provider not in registry.MODEL_OPTIONAL and not m.model:
            raise ConfigError(f"`$.models[{i}].model` is required for provider {m.provider!r}")
    _check_agents(cfg)
    return cfg


def _check_agents(cfg: Config) -> None:
    """Agent names are model names too (unique); each runs on a model (or an agent)
    defined before it, named exactly."""
    known = {m.name for m in cfg.models or DEFAULT_MODELS}
    for i, a in enumerate(cfg.agents):
        if a.name in known:
            raise ConfigError(f"`$.agents[{i}].name`: {a.name!r} is already a model or agent "
                              "name")
        if a.model not in known:
            raise ConfigError(f"`$.agents[{i}].model`: {a.model!r} is not a model (or agent) "
                              "defined before this agent")
        known.add(a.name)


def load_config(path: str | Path | None) -> Config:
    if path is None:
        return parse_config({})
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    return parse_config(data)


def _build_provider(i: int, m: ModelConfig, fetch_policy: FetchPolicy) -> LlmProvider:
    spec = m.spec()
    spec.fetch_policy = fetch_policy
    try:
        return registry.build(spec)
    except registry.OptionsError as e:
        msg = str(e).replace("`$", f"`$.models[{i}]")
        if "- at `" not in msg:
            msg += f" - at `$.models[{i}]`"
        raise ConfigError(f"invalid configuration: {msg}") from None


def build_gateway(cfg: Config) -> Gateway:
    models = cfg.models or DEFAULT_MODELS
    fetch_policy = cfg.fetch.image_policy()
    created = int(time.time())  # /v1/models "created": when this gateway configured them
    deployments = [Deployment(name=m.name, provider=_build_provider(i, m, fetch_policy),
                              owned_by="dragoman" if m.provider == "echo" else m.provider,
                              passthrough=m.passthrough, hold_history=m.hold_history,
                              created=created)
                   for i, m in enumerate(models)]
    by_name = {d.name: d.provider for d in deployments}
    sessions = open_store(cfg.sessions.settings())
    turns = StoredTurns(sessions)  # a client-tool follow-up may reach any worker or host
    for i, a in enumerate(cfg.agents):
        try:
            # The model's own deployment closes the shared provider.
            agent = build_agent(a, by_name[a.model], owns_provider=False, turns=turns)
        except AgentSpecError as e:
            raise ConfigError(f"invalid configuration: {e.message} - at "
                              f"`$.agents[{i}]{e.where}`") from None
        by_name[a.name] = agent
        deployments.append(Deployment(name=a.name, provider=agent, owned_by="dragoman-agent",
                                      passthrough=False, hold_history=True, created=created))
    return Gateway(ModelTable(deployments), auth=_build_auth(cfg),
                   api_keys=cfg.server.api_keys, max_body_bytes=cfg.server.max_body_bytes,
                   sessions=sessions)


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
