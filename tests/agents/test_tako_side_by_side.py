"""dragoman next to tako 0.51.2: the same scenarios, the same scripted answers, compared on
event kinds, order and step/branch/id values (``fixtures/tako/``: tako's own event streams
for these scenarios, recorded by running it, timestamps and upstream requests removed).

Compared: step starts, tool call starts (step, name, id) and results (step, id, error or
not), the authoritative (last) verifier score of every (step, branch), recursion events
and the final text. Not compared, as deliberate differences (README, "Compared with
tako"): tako's ``assistant_text`` (it streams plans and every candidate as answer text;
dragoman streams candidates as ``candidate_delta`` and only the answer as content) and
where partial scores interleave (that depends on timing).

tako's Python API streams a Conductor only through a SelfCaller, so its Conductor captures
ran inside one (``max_depth=0``: the trailing ``recursion {0, 0.0}``); so do these."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dragoman import AbMcts, Conductor, SelfCaller, SingleAgent, guards, verifiers
from dragoman.agents import Orchestrator
from dragoman.agents.client import (
    AgentEvent,
    Recursion,
    Step,
    ToolCallResult,
    ToolCallStart,
    VerifierScore,
)
from tests.fakes.scripted import ScriptedUpstream

from .orchestration import model, served, stream

FIXTURES = Path(__file__).parent / "fixtures" / "tako"

Skeleton = tuple[list[tuple[Any, ...]], dict[tuple[int, int], float], str]


def tako_skeleton(name: str) -> Skeleton:
    events = [json.loads(line)["event"] for line in (FIXTURES / f"{name}.jsonl").open()
              if '"event"' in line]
    seq: list[tuple[Any, ...]] = []
    scores: dict[tuple[int, int], float] = {}
    text = ""
    for e in events:
        kind = e["kind"]
        if kind == "step_start":
            seq.append(("step", e["step"]))
        elif kind == "tool_call_start":
            seq.append(("start", e["step"], e["name"], e["id"]))
        elif kind == "tool_call_result":
            seq.append(("result", e["step"], e["id"], e["is_error"]))
        elif kind == "verifier_score":
            scores[e["step"], e["branch"]] = e["score"]
        elif kind == "recursion":
            seq.append(("recursion", e["depth"], e["confidence"]))
        elif kind == "final":
            text = e["text"]
    return seq, scores, text


def our_skeleton(events: list[AgentEvent], text: str) -> Skeleton:
    seq: list[tuple[Any, ...]] = []
    scores: dict[tuple[int, int], float] = {}
    for e in events:
        if isinstance(e, Step):
            seq.append(("step", e.index))
        elif isinstance(e, ToolCallStart):
            seq.append(("start", e.step, e.name, e.id))
        elif isinstance(e, ToolCallResult):
            seq.append(("result", e.step, e.id, e.is_error))
        elif isinstance(e, VerifierScore) and e.final:
            scores[e.step, e.branch] = e.score
        elif isinstance(e, Recursion):
            seq.append(("recursion", e.depth, e.confidence))
    return seq, scores, text


def _plan(dispatch: list[dict[str, str]]) -> str:
    return json.dumps({"dispatch": dispatch, "halt": False})


CRDT = "A CRDT converges because merges are commutative, associative and idempotent."
ANSWERS = ["short", "a longer answer without the magic word........................",
           "a long and complete answer that ends with QED .................", "meh"]


def _streamable(conductor: Conductor) -> SelfCaller:
    """As tako's capture harness streamed a Conductor: inside a SelfCaller that never
    revises."""
    return SelfCaller(conductor, guards.RuleBased(min_chars=10 ** 6), max_depth=0,
                      name="orch")


def scenario(name: str, fake: ScriptedUpstream) -> tuple[Orchestrator, str]:
    """The orchestrator of a captured scenario on the scripted upstream, and its prompt."""
    if name == "conductor_basic":
        fake.reset({"coord": [
            json.dumps({"thought": "split the job", "dispatch": [
                {"worker": "code", "task": "Implement merge sort in Python."},
                {"worker": "math", "task": "Verify the O(n log n) bound."}], "halt": False}),
            json.dumps({"halt": True, "final_answer":
                        "Merge sort is implemented and runs in O(n log n)."})],
            "code": ["def merge_sort(xs): ... # splits, sorts halves, merges"],
            "math": ["T(n) = 2T(n/2) + O(n) gives O(n log n)."]})
        return _streamable(Conductor(model(fake, "coord"), {
            "code": model(fake, "code"), "math": model(fake, "math")},
            verifier=verifiers.RuleBased(min_chars=20))), \
            "Implement merge sort and verify its bound."
    if name == "conductor_unknown_worker_fail_fast_false":
        fake.reset({"coord": [_plan([{"worker": "ghost", "task": "haunt"},
                                     {"worker": "code", "task": "x"}]),
                              json.dumps({"halt": True, "final_answer": "gave up"})],
                    "code": ["fake code result"]})
        return _streamable(Conductor(model(fake, "coord"), {"code": model(fake, "code")})), \
            "hello"
    if name == "self_caller_recurse":
        fake.reset({"m": ["too short", CRDT]})
        return SelfCaller(SingleAgent(model(fake, "m")), guards.RuleBased(min_chars=40),
                          max_depth=3, name="orch"), "Explain CRDTs"
    if name == "self_caller_max_depth":
        fake.reset({"m": ["nope"]})
        return SelfCaller(SingleAgent(model(fake, "m")), guards.RuleBased(min_chars=1000),
                          max_depth=2, name="orch"), "Explain CRDTs"
    fake.reset({"m": lambda body: ANSWERS[len(fake.calls("m")) % 4 - 1]})
    return AbMcts(model(fake, "m"), verifiers.RuleBased(min_chars=40, pattern="QED"),
                  max_iterations=6, branching_factor=2, seed=1, name="orch"), "Prove it"


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.jsonl")))
async def test_same_skeleton_as_tako(fake: ScriptedUpstream, name: str) -> None:
    orch, prompt = scenario(name, fake)
    async with served(orch) as base:
        got = await stream(base, prompt)
    assert our_skeleton(got.events, got.text) == tako_skeleton(name)
