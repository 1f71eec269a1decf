"""Guards: how confident a ``SelfCaller`` may be in an answer, in [0, 1]. Below its
``min_confidence`` the SelfCaller asks for a revision.

- ``RuleBased(min_chars=0, pattern=None)``: all or nothing — 1.0 when the answer is long
  enough AND matches the regex (if given), else 0.0. On partial text: 1.0 once it passes
  (the SelfCaller then knows it will not recurse), else no opinion.
- ``LlmJudge(judge, rubric, *, streaming_min_chars=None, streaming_every_n=1)``: a judge
  model scores the answer against the rubric — seeing the question too (tako's does not).
  Partial text is judged only with ``streaming_min_chars`` set, on every
  ``streaming_every_n``-th delta of the iteration (a per-run count, not per guard).
"""

from __future__ import annotations

from ..core import NO_CONTEXT, RequestContext
from .judging import Judgement, ModelJudge, Rules, Scorer
from .orchestrator import NO_USAGE


class RuleBased:
    """See the module docstring."""

    def __init__(self, *, min_chars: int = 0, pattern: str | None = None) -> None:
        self.rules = Rules(min_chars=min_chars, pattern=pattern)

    def __repr__(self) -> str:
        return f"guards.RuleBased(min_chars={self.rules.min_chars}, " \
               f"pattern={self.rules.pattern!r})"

    async def score(self, question: str, answer: str,
                    ctx: RequestContext = NO_CONTEXT) -> Judgement:
        failed = self.rules.failures(answer)
        return Judgement(score=0.0 if failed else 1.0, feedback="; ".join(failed),
                         usage=NO_USAGE)

    async def score_partial(self, question: str, text: str, deltas: int,
                            ctx: RequestContext = NO_CONTEXT) -> Judgement | None:
        return None if self.rules.failures(text) else Judgement(score=1.0, usage=NO_USAGE)


class LlmJudge(ModelJudge):
    """See the module docstring."""


Guard = Scorer

__all__ = ["Guard", "Judgement", "LlmJudge", "RuleBased"]
