"""The neutral (non-streaming) response, usage and stop reasons."""

from __future__ import annotations

import enum

import msgspec

from .content import Part, Text, ToolCall


class StopReason(enum.StrEnum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    TOOL_USE = "tool_use"
    STOP_SEQUENCE = "stop_sequence"
    CONTENT_FILTER = "content_filter"
    REFUSAL = "refusal"
    ERROR = "error"
    MAX_STEPS = "max_steps"  # an agent ran out of steps; rendered like max_tokens


class Usage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Token counts. ``input_tokens`` is the whole prompt (cached reads and cache writes
    included, as OpenAI counts it); ``output_tokens`` includes ``reasoning_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class ChatResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One assistant turn: its content parts in order, why it stopped and what it cost."""

    id: str
    model: str
    content: list[Part] = msgspec.field(default_factory=list)
    stop_reason: StopReason = StopReason.END_TURN
    stop_sequence: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    created: int = 0

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, Text))

    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.content if isinstance(p, ToolCall)]
