"""Verifiers: score an answer in [0, 1] (1 = right). AbMcts searches by their scores, and
Conductor and Trinity report them (``VerifierScore`` events) for each worker or turn.

- ``RuleBased(min_chars=0, pattern=None)``: the fraction of rules the answer passes
  (length, and the regex if given): 1.0, 0.5 or 0.0. Scores partial text too, at every
  delta (cheap), so a client sees the score climb while an answer streams.
- ``LlmJudge(judge, rubric=…)``: a judge model reads the rubric, the question and the
  answer and replies with a score (parsed robustly: ``0.83``, ``Score: 0.42``, ``85%``,
  ``7/10``; out of range clamped; no number → 0.5) and feedback, which AbMcts hands to
  the next refinement. Its usage counts in the orchestrator's. Judges partial text only
  with ``streaming_min_chars`` (every ``streaming_every_n``-th delta).
"""

from __future__ import annotations

from ..core import NO_CONTEXT, RequestContext
from .judging import DEFAULT_RUBRIC, Judgement, ModelJudge, Rules, Scorer
from .orchestrator import NO_USAGE


class RuleBased:
    """See the module docstring."""

    #: scoring calls no model: an orchestrator whose scores nobody reads may skip it
    calls_model = False

    def __init__(self, *, min_chars: int = 0, pattern: str | None = None) -> None:
        self.rules = Rules(min_chars=min_chars, pattern=pattern)
        self._count = self.rules.count
        #: a partial score by the number of rules failed (frozen: one per verifier)
        self._partial = [Judgement(score=1.0 - k / self._count, usage=NO_USAGE)
                         for k in range(self._count + 1)]
        #: the last text checked, what it failed and its final judgement (built when first
        #: asked): an answer's final score checks the same text as its last partial one,
        #: and a search scores the same answer again (pure functions of the text, so
        #: sharing them between runs is safe)
        self._last: tuple[str, list[str], Judgement | None] = ("", self.rules.failures(""),
                                                                None)

    def __repr__(self) -> str:
        return f"verifiers.RuleBased(min_chars={self.rules.min_chars}, " \
               f"pattern={self.rules.pattern!r})"

    def _failures(self, text: str) -> list[str]:
        last = self._last
        if last[0] == text:
            return last[1]
        failed = self.rules.failures(text)
        self._last = (text, failed, None)
        return failed

    def _judge(self, text: str) -> Judgement:
        last = self._last
        if last[0] == text and last[2] is not None:
            return last[2]
        failed = self._failures(text)
        judged = Judgement(score=1.0 - len(failed) / self._count, feedback="; ".join(failed),
                           usage=NO_USAGE)
        self._last = (text, failed, judged)
        return judged

    async def score(self, question: str, answer: str,
                    ctx: RequestContext = NO_CONTEXT) -> Judgement:
        return self._judge(answer)

    async def score_partial(self, question: str, text: str, deltas: int,
                            ctx: RequestContext = NO_CONTEXT) -> Judgement | None:
        # only the score is shown for partial text: no feedback sentence to join
        return self._partial[len(self._failures(text))]


class LlmJudge(ModelJudge):
    """See the module docstring."""


Verifier = Scorer

__all__ = ["DEFAULT_RUBRIC", "Judgement", "LlmJudge", "RuleBased", "Verifier"]
