"""What a tool is, and the registry an agent calls tools through.

A tool is anything with a ``name``, a ``description``, a JSON Schema ``parameters`` for its
arguments object and an async ``run(args)`` returning text. A tool signals a failure the
model should see by raising ``ToolError``; any other exception is caught too, because a
broken tool must never crash the agent loop: the model gets an error result and decides
what to do next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, runtime_checkable

import msgspec

from ..core import Image, spans
from ..core import Tool as ToolSpec
from .function_tool import FunctionTool
from .tool_error import ToolError as ToolError  # (re-exported: what a tool raises)

log = logging.getLogger("dragoman.agents")

_decode = msgspec.json.Decoder().decode

#: Longest tool result passed back to the model; longer results are cut with a note, so one
#: chatty tool cannot blow the context window.
DEFAULT_MAX_RESULT_CHARS = 100_000


@runtime_checkable
class Tool(Protocol):
    """A tool an agent may call. ``parameters`` is the JSON Schema of the arguments object."""

    name: str
    description: str
    parameters: dict[str, Any]

    async def run(self, args: dict[str, Any]) -> str | ToolOutput: ...


class ToolOutput(msgspec.Struct, frozen=True):
    """A result with images besides its text (an MCP tool's screenshot, say)."""

    text: str
    images: list[Image] = msgspec.field(default_factory=list)


class ToolOutcome(msgspec.Struct, frozen=True, gc=False):
    """What one call produced: the text for the model, whether it is an error, and any
    images."""

    text: str
    is_error: bool = False
    images: list[Image] | None = None


def parse_arguments(raw: str) -> dict[str, Any]:
    """A model's argument text → the arguments object (empty text is ``{}``)."""
    if not raw.strip():
        return {}
    try:
        value = _decode(raw)
    except msgspec.DecodeError:
        raise ToolError(f"the arguments are not valid JSON: {raw[:200]!r}") from None
    if not isinstance(value, dict):
        raise ToolError("the arguments must be a JSON object")
    return value


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[result truncated: {len(text)} characters, the first {limit} shown]"


class ToolRegistry:
    """Tools by name. Plain functions are wrapped with ``FunctionTool`` on the way in."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = (), *,
                 timeout: float | None = None,
                 max_result_chars: int = DEFAULT_MAX_RESULT_CHARS) -> None:
        self._tools: dict[str, Tool] = {}
        self.timeout = timeout
        self.max_result_chars = max_result_chars
        for t in tools:
            self.add(t)

    def add(self, tool: Tool | Callable[..., Any]) -> Tool:
        if not isinstance(tool, Tool):
            if not callable(tool):
                raise TypeError(f"not a tool or a function: {tool!r}")
            tool = FunctionTool(tool)
        if tool.name in self._tools:
            raise ValueError(f"two tools are named {tool.name!r}")
        self._tools[tool.name] = tool
        return tool

    def tool(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: register ``fn`` as a tool and return it unchanged."""
        self.add(fn)
        return fn

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def specs(self) -> list[ToolSpec]:
        """The tools as the neutral model declares them to a provider."""
        return [ToolSpec(name=t.name, description=t.description, parameters=t.parameters)
                for t in self._tools.values()]

    async def call(self, name: str, arguments: str | dict[str, Any], *,
                   call_id: str | None = None) -> ToolOutcome:
        """Run one call; every failure becomes an error outcome (cancellation still
        propagates, so a cancelled agent leaves no tool running). With tracing on, the
        call is an ``execute_tool`` span (``call_id``: the model's id for it)."""
        tracer = spans.TRACER
        if tracer is None:
            return await self._run(name, arguments)
        span = tracer.tool_call(name, call_id, arguments)
        with spans.current(span):
            outcome = await self._run(name, arguments)
            span.content("gen_ai.tool.call.result", outcome.text)
            if outcome.is_error:
                span.set("error.type", "tool_error")
        return outcome

    async def _run(self, name: str, arguments: str | dict[str, Any]) -> ToolOutcome:
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolOutcome(f"unknown tool {name!r} (available: {known})", True)
        try:
            args = parse_arguments(arguments) if isinstance(arguments, str) else arguments
            if self.timeout is None:
                text = await tool.run(args)
            else:
                async with asyncio.timeout(self.timeout):
                    text = await tool.run(args)
        except ToolError as e:
            return ToolOutcome(_cap(e.message, self.max_result_chars), True)
        except TimeoutError:
            if self.timeout is None:
                return ToolOutcome(f"tool {name!r} failed: TimeoutError", True)
            return ToolOutcome(f"tool {name!r} timed out after {self.timeout:g} s", True)
        except Exception as e:
            log.warning("tool %s failed", name, exc_info=True)
            return ToolOutcome(f"tool {name!r} failed: {type(e).__name__}: {e}"[:2000], True)
        if isinstance(text, ToolOutput):
            return ToolOutcome(_cap(text.text, self.max_result_chars), images=text.images)
        if not isinstance(text, str):
            text = str(text)
        return ToolOutcome(_cap(text, self.max_result_chars))
