"""Sampling parameters: one table for every egress dialect.

Where each upstream dialect puts the neutral request's ``max_tokens``, ``temperature``,
``top_p``, ``top_k``, ``stop``, ``seed`` and ``user``. A dialect missing from a row does
not send that field (the Responses API has no ``stop`` or ``seed``; Chat has no
``top_k``). A place is a key of the request body, or a dotted path into one of its
objects (``generationConfig.topP``: the ``topP`` key of ``generationConfig``, made when
the first field lands there). Values go out as they are, except ``stop``: a copy of the
list, and an empty list is not sent. A value a dialect derives itself (Anthropic's and
Bedrock's max tokens, fitted to a thinking budget) is passed in by its egress.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, Final

from ..core import ChatRequest

CHAT, RESPONSES, ANTHROPIC = "openai_chat", "openai_responses", "anthropic_messages"
BEDROCK, GEMINI, OLLAMA = "bedrock_converse", "gemini", "ollama"

#: neutral field → {dialect name: its place in that dialect's request body}
SAMPLING_TABLE: Final[dict[str, dict[str, str]]] = {
    "max_tokens": {CHAT: "max_completion_tokens", RESPONSES: "max_output_tokens",
                   ANTHROPIC: "max_tokens", BEDROCK: "inferenceConfig.maxTokens",
                   GEMINI: "generationConfig.maxOutputTokens", OLLAMA: "options.num_predict"},
    "temperature": {CHAT: "temperature", RESPONSES: "temperature", ANTHROPIC: "temperature",
                    BEDROCK: "inferenceConfig.temperature",
                    GEMINI: "generationConfig.temperature", OLLAMA: "options.temperature"},
    "top_p": {CHAT: "top_p", RESPONSES: "top_p", ANTHROPIC: "top_p",
              BEDROCK: "inferenceConfig.topP", GEMINI: "generationConfig.topP",
              OLLAMA: "options.top_p"},
    "top_k": {ANTHROPIC: "top_k", BEDROCK: "additionalModelRequestFields.top_k",
              GEMINI: "generationConfig.topK", OLLAMA: "options.top_k"},
    "stop": {CHAT: "stop", ANTHROPIC: "stop_sequences",
             BEDROCK: "inferenceConfig.stopSequences", GEMINI: "generationConfig.stopSequences",
             OLLAMA: "options.stop"},
    "seed": {CHAT: "seed", GEMINI: "generationConfig.seed", OLLAMA: "options.seed"},
    "user": {CHAT: "user", RESPONSES: "user", ANTHROPIC: "metadata.user_id"},
}

_AS_ASKED: Any = object()


class Sampling:
    """One dialect's column of ``SAMPLING_TABLE``, compiled at import: ``render`` reads
    the fields that dialect sends in one call, and loops over them only when one is set."""

    __slots__ = ("_max_tokens", "_places", "_values")

    def __init__(self, dialect: str) -> None:
        self._max_tokens: tuple[str | None, str] | None = None
        rows: list[tuple[str, str | None, str]] = []
        for field, places in SAMPLING_TABLE.items():
            path = places.get(dialect)
            if path is None:
                continue
            parent, _, key = path.rpartition(".")
            if field == "max_tokens":
                self._max_tokens = (parent or None, key)
            else:
                rows.append((field, parent or None, key))
        fields = [f for f, _, _ in rows]
        #: where each value goes, in the order ``_values`` reads them
        self._places = tuple((parent, key) for _, parent, key in rows)
        #: the request's values of those fields, as a tuple, in one call
        self._values: Callable[[ChatRequest], tuple[Any, ...]] = \
            attrgetter(*fields) if len(fields) > 1 \
            else lambda req: tuple(getattr(req, f) for f in fields)

    def render(self, req: ChatRequest, body: dict[str, Any], *,
               max_tokens: int | None = _AS_ASKED) -> None:
        """Put ``req``'s sampling fields into ``body``; ``max_tokens``: a value the dialect
        derived instead of the request's (None: not sent)."""
        if self._max_tokens is not None:
            n = req.max_tokens if max_tokens is _AS_ASKED else max_tokens
            if n is not None:
                parent, key = self._max_tokens
                _object(body, parent)[key] = n
        values = self._values(req)
        if values.count(None) == len(values):
            return  # (the common request sets none of them: no loop)
        for value, (parent, key) in zip(values, self._places, strict=True):
            if value is None:
                continue
            if type(value) is list:  # stop
                if not value:
                    continue
                value = list(value)
            if parent is None:
                body[key] = value
            else:
                _object(body, parent)[key] = value


def _object(body: dict[str, Any], parent: str | None) -> dict[str, Any]:
    """The object of ``body`` a field goes into (``body`` itself for a top-level key)."""
    if parent is None:
        return body
    inner: dict[str, Any] | None = body.get(parent)
    if inner is None:
        inner = body[parent] = {}
    return inner
