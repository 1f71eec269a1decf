"""Upstream adapters behind one ``LlmProvider`` protocol.

``OpenAIChat``/``OpenAIResponses``/``Anthropic`` import their dialects on first use, so
importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import HttpDialectProvider, LlmProvider
from .echo import EchoProvider

if TYPE_CHECKING:
    from .anthropic import Anthropic
    from .azure import AzureOpenAI
    from .codex import Codex, CodexCredentials
    from .http_generic import HttpGeneric
    from .mistral import Mistral
    from .ollama import Ollama
    from .openai import OpenAIChat, OpenAIResponses
    from .python import PythonProvider

_LAZY = {"OpenAIChat": ".openai", "OpenAIResponses": ".openai", "Anthropic": ".anthropic",
         "AzureOpenAI": ".azure", "Codex": ".codex", "CodexCredentials": ".codex",
         "Mistral": ".mistral", "Ollama": ".ollama", "HttpGeneric": ".http_generic",
         "PythonProvider": ".python"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


__all__ = ["Anthropic", "AzureOpenAI", "Codex", "CodexCredentials", "EchoProvider",
           "HttpDialectProvider", "HttpGeneric", "LlmProvider", "Mistral", "Ollama",
           "OpenAIChat", "OpenAIResponses", "PythonProvider"]
