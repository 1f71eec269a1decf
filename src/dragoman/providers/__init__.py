"""Upstream adapters behind one ``LlmProvider`` protocol."""

from .base import HttpDialectProvider, LlmProvider
from .echo import EchoProvider

__all__ = ["EchoProvider", "HttpDialectProvider", "LlmProvider"]
