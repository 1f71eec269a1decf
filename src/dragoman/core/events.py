"""Stream events: what providers yield and stream renderers consume.

Blocks are implicit: consecutive ``TextDelta`` events form one text block (unless a
``TextStart`` opens a new one), a
``ThinkingDelta`` run ends with ``ThinkingEnd`` (which carries the signature), a tool call
is ``ToolCallStart`` · ``ToolCallDelta``* · ``ToolCallEnd``. Renderers close the open block
when an event of another kind arrives. ``UsageUpdate`` is cumulative: the last one wins.
Exactly one terminal event ends a stream: ``Finish`` or ``StreamError``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .content import Citation, Opaque
from .errors import DragomanError
from .response import StopReason, Usage


class _Event(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    pass


class TextDelta(_Event):
    text: str


class TextStart(_Event):
    """Opens a new text part that must not merge with the text before it: a second
    Responses message item of one turn (``phase`` ``commentary`` / ``final_answer``), an
    Anthropic text block that carries citations. Parsers emit it only then, so a plain
    text stream pays nothing for it."""

    phase: str | None = None


class CitationAdded(_Event):
    """A citation of the open (or the next) text part: Anthropic ``citations_delta``,
    Responses ``response.output_text.annotation.added``."""

    citation: Citation


class RefusalDelta(_Event):
    """Refusal text (Chat ``delta.refusal``, Responses ``response.refusal.delta``); a run
    of them is one ``Refusal`` part."""

    text: str


class ThinkingDelta(_Event):
    text: str


class ThinkingEnd(_Event):
    """Closes a thinking block; ``signature`` is the provider's opaque proof (Anthropic
    signature / Responses ``encrypted_content``), ``id`` the provider's item id if any."""

    signature: str | None = None
    id: str | None = None
    origin: str | None = None


class RedactedThinkingBlock(_Event):
    data: str
    origin: str | None = None


class ToolCallStart(_Event):
    id: str
    name: str
    kind: str = "function"


class ToolCallDelta(_Event):
    id: str
    arguments: str


class ToolCallEnd(_Event):
    id: str


class OpaqueItem(_Event):
    """A dialect-specific output item (hosted tool call…) passed through whole."""

    part: Opaque


class UsageUpdate(_Event):
    usage: Usage


class Finish(_Event):
    stop_reason: StopReason = StopReason.END_TURN
    stop_sequence: str | None = None


class StreamError(_Event):
    """A failure after the stream has started; rendered in-band by each dialect."""

    error: DragomanError


# --- agent events (emitted by orchestrators; plain dialect renderers may ignore them) ---


class StepStart(_Event):
    index: int


class AgentToolCall(_Event):
    """``step``: the orchestrator's step (a Conductor's coordinator turn) when it has one."""

    id: str
    name: str
    args: Any = None
    step: int | None = None


class AgentToolResult(_Event):
    id: str
    name: str
    result: str
    is_error: bool = False
    step: int | None = None


class VerifierScore(_Event):
    """A verifier's score in [0, 1] of one unit of work: ``step`` (turn or iteration) and
    ``branch`` (which worker, role or tree node). Partial scores of the text so far have
    ``final=False``; the last score of a ``(step, branch)`` is the one that counts."""

    step: int
    branch: int
    score: float
    final: bool = True


class Recursion(_Event):
    """A ``SelfCaller`` iteration at ``depth`` (0 = the first run) was scored
    ``confidence`` by its guard."""

    depth: int
    confidence: float


class CandidateDelta(_Event):
    """Text of a candidate answer that is not (yet) the answer: an AB-MCTS rollout, a
    SelfCaller iteration, a Conductor worker, a Trinity turn. The answer itself streams
    as ``TextDelta``."""

    step: int
    branch: int
    delta: str


StreamEvent = (
    TextDelta
    | TextStart
    | CitationAdded
    | RefusalDelta
    | ThinkingDelta
    | ThinkingEnd
    | RedactedThinkingBlock
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | OpaqueItem
    | UsageUpdate
    | Finish
    | StreamError
    | StepStart
    | AgentToolCall
    | AgentToolResult
    | VerifierScore
    | Recursion
    | CandidateDelta
)
