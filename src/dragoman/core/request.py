"""The neutral request: what every dialect parses into and renders from."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .content import CacheControl, Part, Text

Role = Literal["system", "developer", "user", "assistant", "tool"]


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One turn. ``developer`` is kept apart from ``system`` because some upstreams know only
    one of them.

    Canonical form (every dialect parses into it, property tests rely on it): tool results
    travel as ``role="tool"`` messages holding only ``ToolResult`` parts, and the results
    that answer one assistant turn are grouped in ONE tool message; consecutive assistant
    items (text, thinking, tool calls) form one assistant message.
    """

    role: Role
    content: list[Part] = msgspec.field(default_factory=list)
    name: str | None = None

    @property
    def is_system(self) -> bool:
        return self.role == "system" or self.role == "developer"

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, Text))


class Tool(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A tool the model may call. ``kind="custom"`` takes free text (``format`` holds the
    OpenAI grammar/text format); dialects without custom tools emulate it as a function
    with one string argument ``input``. ``namespace`` is set for tools the client grouped
    under a Responses ``namespace`` tool (Codex): the Responses dialect regroups them, every
    other dialect sees plain function tools."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    kind: Literal["function", "custom"] = "function"
    format: dict[str, Any] | None = None
    namespace: str | None = None
    namespace_description: str | None = None
    cache_control: CacheControl | None = None


class HostedTool(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A provider-hosted tool (web_search, file_search, MCP, Anthropic server tools…).

    It has no neutral meaning: forwarded verbatim to an upstream of ``dialect`` and
    deliberately dropped for any other."""

    dialect: str
    data: dict[str, Any]


class ToolChoice(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``mode="tool"`` forces ``name``; ``allowed`` narrows the callable set (OpenAI
    ``allowed_tools``) while ``mode`` says whether a call is required."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None
    allowed: list[str] | None = None


class ResponseFormat(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class Reasoning(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How much the model should think.

    ``mode``: ``enabled`` (with ``budget_tokens``), ``adaptive`` (the model decides),
    ``disabled``; ``effort`` is the OpenAI-style level (none…xhigh/max); ``summary`` the
    Responses summary setting (auto/concise/detailed) or Anthropic ``display``."""

    mode: Literal["enabled", "adaptive", "disabled"] | None = None
    effort: str | None = None
    budget_tokens: int | None = None
    summary: str | None = None


class ChatRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A request in neutral form.

    ``system`` is request-level instruction text (Anthropic ``system``, Responses
    ``instructions``); system/developer messages inside ``messages`` stay where the client
    put them. ``extra`` keeps fields this model does not know, tagged with the ``dialect``
    they came from: they are forwarded only to an upstream of that same dialect.
    ``model`` may be left empty when the request goes straight to a provider object (which
    sends its own model). Who asked, and what the server knows about the call (tenant,
    thread, headers to forward), is not here but in the ``RequestContext`` passed beside
    it (``dragoman.core.context``).
    """

    model: str = ""
    messages: list[Message] = msgspec.field(default_factory=list)
    system: list[Text] | None = None
    tools: list[Tool] | None = None
    hosted_tools: list[HostedTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    include_usage: bool = False
    metadata: dict[str, Any] | None = None
    user: str | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    dialect: str | None = None
    extra: dict[str, Any] | None = None

    def custom_tool_names(self) -> frozenset[str]:
        """Names of the free-text (custom) tools. Upstreams without custom tools get them
        emulated as one-string functions, and their parsers turn calls to these names back
        into custom calls."""
        return frozenset(t.name for t in self.tools or () if t.kind == "custom")
