"""Tool calls whose arguments travel as a JSON *object* (Anthropic ``input``, Gemini
``args``, Bedrock ``input``, Ollama ``arguments``), and the emulation of free-text (custom)
tools for the wire formats that have none.

Neutral ``ToolCall.arguments`` is JSON *text*; these helpers convert both ways without
losing anything a sloppy upstream or client produced.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..core import Tool
from .framing import compact_json

_decode = msgspec.json.decode

CUSTOM_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string"}},
    "required": ["input"],
}
"""How a free-text (custom) tool is emulated: one string argument ``input``."""


def custom_tool_description(t: Tool) -> str | None:
    """The emulated function's description: the tool's own, plus its grammar (if any) so
    the model still knows what raw text to produce."""
    desc = t.description or ""
    fmt = t.format or {}
    if fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        syntax = fmt.get("syntax") or "grammar"
        desc = (f"{desc}\n\n" if desc else "") + (
            f"Put the whole tool input, as raw text following this {syntax} grammar, "
            f"in the `input` string:\n{fmt['definition']}")
    return desc or None


def object_from_arguments(arguments: str, custom: bool) -> dict[str, Any]:
    """A JSON object for neutral ``ToolCall.arguments``.

    Custom (free-text) calls and arguments that are not a JSON object (invalid JSON from
    a sloppy upstream, a bare array…) are wrapped as ``{"input": <raw text>}`` so the
    call stays valid and nothing is lost; empty arguments give ``{}``."""
    if custom:
        return {"input": arguments}
    if not arguments:
        return {}
    try:
        value = _decode(arguments)
    except (msgspec.DecodeError, ValueError, RecursionError):  # (nested too deep)
        return {"input": arguments}
    if isinstance(value, dict):
        return value
    return {"input": arguments}


def arguments_from_object(value: Any) -> str:
    """Neutral ``ToolCall.arguments`` for an upstream's argument object (None → ``{}``)."""
    return compact_json(value if value is not None else {})


def custom_input(value: Any) -> str | None:
    """The raw text of an emulated custom-tool call (``{"input": "<text>"}``), else None."""
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    return None
