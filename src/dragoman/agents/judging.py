"""The mechanism verifiers and guards share: a ``Judgement`` (score in [0, 1], feedback,
what judging cost), rule checks, and a judge model's reply read as a score.

A *scorer* has two methods: ``score(question, answer)`` for a finished answer and
``score_partial(question, text_so_far, deltas)`` for a streaming one (None: no opinion
yet, nothing is emitted). ``deltas`` counts the text deltas of the unit being scored, so a
scorer that judges every N-th delta keeps no counter of its own (tako keeps one on the
instance, shared by every run).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import msgspec

from ..core import NO_CONTEXT, ChatRequest, RequestContext, Usage, VerifierScore
from ..providers.base import LlmProvider
from .orchestrator import NO_USAGE, call, user


class Judgement(msgspec.Struct, frozen=True):
    """``score`` in [0, 1]; ``feedback`` says what is wrong (fed to a revision);
    ``usage`` is what a judge model spent. (A struct: a rule scorer makes one per
    streamed delta.)"""

    score: float
    feedback: str = ""
    usage: Usage = msgspec.field(default_factory=Usage)


@runtime_checkable
class Scorer(Protocol):
    """``ctx``: the run's request context, for a scorer that calls a model (its call
    carries the caller's tenant, forwarded headers and trace like every inner call)."""

    async def score(self, question: str, answer: str,
                    ctx: RequestContext = NO_CONTEXT) -> Judgement: ...

    async def score_partial(self, question: str, text: str, deltas: int,
                            ctx: RequestContext = NO_CONTEXT) -> Judgement | None: ...


