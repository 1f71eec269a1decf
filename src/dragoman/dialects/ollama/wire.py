"""Shared helpers of Ollama's native chat API: name, usage, stop reasons, error messages.

- ``done_reason`` is ``stop`` even when the turn called tools (→ ``tool_use``), ``length``
  when cut; usage is ``prompt_eval_count`` / ``eval_count`` on the ``done`` line.
"""

from __future__ import annotations

from typing import Any

from ...core import (
    StopReason,
    Usage,
)

NAME = "ollama"


def _int(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else 0


def usage_from_wire(obj: dict[str, Any]) -> Usage:
    return Usage(input_tokens=_int(obj.get("prompt_eval_count")),
                 output_tokens=_int(obj.get("eval_count")))


def stop_from_wire(reason: Any, has_calls: bool) -> StopReason:
    if reason == "length":
        return StopReason.MAX_TOKENS
    return StopReason.TOOL_USE if has_calls else StopReason.END_TURN


def error_message(err: Any) -> str:
    if isinstance(err, str) and err:
        return err[:2000]
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])[:2000]
    return "upstream error"
