"""The one exception a tool raises on purpose (its own module, so that ``function_tool``,
which wraps plain functions, and ``tools``, whose registry wraps them, need not import
each other)."""

from __future__ import annotations


class ToolError(Exception):
    """Raised by a tool to hand the model an error result with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
