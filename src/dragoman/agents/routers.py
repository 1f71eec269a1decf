"""Routers: pick one of several candidates (Trinity: ``"<role>|<model>"`` pairs) for the
next turn of a conversation.

- ``RegexRouter()``: tako's rule over the LAST user message: code (a backtick, a code
  keyword or the word "code") → candidate 0; else maths (``= + * / ^ ∫ ∑ √`` or "math" /
  "solve") → candidate 1; else candidate 2; clamped to the last candidate. Confidence 1.0
  when a rule fired, 0.5 for the default. (So "x = 1" routes to maths and "explain the
  code" to code, exactly as in tako.)
- ``LlmRouter(model)``: a model reads the transcript and the candidates and names one;
  its reply may be the whole candidate or just the role. Its usage counts in the
  orchestrator's. An unreadable reply picks the first candidate with confidence 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..core import NO_CONTEXT, ChatRequest, Message, RequestContext, Usage
from ..providers.base import LlmProvider
from .orchestrator import call, text_of, user


@dataclass(frozen=True)
class Route:
    """``choice`` is one of the candidates, as given."""

    choice: str
    confidence: float
    reason: str = ""
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class Router(Protocol):
    """``ctx``: the run's request context (a router model's call carries it)."""

    async def route(self, messages: Sequence[Message], candidates: Sequence[str],
                    ctx: RequestContext = NO_CONTEXT) -> Route: ...


_CODE_WORDS = ("fn ", "def ", "class ", "import ", "function ", "return ", "let ", "const ")
_MATH_SYMBOLS = frozenset("=+*/^∫∑√")


def regex_choice(text: str) -> tuple[int, float]:
    """tako's rule → (candidate index before clamping, confidence)."""
    lower = text.lower()
    if "`" in text or any(w in text for w in _CODE_WORDS) or "code" in lower:
        return 0, 1.0
    if any(c in _MATH_SYMBOLS for c in text) or "math" in lower or "solve" in lower:
        return 1, 1.0
    return 2, 0.5


def last_user_text(messages: Sequence[Message]) -> str:
    for m in reversed(messages):
        if m.role == "user":
            return text_of([m])
    return ""


class RegexRouter:
    """See the module docstring."""

    def __repr__(self) -> str:
        return "routers.RegexRouter()"

    async def route(self, messages: Sequence[Message], candidates: Sequence[str],
                    ctx: RequestContext = NO_CONTEXT) -> Route:
        if not candidates:
            raise ValueError("no candidates to route to")
        index, confidence = regex_choice(last_user_text(messages))
        return Route(choice=candidates[min(index, len(candidates) - 1)],
                     confidence=confidence, reason="regex-router")


ROUTER_PROMPT = (
    "You coordinate a team. Read the conversation and the work so far, then decide who "
    "acts next. Candidates (role|model):\n{candidates}\n\nConversation and work so far:\n"
    "---\n{transcript}\n---\n\nReply with exactly one candidate from the list and nothing "
    "else.")


def pick_candidate(reply: str, candidates: Sequence[str]) -> str | None:
    """The candidate a router model named: the whole ``role|model`` text, or failing that
    the first role name mentioned as a word (earliest in the reply)."""
    text = reply.strip()
    for c in sorted(candidates, key=len, reverse=True):
        if c in text:
            return c
    best: tuple[int, str] | None = None
    for c in candidates:
        role = c.split("|", 1)[0]
        m = re.search(rf"\b{re.escape(role)}\b", text, re.IGNORECASE)
        if m is not None and (best is None or m.start() < best[0]):
            best = (m.start(), c)
    return best[1] if best else None


class LlmRouter:
    """See the module docstring. ``prompt`` has ``{candidates}`` and ``{transcript}``."""

    def __init__(self, model: LlmProvider, *, prompt: str = ROUTER_PROMPT,
                 max_tokens: int = 64) -> None:
        self.model = model
        self.prompt = prompt
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"routers.LlmRouter(model={self.model!r})"

    async def route(self, messages: Sequence[Message], candidates: Sequence[str],
                    ctx: RequestContext = NO_CONTEXT) -> Route:
        if not candidates:
            raise ValueError("no candidates to route to")
        text = self.prompt.format(candidates="\n".join(f"- {c}" for c in candidates),
                                  transcript=_transcript(messages))
        req = ChatRequest(model=getattr(self.model, "name", "router"), messages=[user(text)],
                          max_tokens=self.max_tokens, temperature=0.0)
        turn = await call(self.model, req, ctx)
        choice = pick_candidate(turn.text, candidates)
        if choice is None:
            return Route(choice=candidates[0], confidence=0.0,
                         reason="llm-router: unreadable reply", usage=turn.usage)
        return Route(choice=choice, confidence=1.0, reason="llm-router", usage=turn.usage)


def _transcript(messages: Sequence[Message]) -> str:
    return "\n\n".join(f"[{m.role}] {text_of([m])}" for m in messages)


__all__ = ["LlmRouter", "RegexRouter", "Route", "Router"]
