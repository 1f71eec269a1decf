"""``agents:`` entries of the orchestrator kinds, and how one becomes an orchestrator.

```yaml
agents:
  - {name: team, kind: conductor, coordinator: MODEL, workers: {code: MODEL, math: MODEL},
     max_steps: 6, max_fanout: 4, worker_timeout: 120, fail_fast: false,
     verifier: {kind: rule_based, min_chars: 1, pattern: "REGEX"}}
  - {name: trio, kind: trinity, roles: {thinker: MODEL, worker: MODEL, verifier: MODEL},
     router: regex, max_steps: 8,            # or router: {kind: llm, model: MODEL}
     tools: [read_file, {python: "pkg.mod:fn"}], workspace: DIR, tool_steps: 8}
  - {name: careful, kind: self_caller, inner: MODEL_OR_AGENT, max_depth: 3,
     min_confidence: 0.7, guard: {kind: llm_judge, model: MODEL, rubric: "..."}}
  - {name: search, kind: ab_mcts, model: MODEL, candidates: [MODEL], max_iterations: 16,
     branching_factor: 3, min_confidence: 0.95, seed: 7,
     verifier: {kind: llm_judge, model: MODEL}}
```

MODEL is any configured model or an agent defined EARLIER in the list — so references can
never form a cycle; one that points at the agent itself or at a later agent is a start-up
error naming its path (``references``). Each kind is its own struct, tagged by ``kind``
(the ``single`` kind is ``AgentSpec`` in ``spec``). A Trinity's ``tools`` and
``workspace`` are written as a single agent's (``spec.build_tools``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

from ..providers.base import LlmProvider
from . import guards, verifiers
from .ab_mcts import AbMcts
from .conductor import Conductor
from .judging import DEFAULT_RUBRIC, Scorer
from .orchestrator import Orchestrator
from .routers import LlmRouter, RegexRouter, Router
from .self_caller import REVISION_PROMPT, SelfCaller
from .spec import AgentSpecError, build_tools
from .tools import ToolRegistry
from .trinity import Trinity


class _Spec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="kind"):
    pass


class RuleBasedSpec(_Spec, tag="rule_based"):
    min_chars: int = 0
    pattern: str | None = None


class LlmJudgeSpec(_Spec, tag="llm_judge"):
    model: str
    rubric: str = DEFAULT_RUBRIC
    streaming_min_chars: int | None = None
    streaming_every_n: int = 1


ScorerSpec = RuleBasedSpec | LlmJudgeSpec


class LlmRouterSpec(_Spec, tag="llm"):
    model: str


class ConductorSpec(_Spec, tag="conductor"):
    name: str
    coordinator: str
    workers: dict[str, str]
    max_steps: int = 6
    max_fanout: int = 4
    worker_timeout: float | None = 120.0
    fail_fast: bool = False
    verifier: ScorerSpec | None = None
    max_depth: int = 1


class TrinitySpec(_Spec, tag="trinity"):
    name: str
    roles: dict[str, str]
    router: Literal["regex"] | LlmRouterSpec = "regex"
    max_steps: int = 8
    verifier: ScorerSpec | None = None
    workspace: str | None = None
    tools: list[str | dict[str, Any]] = msgspec.field(default_factory=list)
    tool_steps: int = 8


class SelfCallerSpec(_Spec, tag="self_caller"):
    name: str
    inner: str
    guard: ScorerSpec
    max_depth: int = 3
    min_confidence: float = 0.7
    revision_prompt: str = REVISION_PROMPT


class AbMctsSpec(_Spec, tag="ab_mcts"):
    name: str
    model: str
    verifier: ScorerSpec
    candidates: list[str] = msgspec.field(default_factory=list)
    max_iterations: int = 16
    branching_factor: int = 3
    max_steps_per_rollout: int = 4
    temperature: float | None = 0.7
    min_confidence: float = 0.95
    seed: int | None = None
    max_tokens: int | None = None


OrchestratorSpec = ConductorSpec | TrinitySpec | SelfCallerSpec | AbMctsSpec
ORCHESTRATOR_KINDS = frozenset(("conductor", "trinity", "self_caller", "ab_mcts"))


def with_default_kind(entries: Any) -> Any:
    """``agents:`` entries with ``kind: single`` filled in where it is left out (the kind
    tags the entry's struct, so it must be there)."""
    if not isinstance(entries, list):
        return entries
    return [{"kind": "single", **e} if isinstance(e, dict) and "kind" not in e else e
            for e in entries]


def _scorer_refs(spec: ScorerSpec | None, where: str) -> list[tuple[str, str]]:
    return [(f"{where}.model", spec.model)] if isinstance(spec, LlmJudgeSpec) else []


def references(spec: OrchestratorSpec) -> list[tuple[str, str]]:
    """Every model name the entry uses, with its path below the entry."""
    if isinstance(spec, ConductorSpec):
        return [(".coordinator", spec.coordinator),
                *((f".workers.{r}", m) for r, m in spec.workers.items()),
                *_scorer_refs(spec.verifier, ".verifier")]
    if isinstance(spec, TrinitySpec):
        router = [(".router.model", spec.router.model)] \
            if isinstance(spec.router, LlmRouterSpec) else []
        return [*((f".roles.{r}", m) for r, m in spec.roles.items()), *router,
                *_scorer_refs(spec.verifier, ".verifier")]
    if isinstance(spec, SelfCallerSpec):
        return [(".inner", spec.inner), *_scorer_refs(spec.guard, ".guard")]
    return [(".model", spec.model),
            *((f".candidates[{i}]", m) for i, m in enumerate(spec.candidates)),
            *_scorer_refs(spec.verifier, ".verifier")]


class OrchestratorSpecError(ValueError):
    """A bad value in an entry; ``where`` is its path below the entry."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


def _checked(where: str, make: Callable[[], Any]) -> Any:
    """``make()``, its ValueError (a bad setting) turned into an error naming ``where``."""
    try:
        return make()
    except ValueError as e:
        raise OrchestratorSpecError(str(e), where) from None


def _scorer(spec: ScorerSpec | None, where: str, model: Callable[[str], LlmProvider], *,
            guard: bool = False) -> Scorer | None:
    if spec is None:
        return None
    if isinstance(spec, RuleBasedSpec):
        rules = guards.RuleBased if guard else verifiers.RuleBased
        return _checked(where, lambda: rules(min_chars=spec.min_chars, pattern=spec.pattern))
    judge = guards.LlmJudge if guard else verifiers.LlmJudge
    return _checked(where, lambda: judge(
        model(spec.model), spec.rubric, streaming_min_chars=spec.streaming_min_chars,
        streaming_every_n=spec.streaming_every_n))


def _tool_registry(spec: TrinitySpec) -> ToolRegistry:
    try:
        return ToolRegistry(build_tools(spec))
    except (TypeError, ValueError) as e:  # two tools with one name, a bad function
        if isinstance(e, AgentSpecError):
            raise
        raise OrchestratorSpecError(str(e), ".tools") from None


def build_orchestrator(spec: OrchestratorSpec,
                       model: Callable[[str], LlmProvider]) -> Orchestrator:
    """The orchestrator of an entry; ``model(name)`` gives the provider of a model or an
    earlier agent (not owned: the gateway closes it)."""
    common: dict[str, Any] = {"name": spec.name, "owns_providers": False}
    if isinstance(spec, ConductorSpec):
        verifier = _scorer(spec.verifier, ".verifier", model)
        return _checked("", lambda: Conductor(
            model(spec.coordinator), {r: model(m) for r, m in spec.workers.items()},
            max_steps=spec.max_steps, max_fanout=spec.max_fanout,
            worker_timeout=spec.worker_timeout, fail_fast=spec.fail_fast, verifier=verifier,
            max_depth=spec.max_depth, **common))
    if isinstance(spec, TrinitySpec):
        verifier = _scorer(spec.verifier, ".verifier", model)
        router: Router = RegexRouter() if isinstance(spec.router, str) \
            else LlmRouter(model(spec.router.model))
        tools = _tool_registry(spec)
        return _checked("", lambda: Trinity(
            {r: model(m) for r, m in spec.roles.items()}, router, max_steps=spec.max_steps,
            verifier=verifier, tools=tools, tool_steps=spec.tool_steps, **common))
    if isinstance(spec, SelfCallerSpec):
        guard = _scorer(spec.guard, ".guard", model, guard=True)
        assert guard is not None
        return _checked("", lambda: SelfCaller(
            model(spec.inner), guard, max_depth=spec.max_depth,
            min_confidence=spec.min_confidence, revision_prompt=spec.revision_prompt,
            **common))
    scorer = _scorer(spec.verifier, ".verifier", model)
    assert scorer is not None
    return _checked("", lambda: AbMcts(
        model(spec.model), scorer, candidates=[model(m) for m in spec.candidates],
        max_iterations=spec.max_iterations, branching_factor=spec.branching_factor,
        max_steps_per_rollout=spec.max_steps_per_rollout, temperature=spec.temperature,
        min_confidence=spec.min_confidence, seed=spec.seed, max_tokens=spec.max_tokens,
        **common))
