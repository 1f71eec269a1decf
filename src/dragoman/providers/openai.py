"""OpenAI Chat Completions and OpenAI Responses upstreams (and any server that speaks
them): the dialect plus a bearer key."""

from __future__ import annotations

from typing import Any

from ..core import ChatRequest
from ..dialects.openai_chat import DIALECT as OPENAI_CHAT
from ..dialects.openai_responses import DIALECT as OPENAI_RESPONSES
from .base import HttpDialectProvider
from .registry import ProviderSpec, no_options


class OpenAIChat(HttpDialectProvider):
    """``POST {base}/chat/completions``."""

    dialect = OPENAI_CHAT
    passthrough_safe = True
    default_base_url = "https://api.openai.com/v1"

    def path(self, req: ChatRequest, stream: bool) -> str:
        return "/chat/completions"

    def prepare(self, body: dict[str, Any], req: ChatRequest, stream: bool) -> dict[str, Any]:
        body["stream"] = stream
        if not stream:
            body.pop("stream_options", None)
        return body


class OpenAIResponses(HttpDialectProvider):
    """``POST {base}/responses``."""

    dialect = OPENAI_RESPONSES
    passthrough_safe = True
    default_base_url = "https://api.openai.com/v1"

    def path(self, req: ChatRequest, stream: bool) -> str:
        return "/responses"


def from_spec(spec: ProviderSpec) -> HttpDialectProvider:
    no_options(spec)
    cls = OpenAIResponses if spec.provider == "openai_responses" else OpenAIChat
    return cls(**spec.http_kwargs())
