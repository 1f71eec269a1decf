"""Upstream adapters behind one ``LlmProvider`` protocol.

``OpenAIChat``/``OpenAIResponses``/``Anthropic`` import their dialects on first use, so
importing this package stays cheap. tako's names work too: ``OpenAI`` (= ``OpenAIChat``)
and ``Vertex`` (= ``VertexAi``). ``Bedrock`` needs the ``bedrock`` extra and ``Vertex``
with Google credentials the ``vertex`` extra; importing ``Bedrock`` without it is a
``MissingExtra`` error naming the ``pip install`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import HttpDialectProvider, LlmProvider
from .echo import EchoProvider

if TYPE_CHECKING:
    from .anthropic import Anthropic
    from .azure import AzureOpenAI
    from .bedrock import Bedrock
    from .codex import Codex, CodexCredentials
    from .gemini import GeminiApi, VertexAi
    from .gemini import VertexAi as Vertex
    from .http_generic import HttpGeneric
    from .mistral import Mistral
    from .ollama import Ollama
    from .openai import OpenAIChat, OpenAIResponses
    from .openai import OpenAIChat as OpenAI
    from .python import PythonProvider

_LAZY = {"OpenAIChat": ".openai", "OpenAIResponses": ".openai", "Anthropic": ".anthropic",
         "AzureOpenAI": ".azure", "Codex": ".codex", "CodexCredentials": ".codex",
         "Mistral": ".mistral", "Ollama": ".ollama", "HttpGeneric": ".http_generic",
         "PythonProvider": ".python", "Bedrock": ".bedrock", "GeminiApi": ".gemini",
         "VertexAi": ".gemini"}
#: tako's names → ours
_ALIASES = {"OpenAI": "OpenAIChat", "Vertex": "VertexAi"}
#: modules that import an extra's packages at import time
_EXTRA = {".bedrock": "bedrock"}


def __getattr__(name: str) -> Any:
    name = _ALIASES.get(name, name)
    if name in _LAZY:
        import importlib

        module = _LAZY[name]
        if module in _EXTRA:
            from ..core.extras import require_extra

            require_extra(_EXTRA[module], f"dragoman.providers.{name}")
        return getattr(importlib.import_module(module, __name__), name)
    raise AttributeError(name)


__all__ = ["Anthropic", "AzureOpenAI", "Bedrock", "Codex", "CodexCredentials", "EchoProvider",
           "GeminiApi", "HttpDialectProvider", "HttpGeneric", "LlmProvider", "Mistral",
           "Ollama", "OpenAI", "OpenAIChat", "OpenAIResponses", "PythonProvider", "Vertex",
           "VertexAi"]
