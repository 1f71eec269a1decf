"""Provider name (the config ``provider:`` key) → how to build one.

Each adapter module exposes ``from_spec(spec: ProviderSpec) -> LlmProvider``; the table
below names the module, imported only when a config uses it. Provider-specific config keys
arrive in ``spec.options``; an adapter validates them with its own msgspec struct via
``spec.parse_options`` so an unknown or mistyped key is reported with its path.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

import msgspec

from ..core import Capabilities
from ..core.extras import MissingExtra, require_extra
from ..net import Timeouts
from ..net.fetch import FetchPolicy
from ..net.http import DEFAULT_POOL
from .base import LlmProvider

OptionsT = TypeVar("OptionsT")


class OptionsError(ValueError):
    """A provider-specific config key is unknown or mistyped; ``str()`` names it.
    ``options_type``: the struct the keys were checked against (for "did you mean")."""

    def __init__(self, message: str, options_type: type | None = None) -> None:
        super().__init__(message)
        self.options_type = options_type


class ProviderSpec(msgspec.Struct, kw_only=True):
    """Everything a model entry of the config says about its provider."""

    name: str
    provider: str
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    timeouts: Timeouts = msgspec.field(default_factory=Timeouts)
    max_connections: int = DEFAULT_POOL
    capabilities: Capabilities | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    fetch_policy: FetchPolicy | None = None
    """Limits and allowlist (config ``fetch:``) for media a provider must fetch itself
    (image URLs its vendor cannot take); None: the provider's defaults."""

    def __repr__(self) -> str:  # never the key
        return f"ProviderSpec(name={self.name!r}, provider={self.provider!r}, model={self.model!r})"

    def parse_options(self, typ: type[OptionsT]) -> OptionsT:
        try:
            return msgspec.convert(self.options, typ)
        except msgspec.ValidationError as e:
            raise OptionsError(str(e), typ) from None

    def http_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every ``HttpDialectProvider`` takes."""
        return {"model": self.model or self.name, "base_url": self.base_url,
                "api_key": self.api_key, "headers": self.headers,
                "capabilities": self.capabilities, "name": self.name,
                "timeouts": self.timeouts, "max_connections": self.max_connections}


class _NoOptions(msgspec.Struct, forbid_unknown_fields=True):
    pass


#: provider name → module under ``dragoman.providers`` exposing ``from_spec``
PROVIDERS: dict[str, str] = {
    "echo": "echo",
    "openai": "openai",
    "openai_responses": "openai",
    "anthropic": "anthropic",
    "bedrock": "bedrock",
    "gemini": "gemini",
    "vertex": "gemini",
    "http_generic": "http_generic",
    "python": "python",
    "azure_openai": "azure",
    "codex": "codex",
    "mistral": "mistral",
    "ollama": "ollama",
}

#: providers that need no ``model:`` key
MODEL_OPTIONAL = frozenset({"echo", "http_generic", "python"})


#: providers whose adapter module imports an optional install ("extra")
EXTRA_OF = {"bedrock": "bedrock"}


def build(spec: ProviderSpec) -> LlmProvider:
    if spec.provider not in PROVIDERS:
        raise KeyError(spec.provider)
    try:
        extra = EXTRA_OF.get(spec.provider)
        if extra is not None:
            require_extra(extra, f"provider `{spec.provider}`")
        module = importlib.import_module(f"{__package__}.{PROVIDERS[spec.provider]}")
        provider: LlmProvider = module.from_spec(spec)
    except MissingExtra as e:  # reported like a config error, with the pip command
        raise OptionsError(str(e)) from None
    return provider


def no_options(spec: ProviderSpec) -> None:
    """For adapters without provider-specific keys: refuse any."""
    spec.parse_options(_NoOptions)
