"""``AbMcts``: adaptive-branching Monte-Carlo tree search over answers (arXiv 2503.04412).

Each iteration (one step) picks where to grow the tree (``tree_search``: Thompson
sampling between "go wider" and "go deeper"), picks the model that generates (the primary
``provider`` or one of the ``candidates``, learned per branch), generates an answer — a
fresh one under the root, or under a node a REFINEMENT of that node's answer with the
verifier's score and feedback — and scores it with the ``verifier``. The search stops when
an answer scores at least ``min_confidence``, after ``max_iterations`` rollouts, or when
the run's tokens reach ``max_tokens`` (a cost budget); the best answer wins.

A rollout that fails (its model call or its scoring raised) is scored 0 and isolated: the
search goes on without it. Only if every rollout failed does the run fail. ``seed`` makes
a search reproducible (same seed, same answers from the models ⇒ same tree). A rollout is
a ``SingleAgent`` tool loop of at most ``max_steps_per_rollout`` model calls when
``tools`` are given.

What a client sees per iteration: ``dragoman.step``, the rollout's text as
``dragoman.candidate_delta {step, branch}`` (``branch``: the new node's index, root = 0, so
the first rollout is branch 1) with partial ``verifier_score``s if the verifier scores
partial text, then the rollout's final ``verifier_score {step, branch, score}``. Only the
chosen answer streams as content, at the end. Usage sums every rollout and judge call.
``run()`` reads no events: none are built there, and a rollout is one ``complete()`` call
(no stream) unless a verifier that calls a model scores its partial text.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Any

import msgspec

from ..core import (
    AgentToolCall,
    AgentToolResult,
    CandidateDelta,
    ChatRequest,
    DragomanError,
    Message,
    StepStart,
    StreamEvent,
    TextDelta,
    UpstreamError,
    VerifierScore,
)
from ..providers.base import LlmProvider
from ..providers.legacy import with_context
from .judging import PartialScores, Scorer
from .orchestrator import (
    ENDED_EARLY,
    Orchestrator,
    RunState,
    Turn,
    assistant,
    close_stream,
    inner_request,
    question_of,
    user,
    whole_turn,
)
from .single import SingleAgent
from .tools import Tool, ToolRegistry
from .tree_search import Tree

_replace = msgspec.structs.replace

#: a rollout's nested agent events that reach the client (a tool-using rollout's calls)
FORWARDED = (AgentToolCall, AgentToolResult)

#: a rollout's outcome before its call answers (never changed: read only if the call fails)
NO_TURN = Turn()

REFINE_PROMPT = (
    "Your answer above scored {score:.2f} out of 1 with a verifier.{feedback} Improve it: "
    "fix what is wrong or missing and write the complete, corrected answer.")


class AbMcts(Orchestrator):
    """See the module docstring."""

    def __init__(self, provider: LlmProvider, verifier: Scorer, *,
                 candidates: Sequence[LlmProvider] = (), max_iterations: int = 16,
                 branching_factor: int = 3, max_steps_per_rollout: int = 4,
                 temperature: float | None = 0.7, min_confidence: float = 0.95,
                 seed: int | None = None, max_tokens: int | None = None,
                 tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] = (),
                 refine_prompt: str = REFINE_PROMPT, name: str = "ab-mcts",
                 owns_providers: bool = True) -> None:
        if max_iterations < 1:
            raise ValueError("max_iterations must be at least 1")
        if branching_factor < 1:
            raise ValueError("branching_factor must be at least 1")
        if max_steps_per_rollout < 1:
            raise ValueError("max_steps_per_rollout must be at least 1")
        models = [provider, *candidates]
        super().__init__(name=name, providers=models, owns_providers=owns_providers)
        self.models = models
        self.verifier = verifier
        self.max_iterations = max_iterations
        self.branching_factor = branching_factor
        self.temperature = temperature
        self.min_confidence = min_confidence
        self.seed = seed
        self.max_tokens = max_tokens
        self.refine_prompt = refine_prompt
        registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        # context-free providers wrapped once here, not on every rollout
        self._rollers: list[LlmProvider] = [with_context(
            SingleAgent(m, registry, max_steps=max_steps_per_rollout, owns_provider=False,
                        name=f"{name}:rollout") if len(registry) else m)
            for m in models]

    def __repr__(self) -> str:
        return (f"AbMcts(name={self.name!r}, models={len(self.models)}, "
                f"max_iterations={self.max_iterations})")

    def _conversation(self, req: ChatRequest, tree: Tree, parent: int,
                      prompts: dict[tuple[float, str], Message]) -> list[Message]:
        """A fresh answer under the root (the client's messages); under a node, a
        refinement of its answer: the client's messages, the node's answer and the refine
        prompt with its score and feedback (one prompt per score and feedback in a run: a
        rule verifier gives many answers the same)."""
        if parent == 0:
            return req.messages
        node = tree.nodes[parent]
        key = (node.score, node.feedback)
        prompt = prompts.get(key)
        if prompt is None:
            feedback = f" Feedback: {node.feedback}" if node.feedback else ""
            prompt = prompts[key] = user(
                self.refine_prompt.format(score=node.score, feedback=feedback))
        return [*req.messages, assistant(node.answer), prompt]

    async def _run(self, req: ChatRequest, run: RunState) -> AsyncGenerator[StreamEvent, None]:
        tree = Tree(branching_factor=self.branching_factor, models=len(self.models),
                    rng=random.Random(self.seed))
        question = question_of(req)
        # every rollout's request but its messages (set per rollout: one field to replace)
        base = inner_request(req, [], temperature=self.temperature)
        # one request per parent node and run, shared by every rollout under it (the
        # providers only read it)
        requests: dict[int, ChatRequest] = {}
        prompts: dict[tuple[float, str], Message] = {}
        last_error: DragomanError | None = None
        verifier, rollers, ctx = self.verifier, self._rollers, run.ctx
        # ``run()`` reads no events: none are built, and partial text is scored only by a
        # verifier that calls a model (its usage counts whether anyone sees the score)
        events = run.events
        partial_scorer = verifier if events or getattr(verifier, "calls_model", True) \
            else None
        whole = not events and (partial_scorer is None
                                or not getattr(partial_scorer, "scores_partial", True))
        for step in range(self.max_iterations):
            if self.max_tokens is not None and run.usage.total_tokens >= self.max_tokens:
                break
            if events:
                yield StepStart(index=step)
            run.steps += 1
            parent = tree.select()
            model = tree.choose_model(parent)
            branch = len(tree.nodes)
            turn = NO_TURN  # (replaced by the rollout's own: a failed call leaves it empty)
            scores = None if partial_scorer is None \
                else PartialScores(partial_scorer, question, step, branch, ctx)
            request = requests.get(parent)
            if request is None:
                request = requests[parent] = _replace(
                    base, messages=self._conversation(req, tree, parent, prompts))
            try:
                if whole:
                    # nobody reads the rollout's deltas: one whole answer (over HTTP a
                    # JSON body, cheaper to read than the same answer as SSE; awaited
                    # here, not through ``call_whole``: one coroutine less per rollout)
                    turn = whole_turn(await rollers[model].complete(request, ctx))
                    run.add(turn.usage)
                else:
                    # The rollout's stream is read here, not through ``relay``: one async
                    # generator less per iteration (the same event handling: ``Turn.absorb``).
                    turn = Turn()
                    parts: list[str] = []
                    stream = rollers[model].stream(request, ctx)
                    try:
                        async for ev in stream:
                            if isinstance(ev, TextDelta):
                                if not ev.text:
                                    continue
                                parts.append(ev.text)
                                if events:
                                    yield CandidateDelta(step=step, branch=branch,
                                                         delta=ev.text)
                                if scores is not None and scores.scorer is not None:
                                    partial = await scores.feed(ev.text)
                                    if partial is not None and events:
                                        yield partial
                            elif turn.absorb(ev):
                                break
                            elif events and isinstance(ev, FORWARDED):
                                yield ev
                    finally:
                        turn.text = "".join(parts)
                        run.add(turn.usage)
                        if scores is not None:
                            run.add(scores.usage)
                        await close_stream(stream)
                    if turn.stop_reason is None:
                        raise UpstreamError(ENDED_EARLY)
                judged = await verifier.score(question, turn.text, ctx)
                run.add(judged.usage)
            except DragomanError as e:  # this branch fails, the search goes on
                last_error = e
                tree.add(parent, model=model, score=0.0, answer=turn.text, failed=True,
                         feedback=str(e))
                if events:
                    yield VerifierScore(step=step, branch=branch, score=0.0)
                continue
            tree.add(parent, model=model, score=judged.score, answer=turn.text,
                     feedback=judged.feedback)
            if events:
                yield VerifierScore(step=step, branch=branch, score=judged.score)
            if judged.score >= self.min_confidence:
                break
        best = tree.best()
        if best is None:
            raise last_error or UpstreamError("the search ran no rollout")
        answer = tree.nodes[best].answer
        if answer:
            yield TextDelta(text=answer)