def clamp(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return min(1.0, max(0.0, x))


# --- rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """``min_chars`` (length in characters) and an optional ``pattern`` (a regex searched
    anywhere in the text)."""

    min_chars: int = 0
    pattern: str | None = None
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False,
                                           default=None)
    #: the failure sentences, written once (``failures`` runs on every streamed delta)
    _short: str = field(init=False, repr=False, compare=False, default="")
    _unmatched: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if self.min_chars < 0:
            raise ValueError("min_chars must not be negative")
        object.__setattr__(self, "_short",
                           f"the answer is shorter than {self.min_chars} characters")
        object.__setattr__(self, "_unmatched", f"the answer does not match {self.pattern!r}")
        if self.pattern is not None:
            try:
                object.__setattr__(self, "_regex", re.compile(self.pattern))
            except re.error as e:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regex: {e}") from None

    def failures(self, text: str) -> list[str]:
        """What the text misses, one sentence per failed rule (scored on every streamed
        delta: keep it cheap)."""
        out = []
        if len(text) < self.min_chars:
            out.append(self._short)
        if self._regex is not None and self._regex.search(text) is None:
            out.append(self._unmatched)
        return out

    @property
    def count(self) -> int:
        """How many rules there are (a score is the fraction passed)."""
        return 2 if self._regex is not None else 1


# --- a judge model's reply --------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?|-?\.\d+)\s*(%|/\s*(\d+(?:\.\d+)?))?")
#: a score written as "7/10" or "85%"; "Score: 0.9"; a lone "1.5" (clamped to 1)


def parse_score(reply: str, default: float = 0.5) -> float:
    """The first number in a judge's reply as a score in [0, 1]: ``0.83``, ``Score:
    0.42``, ``85%`` (0.85), ``7/10`` (0.7); out of range is clamped (``1.5`` → 1, ``-0.2``
    → 0); no number → ``default`` (an undecided judge neither passes nor fails)."""
    m = _NUMBER.search(reply)
    if m is None:
        return default
    value = float(m.group(1))
    if m.group(2) == "%":
        value /= 100
    elif m.group(3) is not None:
        denominator = float(m.group(3))
        value = value / denominator if denominator else default
    return clamp(value)


def feedback_of(reply: str) -> str:
    """What the judge wrote after its score line (the feedback a revision gets)."""
    lines = reply.strip().splitlines()
    return "\n".join(lines[1:]).strip() if len(lines) > 1 else ""


JUDGE_INSTRUCTIONS = (
    "Reply with the score on the first line: only a decimal number between 0 and 1 "
    "(1 = fully correct and complete). On the next lines, say briefly what is wrong or "
    "missing, if anything.")


def judge_prompt(rubric: str, question: str, answer: str) -> str:
    """What the judge model reads: the rubric, the QUESTION (tako's guard never shows it),
    the answer between ``---`` lines, the reply format."""
    return (f"{rubric}\n\nQuestion:\n---\n{question}\n---\n\nAnswer to judge:\n---\n"
            f"{answer}\n---\n\n{JUDGE_INSTRUCTIONS}")


DEFAULT_RUBRIC = ("You are a strict grader. Judge whether the answer correctly and "
                  "completely answers the question.")


class ModelJudge:
    """A judge model scoring answers against a rubric. Streaming judging is off unless
    ``streaming_min_chars`` is set; then the judge runs on every ``streaming_every_n``-th
    delta of a text at least that long. ``max_tokens`` caps the judge's reply."""

    def __init__(self, judge: LlmProvider, rubric: str = DEFAULT_RUBRIC, *,
                 streaming_min_chars: int | None = None, streaming_every_n: int = 1,
                 max_tokens: int = 256) -> None:
        if streaming_every_n < 1:
            raise ValueError("streaming_every_n must be at least 1")
        self.judge = judge
        self.rubric = rubric
        self.streaming_min_chars = streaming_min_chars
        self.streaming_every_n = streaming_every_n
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"{type(self).__name__}(judge={self.judge!r})"

    async def score(self, question: str, answer: str,
                    ctx: RequestContext = NO_CONTEXT) -> Judgement:
        req = ChatRequest(model=getattr(self.judge, "name", "judge"),
                          messages=[user(judge_prompt(self.rubric, question, answer))],
                          max_tokens=self.max_tokens, temperature=0.0)
        turn = await call(self.judge, req, ctx)
        return Judgement(score=parse_score(turn.text), feedback=feedback_of(turn.text),
                         usage=turn.usage)

    @property
    def scores_partial(self) -> bool:
        """Whether partial text is ever judged (``PartialScores`` skips it if not)."""
        return self.streaming_min_chars is not None

    async def score_partial(self, question: str, text: str, deltas: int,
                            ctx: RequestContext = NO_CONTEXT) -> Judgement | None:
        if self.streaming_min_chars is None or len(text) < self.streaming_min_chars:
            return None
        if deltas % self.streaming_every_n:
            return None
        return await self.score(question, text, ctx)



class PartialScores:
    """Partial ``VerifierScore``s of one streaming unit ``(step, branch)``: ``feed`` each
    text delta, get the event to pass on (or None); ``usage`` is what judging cost. With
    no scorer, or one that never scores partial text (``scores_partial`` false), it does
    nothing: ``scorer`` is None then, and a caller need not feed it."""

    __slots__ = ("_deltas", "_parts", "branch", "ctx", "question", "scorer", "step", "usage")

    def __init__(self, scorer: Scorer | None, question: str, step: int, branch: int,
                 ctx: RequestContext = NO_CONTEXT) -> None:
        self.scorer = scorer if getattr(scorer, "scores_partial", True) else None
        self.ctx = ctx
        self.question = question
        self.step = step
        self.branch = branch
        self.usage = NO_USAGE  # (replaced, never changed in place)
        self._parts: list[str] = []
        self._deltas = 0

    async def feed(self, delta: str) -> VerifierScore | None:
        if self.scorer is None:
            return None
        self._parts.append(delta)
        self._deltas += 1
        got = await self.scorer.score_partial(self.question, "".join(self._parts),
                                              self._deltas, self.ctx)
        if got is None:
            return None
        if got.usage != NO_USAGE:
            self.usage = self.usage + got.usage
        return VerifierScore(step=self.step, branch=self.branch, score=got.score, final=False)
