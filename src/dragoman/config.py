"""Load ``dragoman.yaml`` → build the gateway.

Validation is msgspec's, with unknown keys forbidden, so a typo is reported with its path
(``unknown field `provder` - at `$.models[0]```). ``${VAR}`` and ``${VAR:-default}`` are
replaced from the environment in every string value; a missing variable is an error that
names the variable and the key, never a value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec
import yaml

from .core import Capabilities
from .net import Timeouts
from .providers import registry
from .providers.base import LlmProvider
from .providers.registry import ProviderSpec
from .router import Deployment, ModelTable
from .server.gateway import DEFAULT_MAX_BODY, Gateway


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


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    models: list[ModelConfig] = msgspec.field(default_factory=list)


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
    return cfg


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


def _build_provider(i: int, m: ModelConfig) -> LlmProvider:
    try:
        return registry.build(m.spec())
    except registry.OptionsError as e:
        msg = str(e).replace("`$", f"`$.models[{i}]")
        if "- at `" not in msg:
            msg += f" - at `$.models[{i}]`"
        raise ConfigError(f"invalid configuration: {msg}") from None


def build_gateway(cfg: Config) -> Gateway:
    models = cfg.models or DEFAULT_MODELS
    deployments = [Deployment(name=m.name, provider=_build_provider(i, m),
                              owned_by="dragoman" if m.provider == "echo" else m.provider)
                   for i, m in enumerate(models)]
    return Gateway(ModelTable(deployments), api_keys=cfg.server.api_keys,
                   max_body_bytes=cfg.server.max_body_bytes)
