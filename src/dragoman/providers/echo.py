"""The offline test model: deterministic, no network, scriptable from the prompt.

With no directive it echoes the text of the last user message, streamed word by word.
After a tool result it reports what the tools returned. Lines of the last user message
that start with ``::`` are directives:

``::reply TEXT``             answer exactly TEXT (repeatable; lines joined by newlines)
``::tool NAME {JSON}``       call tool NAME with these arguments (repeat for parallel calls)
``::custom NAME TEXT``       call free-text (custom) tool NAME with TEXT as its input
``::think TEXT``             emit a thinking block with TEXT (and a deterministic signature)
``::error KIND [MESSAGE]``   fail before streaming with error KIND (rate_limited, overloaded…)
``::fail KIND [MESSAGE]``    fail mid-stream, after the first words
``::delay MS``               wait MS milliseconds before each token
``::stop REASON``            finish with this stop reason (max_tokens, refusal…)

Every path a client can meet — text, tool calls, parallel calls, thinking, errors before
and after the first byte, truncation — runs without an account.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec

from ..core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    Finish,
    InvalidRequest,
    RequestContext,
    StopReason,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    UsageUpdate,
    acollect,
    error_for_kind,
    new_id,
)
from ..core.estimate import estimate_request
from .registry import ProviderSpec, no_options

_TOKEN = re.compile(r"\s*\S+\s*|\s+")
ECHO_ORIGIN = "echo"


@dataclass
class Script:
    reply: list[str] = field(default_factory=list)
    tools: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, args)
    thinking: list[str] = field(default_factory=list)
    error: tuple[str, str] | None = None
    fail: tuple[str, str] | None = None
    delay_ms: float = 0.0
    stop: StopReason | None = None
    text: list[str] = field(default_factory=list)


def _error_directive(rest: str) -> tuple[str, str]:
    kind, _, msg = rest.partition(" ")
    try:
        ErrorKind(kind)
    except ValueError:
        raise InvalidRequest(f"echo: unknown error kind {kind!r}") from None
    return kind, msg or f"echo model asked to fail with {kind}"


def parse_script(req: ChatRequest) -> Script:
    """Read the directives of the last user message (none if the conversation ends with
    a tool result or an assistant turn; trailing system messages are skipped)."""
    s = Script()
    # System text may follow the user's turn (Claude Code appends a system message).
    last = next((m for m in reversed(req.messages) if not m.is_system), None)
    if last is None:
        return s
    if last.role == "tool":
        for p in last.content:
            if isinstance(p, ToolResult):
                state = "error" if p.is_error else "result"
                s.text.append(f"Tool {p.call_id} {state}: {p.text()}")
        return s
    if last.role != "user":
        return s
    for line in last.text().splitlines():
        stripped = line.strip()
        if not stripped.startswith("::"):
            if stripped:
                s.text.append(stripped)
            continue
        word, _, rest = stripped[2:].partition(" ")
        rest = rest.strip()
        if word == "reply":
            s.reply.append(rest)
        elif word in ("tool", "custom"):
            name, _, args = rest.partition(" ")
            if not name:
                raise InvalidRequest("echo: ::tool needs a tool name")
            if word == "tool":
                args = args.strip() or "{}"
                try:
                    msgspec.json.decode(args)
                except msgspec.DecodeError:
                    raise InvalidRequest(f"echo: arguments of ::tool {name} are not JSON") from None
            s.tools.append(("custom" if word == "custom" else "function", name, args))
        elif word == "think":
            s.thinking.append(rest)
        elif word == "error":
            s.error = _error_directive(rest)
        elif word == "fail":
            s.fail = _error_directive(rest)
        elif word == "delay":
            try:
                s.delay_ms = float(rest)
            except ValueError:
                raise InvalidRequest("echo: ::delay needs milliseconds") from None
        elif word == "stop":
            try:
                s.stop = StopReason(rest)
            except ValueError:
                raise InvalidRequest(f"echo: unknown stop reason {rest!r}") from None
        else:
            raise InvalidRequest(f"echo: unknown directive ::{word}")
    return s


def signature_for(text: str) -> str:
    """Deterministic stand-in for a provider's thinking signature."""
    return "echo-" + hashlib.sha256(text.encode()).hexdigest()[:32]


class EchoProvider:
    """Implements ``LlmProvider`` in-process."""

    def __init__(self, *, name: str = "echo", capabilities: Capabilities | None = None) -> None:
        self.name = name
        self._caps = capabilities or Capabilities(max_context_tokens=1_000_000, thinking=True)

    def __repr__(self) -> str:
        return f"EchoProvider(name={self.name!r})"

    def capabilities(self) -> Capabilities:
        return self._caps

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return estimate_request(req)

    async def aclose(self) -> None:
        return None

    async def complete(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        return await acollect(self.stream(req, ctx), new_id("echo-"), req.model)

    async def stream(self, req: ChatRequest,
                     ctx: RequestContext = NO_CONTEXT) -> AsyncIterator[StreamEvent]:
        script = parse_script(req)
        if script.error:
            kind, msg = script.error
            raise error_for_kind(kind, msg, retry_after=1.0 if kind == "rate_limited" else None)
        usage = Usage(input_tokens=estimate_request(req))
        delay = script.delay_ms / 1000.0
        out = 0
        limit = req.max_tokens

        async def pause() -> None:
            if delay:
                await asyncio.sleep(delay)

        for thought in script.thinking:
            for tok in _TOKEN.findall(thought):
                await pause()
                out += 1
                yield ThinkingDelta(text=tok)
            yield ThinkingEnd(signature=signature_for(thought), origin=ECHO_ORIGIN)

        text = "\n".join(script.reply) if script.reply else " ".join(script.text)
        if not text and not script.tools:
            text = "(empty prompt)"
        stop = script.stop
        for i, tok in enumerate(_TOKEN.findall(text)):
            if limit is not None and out >= limit:
                stop = StopReason.MAX_TOKENS
                break
            if script.fail and i == 1:
                kind, msg = script.fail
                yield StreamError(error=error_for_kind(kind, msg))
                return
            await pause()
            out += 1
            yield TextDelta(text=tok)
        if script.fail and stop is None:
            kind, msg = script.fail
            yield StreamError(error=error_for_kind(kind, msg))
            return

        if stop is None:
            # Ids in the shape the client's own API uses (toolu_… for Anthropic clients).
            id_prefix = "toolu_" if req.dialect == "anthropic_messages" else "call_"
            for kind, name, args in script.tools:
                call_id = new_id(id_prefix)
                yield ToolCallStart(id=call_id, name=name, kind=kind)
                await pause()
                yield ToolCallDelta(id=call_id, arguments=args)
                yield ToolCallEnd(id=call_id)
                out += 1 + len(args) // 4
            if script.tools:
                stop = StopReason.TOOL_USE

        usage.output_tokens = out
        yield UsageUpdate(usage=usage)
        yield Finish(stop_reason=stop or StopReason.END_TURN)


def from_spec(spec: ProviderSpec) -> EchoProvider:
    no_options(spec)
    return EchoProvider(name=spec.name, capabilities=spec.capabilities)
