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


class Citation(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A source the text part it is attached to relies on.

    ``url``, ``title`` and ``cited_text`` are what any dialect can show; ``start``/``end``
    locate the cited span inside the part's text (OpenAI annotations), None meaning the
    whole part (Anthropic cites whole blocks). ``dialect`` + ``data`` keep the citation as
    its dialect wrote it, replayed verbatim to that dialect only.
    """

    url: str | None = None
    title: str | None = None
    cited_text: str | None = None
    start: int | None = None
    end: int | None = None
    dialect: str | None = None
    data: dict[str, Any] | None = None

    def span(self, length: int) -> tuple[int, int]:
        """The cited span in a text of ``length`` characters (the whole text when the
        citation names none)."""
        return (self.start or 0, length if self.end is None else self.end)


class Text(_Part, tag="text"):
    """Text. ``citations``: the sources it relies on (Anthropic citations, OpenAI
    annotations). ``phase``: which Responses message it came from (``commentary`` or
    ``final_answer``); two text parts with a phase are two messages, never merged."""

    text: str
    cache_control: CacheControl | None = None
    citations: list[Citation] | None = None
    phase: str | None = None


class Refusal(_Part, tag="refusal"):
    """The model declined: Chat ``message.refusal``, a Responses ``refusal`` content part.
    Anthropic has no refusal text of its own (only ``stop_reason: "refusal"``); toward it a
    refusal is text."""

    text: str


class SearchResult(_Part, tag="search_result"):
    """A search result given to the model with its source, so it can cite it (Anthropic
    ``search_result`` blocks, in user messages or tool results)."""

    source: str
    title: str = ""
    content: list[Text] = msgspec.field(default_factory=list)
    citations: bool | None = None
    cache_control: CacheControl | None = None

    def as_text(self) -> str:
        """How dialects without search results show one: a header naming the title and
        source, then the content."""
        head = f"[search result: {self.title} ({self.source})]" if self.title else \
            f"[search result: {self.source}]"
        return "\n".join([head, *(p.text for p in self.content)])


class ToolReference(_Part, tag="tool_reference"):
    """A tool a tool-search tool found (Anthropic ``tool_reference``, inside a tool
    result): the upstream loads that tool's deferred definition."""

    tool_name: str
    cache_control: CacheControl | None = None

    def as_text(self) -> str:
        """How dialects without tool search show one: the tool's name."""
        return f"[tool reference: {self.tool_name}]"


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


ResultContent = Text | Image | File | SearchResult | ToolReference
"""What a tool result may hold."""


class ToolResult(_Part, tag="tool_result"):
    call_id: str
    content: list[ResultContent] = msgspec.field(default_factory=list)
    is_error: bool = False
    kind: Literal["function", "custom"] = "function"
    cache_control: CacheControl | None = None

    def text(self) -> str:
        """The result as text: its text parts, search results and tool references shown as
        ``as_text`` does (images and files are left out)."""
        return "".join(p.text if isinstance(p, Text) else p.as_text() for p in self.content
                       if isinstance(p, (Text, SearchResult, ToolReference)))


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


Part = (Text | Refusal | Image | File | SearchResult | ToolCall | ToolResult | Thinking
        | RedactedThinking | Opaque)
