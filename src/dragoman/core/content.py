"""Content parts: the pieces a message is made of.

Every part is a msgspec struct tagged by ``type`` so a list of parts encodes to JSON and
decodes back without any hand-written code (the sessions store relies on this).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

CacheControl = dict[str, Any]
"""Anthropic-style cache marker (``{"type": "ephemeral", "ttl": "5m"}``), kept verbatim."""


class _Part(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type"):
    pass


class Text(_Part, tag="text"):
    text: str
    cache_control: CacheControl | None = None


class Image(_Part, tag="image"):
    """An image given inline (``mime`` + base64 ``data``) or by ``url``."""

    mime: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None
    cache_control: CacheControl | None = None


class File(_Part, tag="file"):
    """A document (PDF, text…) given inline, by URL or by a provider file id."""

    mime: str | None = None
    data: str | None = None
    url: str | None = None
    file_id: str | None = None
    filename: str | None = None
    cache_control: CacheControl | None = None


class ToolCall(_Part, tag="tool_call"):
    """A call the assistant makes. ``arguments`` is the JSON text exactly as produced.

    ``kind="custom"`` is a free-text tool (OpenAI custom tools): ``arguments`` then holds
    the raw input text, not JSON.
    """

    id: str
    name: str
    arguments: str = ""
    kind: Literal["function", "custom"] = "function"
    cache_control: CacheControl | None = None


class ToolResult(_Part, tag="tool_result"):
    call_id: str
    content: list[Text | Image | File] = msgspec.field(default_factory=list)
    is_error: bool = False
    kind: Literal["function", "custom"] = "function"
    cache_control: CacheControl | None = None

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, Text))


class Thinking(_Part, tag="thinking"):
    """Model reasoning. ``signature`` is the provider's opaque proof (Anthropic signature,
    Responses ``encrypted_content``); ``origin`` names the provider family that made it,
    because a signature may only be replayed to that family."""

    text: str = ""
    signature: str | None = None
    origin: str | None = None
    id: str | None = None


class RedactedThinking(_Part, tag="redacted_thinking"):
    data: str
    origin: str | None = None


class Opaque(_Part, tag="opaque"):
    """An item only its own dialect understands (hosted-tool calls, server tool blocks…).

    It is replayed verbatim to an upstream of the same ``dialect`` and dropped for others.
    """

    dialect: str
    data: dict[str, Any]


Part = Text | Image | File | ToolCall | ToolResult | Thinking | RedactedThinking | Opaque
