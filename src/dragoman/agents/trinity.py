"""``Trinity``: each turn a router picks who acts next — a (role, model) pair — until a
Verifier accepts the answer or ``max_steps`` turns have run (TRINITY, arXiv 2512.04695).

Roles have real instructions (``ROLE_PROMPTS``): the **thinker** plans, the **worker**
solves (any role not named thinker or verifier works like a worker), the **verifier**
checks the latest answer and replies ``VERDICT: ACCEPT`` or ``VERDICT: REJECT`` with its
reasons. Every role reads the conversation and the team's work so far. A verifier picked
before there is an answer to check gives its turn to the first worker role. Without a
verifier role the run ends with the first answer.

The router (``routers``) gets the candidates ordered thinker(s), worker(s), verifier(s)
and sees the conversation followed by a short status line — "Solve
the task following the plan.", "Check the answer and give a verdict.", "The verifier
rejected the answer: … Solve it again." — so tako's keyword rule (``RegexRouter``)
walks plan → solve → check by itself;
``LlmRouter`` reads the whole transcript.

With ``tools``, each turn runs as a ``SingleAgent`` on the chosen model (the tool events
pass through); without, a turn is one call of the chosen model. What a client sees per
turn: ``dragoman.step``, the turn's text as ``dragoman.candidate_delta {step, branch:
role index}``, with a ``verifier`` scorer partial and final ``verifier_score``s of worker
turns, and for a verifier turn one ``verifier_score`` (1.0 accept, 0.0 reject). The
answer — the last worker answer — is the only content. Usage sums every turn, router and judge call.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Any

from ..core import (
    AgentToolCall,
    AgentToolResult,
    CandidateDelta,
    ChatRequest,
    StepStart,
    StopReason,
    StreamEvent,
    TextDelta,
    VerifierScore,
)
from ..providers.base import LlmProvider
from .judging import PartialScores, Scorer
from .orchestrator import (
    Orchestrator,
    RunState,
    Turn,
    assistant,
    inner_request,
    question_of,
    relay,
    user,
)
from .routers import Router
from .single import SingleAgent
from .tools import Tool, ToolRegistry

THINKER, WORKER, VERIFIER = "thinker", "worker", "verifier"

ROLE_PROMPTS = {
    THINKER: ("You are the Thinker of a team that answers the user's request. Do not write "
              "the final answer. Analyse the request and write a short, concrete plan for "
              "the Worker: the steps, the pitfalls, and what must be checked."),
    WORKER: ("You are the Worker of a team that answers the user's request. Write the "
             "complete answer for the user, following the plan if there is one and fixing "
             "every objection of the Verifier if there are any. Reply with the answer only."),
    VERIFIER: ("You are the Verifier of a team that answers the user's request. Check the "
               "latest answer strictly against the request. Your first line must be "
               "exactly 'VERDICT: ACCEPT' or 'VERDICT: REJECT'; after a rejection, say "
               "precisely what is wrong or missing."),
}

STATUS_AFTER = {
    THINKER: "Solve the task following the plan.",
    WORKER: "Check the answer and give a verdict.",
}
STATUS_REJECTED = "The verifier rejected the answer: {feedback} Solve it again."

_VERDICT = re.compile(r"verdict\s*[:=-]?\s*\**\s*(accept|reject)", re.IGNORECASE)
_WORD = re.compile(r"\b(accept(?:ed)?|approved?|reject(?:ed)?)\b", re.IGNORECASE)


def parse_verdict(text: str) -> tuple[bool, str]:
    """A verifier's reply → (accepted, feedback). ``VERDICT: ACCEPT/REJECT`` first; else
    the first accept/approve/reject word; no verdict at all counts as a rejection."""
    m = _VERDICT.search(text)
    word = m.group(1) if m is not None else None
    if word is None:
        w = _WORD.search(text)
        word = w.group(1) if w is not None else "reject"
    accepted = word.lower().startswith(("accept", "approv"))
    lines = text.strip().splitlines()
    feedback = "\n".join(lines[1:]).strip() if m is not None else text.strip()
    return accepted, feedback


_KIND_ORDER = {THINKER: 0, WORKER: 1, VERIFIER: 2}


def kind_of(role: str) -> str:
    """What a role does: thinker, verifier, or (any other name) worker."""
    lower = role.lower()
    return lower if lower in (THINKER, VERIFIER) else WORKER


class Trinity(Orchestrator):
    """See the module docstring. ``roles``: role name → model or orchestrator; the
    router's candidates list them thinkers first, then workers, then verifiers (a turn's
    ``branch`` is the position there). ``tools`` as for ``SingleAgent``;
    ``tool_steps`` bounds one turn's tool loop."""

    def __init__(self, roles: Mapping[str, LlmProvider], router: Router, *,
                 max_steps: int = 8, verifier: Scorer | None = None,
                 tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] = (),
                 tool_steps: int = 8, name: str = "trinity",
                 owns_providers: bool = True) -> None:
        if not roles:
            raise ValueError("a Trinity needs at least one role")
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if all(kind_of(r) == VERIFIER for r in roles):
            raise ValueError("a Trinity needs a role that answers (not only verifiers)")
        super().__init__(name=name, providers=roles.values(), owns_providers=owns_providers)
        self.roles = dict(roles)
        self.router = router
        self.max_steps = max_steps
        self.verifier = verifier
        registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        # without tools a turn is one model call: no tool loop around it (as AbMcts)
        self._agents: dict[str, LlmProvider] = {
            role: SingleAgent(p, registry, max_steps=tool_steps, owns_provider=False,
                              name=f"{name}:{role}") if len(registry) else p
            for role, p in roles.items()}
        # Candidates in role order — thinkers, workers, verifiers — whatever the order
        # given (a YAML mapping has none): tako's keyword rule picks by position.
        self._order = sorted(roles, key=lambda r: _KIND_ORDER[kind_of(r)])
        self._candidates = [f"{r}|{getattr(roles[r], 'name', r)}" for r in self._order]
        self._has_verifier = any(kind_of(r) == VERIFIER for r in roles)
        #: who acts when the verifier is picked before there is an answer to check
        self._stand_in = next((r for r in roles if kind_of(r) == WORKER),
                              next(r for r in roles if kind_of(r) != VERIFIER))

    def __repr__(self) -> str:
        return f"Trinity(name={self.name!r}, roles={self._order!r}, router={self.router!r})"

    def _role_of(self, choice: str) -> str:
        role = choice.split("|", 1)[0]
        if role in self.roles:
            return role
        for r, c in zip(self._order, self._candidates, strict=True):  # a bare model name
            if c.split("|", 1)[1] == choice:
                return r
        raise ValueError(f"the router chose {choice!r}, which is not a candidate")

    async def _run(self, req: ChatRequest, run: RunState) -> AsyncGenerator[StreamEvent, None]:
        work: list[tuple[str, str]] = []  # (role, text) of every turn
        question = question_of(req)
        answer = ""
        status: str | None = None
        for step in range(self.max_steps):
            yield StepStart(index=step)
            run.steps += 1
            view = [*req.messages, *(assistant(f"[{r}] {t}") for r, t in work)]
            route = await self.router.route([*view, user(status)] if status else view,
                                            self._candidates, run.ctx)
            run.add(route.usage)
            role = self._role_of(route.choice)
            if kind_of(role) == VERIFIER and not answer:
                role = self._stand_in
            kind = kind_of(role)
            branch = self._order.index(role)
            turn = Turn()
            # the turn's scorer: a verifier turn's verdict is its score
            scores = PartialScores(self.verifier if kind != VERIFIER else None, question,
                                   step, branch, run.ctx)
            try:
                async with contextlib.aclosing(relay(
                        self._agents[role], self._turn_request(req, kind, work), turn,
                        forward=(AgentToolCall, AgentToolResult), ctx=run.ctx)) as acting:
                    async for ev in acting:
                        if not isinstance(ev, TextDelta):
                            yield ev
                            continue
                        yield CandidateDelta(step=step, branch=branch, delta=ev.text)
                        partial = await scores.feed(ev.text)
                        if partial is not None:
                            yield partial
            finally:
                run.add(scores.usage)
                run.add(turn.usage)
            work.append((role, turn.text))
            if kind == VERIFIER:
                accepted, feedback = parse_verdict(turn.text)
                yield VerifierScore(step=step, branch=branch, score=1.0 if accepted else 0.0)
                if accepted:
                    break
                status = STATUS_REJECTED.format(feedback=feedback or "(no reason given).")
                continue
            if kind == WORKER or not answer:
                answer = turn.text
            if self.verifier is not None:
                judged = await self.verifier.score(question, turn.text, run.ctx)
                run.add(judged.usage)
                yield VerifierScore(step=step, branch=branch, score=judged.score)
            if kind == WORKER and not self._has_verifier:
                break
            status = STATUS_AFTER[kind]
        else:
            run.stop_reason = StopReason.MAX_STEPS
        if answer:
            yield TextDelta(text=answer)

    def _turn_request(self, req: ChatRequest, kind: str,
                      work: list[tuple[str, str]]) -> ChatRequest:
        """One role's turn: its prompt, the conversation, the team's work so far."""
        messages = list(req.messages)
        if work:
            shown = "\n\n".join(f"[{r}]\n{t}" for r, t in work)
            messages.append(user(f"The team's work so far:\n\n{shown}\n\nNow do your part."))
        return inner_request(req, messages, system=ROLE_PROMPTS[kind])
