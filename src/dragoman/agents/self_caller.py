"""``SelfCaller``: run any model or orchestrator, let a guard score the answer, and ask for
a revision while the confidence is below ``min_confidence`` — at most ``max_depth``
revisions (``max_depth + 1`` runs).

A revision is the previous conversation + the previous answer + ``revision_prompt``
(which may use ``{confidence}`` and ``{feedback}``: what the guard said was wrong). The
guard sees the question as well as the answer.

Streaming: an iteration that may still be revised streams as
``dragoman.candidate_delta {step: depth, branch: 0}``; once it is accepted its whole text
is the answer's content. The guard may accept early on partial text
(``score_partial``): from then on the iteration streams as content, to its END (tako
truncates the answer there), and no further revision happens. The last allowed iteration
streams as content from its first token (it is the answer whatever its score). One
``dragoman.recursion {depth, confidence}`` follows every iteration; the inner's own
events (steps, tool calls, scores) pass through.

Depth is a real budget: a SelfCaller inside another (directly or deeper in the inner)
gets only the revisions its parent has left, and numbers its depths from its parent's, so
nested SelfCallers never multiply. Usage sums every iteration and every judge call.

With no one reading deltas (``run()``, ``complete()``) each iteration is answered whole
(``call_whole``: over HTTP one JSON answer, no stream to parse, as tako's ``run()``) and
the guard scores that whole text: no partial scoring, so no early pass — and nothing to
truncate either.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextvars import ContextVar

import msgspec

from ..core import (
    CandidateDelta,
    ChatRequest,
    Message,
    Recursion,
    StreamEvent,
    TextDelta,
    UpstreamError,
)
from ..providers.base import LlmProvider
from ..providers.legacy import with_context
from .judging import Judgement, Scorer
from .orchestrator import (
    ENDED_EARLY,
    NESTED_EVENTS,
    Orchestrator,
    RunState,
    Turn,
    assistant,
    call_whole,
    close_stream,
    inner_request,
    question_of,
    user,
)

_replace = msgspec.structs.replace

REVISION_PROMPT = (
    "Your previous answer scored {confidence:.2f} out of 1 on a confidence check{feedback}. "
    "Find its gaps and errors, then write a corrected, complete answer (the whole answer, "
    "not only the changes).")

#: (depth of the enclosing SelfCaller's current iteration, revisions it has left);
#: read by a SelfCaller nested inside its inner run.
_ENCLOSING: ContextVar[tuple[int, int] | None] = ContextVar("dragoman_self_caller",
                                                            default=None)


class SelfCaller(Orchestrator):
    """See the module docstring."""

    def __init__(self, inner: LlmProvider, guard: Scorer, *, max_depth: int = 3,
                 min_confidence: float = 0.7, revision_prompt: str = REVISION_PROMPT,
                 name: str = "self-caller", owns_providers: bool = True) -> None:
        if max_depth < 0:
            raise ValueError("max_depth must not be negative")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("min_confidence must be between 0 and 1")
        super().__init__(name=name, providers=[inner], owns_providers=owns_providers)
        self.inner = inner
        self.guard = guard
        self.max_depth = max_depth
        self.min_confidence = min_confidence
        self.revision_prompt = revision_prompt
        self._inner = with_context(inner)  # called with the request's context

    def __repr__(self) -> str:
        return (f"SelfCaller(name={self.name!r}, inner={self.inner!r}, "
                f"max_depth={self.max_depth}, min_confidence={self.min_confidence})")

    def revision(self, judged: Judgement) -> str:
        feedback = f" ({judged.feedback})" if judged.feedback else ""
        return self.revision_prompt.format(confidence=judged.score, feedback=feedback)

    async def _run(self, req: ChatRequest, run: RunState) -> AsyncGenerator[StreamEvent, None]:
        enclosing = _ENCLOSING.get()
        start, budget = (0, self.max_depth) if enclosing is None else (
            enclosing[0], min(self.max_depth, enclosing[1]))
        question = question_of(req)
        messages: list[Message] = list(req.messages)
        iteration_req = inner_request(req, messages)  # a revision replaces its messages
        events = run.events  # else no one reads agent events: none are built
        for offset in range(budget + 1):
            depth = start + offset
            last = offset == budget
            run.steps += 1
            early: Judgement | None = None
            live = last and events  # streaming as the answer's content
            _ENCLOSING.set((depth, budget - offset))
            if not events:  # no one reads deltas: the iteration answered whole
                try:
                    turn = await call_whole(self._inner, iteration_req, run.ctx)
                finally:
                    _ENCLOSING.set(enclosing)
                run.add(turn.usage)
            else:
                turn = Turn()
                parts: list[str] = []  # this iteration's text so far
                # the inner stream read here, not through ``relay``: one async generator
                # less per iteration
                iteration = self._inner.stream(iteration_req, run.ctx)
                try:
                    async for ev in iteration:
                        if not isinstance(ev, TextDelta):
                            if turn.absorb(ev):
                                break
                            if isinstance(ev, NESTED_EVENTS):
                                yield ev
                            continue
                        if not ev.text:
                            continue
                        parts.append(ev.text)
                        if live:
                            yield ev
                            continue
                        yield CandidateDelta(step=depth, branch=0, delta=ev.text)
                        partial = await self.guard.score_partial(question, "".join(parts),
                                                                 len(parts), run.ctx)
                        if partial is None:
                            continue
                        run.add(partial.usage)
                        if partial.score >= self.min_confidence:
                            early, live = partial, True
                            yield TextDelta(text="".join(parts))
                finally:
                    turn.text = "".join(parts)
                    _ENCLOSING.set(enclosing)
                    run.add(turn.usage)
                    await close_stream(iteration)
            if turn.stop_reason is None:
                raise UpstreamError(ENDED_EARLY)
            if early is not None:
                if events:
                    yield Recursion(depth=depth, confidence=early.score)
                return
            judged = await self.guard.score(question, turn.text, run.ctx)
            run.add(judged.usage)
            if events:
                yield Recursion(depth=depth, confidence=judged.score)
            if last or judged.score >= self.min_confidence:
                if not live and turn.text:
                    yield TextDelta(text=turn.text)
                return
            messages = [*messages, assistant(turn.text), user(self.revision(judged))]
            iteration_req = _replace(iteration_req, messages=messages)
