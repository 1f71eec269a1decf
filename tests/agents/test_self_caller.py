"""SelfCaller end to end over a scripted upstream: recurse-then-pass, never-pass (exactly
``max_depth + 1`` runs, one ``recursion`` per iteration), an LLM judge guard that sees the
question and whose feedback reaches the revision, the early pass that must NOT truncate
the answer (tako does), nested SelfCallers sharing one depth budget, a SelfCaller
around a Conductor passing its events on, and ``run()``/``complete()`` asking for every
iteration whole (no one reads its deltas) while a stream still streams them and judges
partial text."""

from __future__ import annotations

import json

from dragoman import Conductor, SelfCaller, SingleAgent, guards
from dragoman.agents.client import CandidateDelta, Recursion, ToolCallStart
from tests.fakes.scripted import Reply, ScriptedUpstream, last_user

from .orchestration import model, post, served, stream

LONG = "A CRDT converges because its merge is commutative, associative and idempotent."


async def test_recurse_then_pass(fake: ScriptedUpstream) -> None:
    fake.reset({"m": ["too short", LONG]})
    orch = SelfCaller(model(fake, "m"), guards.RuleBased(min_chars=40), max_depth=3,
                      name="orch")
    async with served(orch) as base:
        got = await stream(base, "why do CRDTs converge?")
    assert got.text == LONG
    recursions = [e for e in got.events if isinstance(e, Recursion)]
    assert recursions == [Recursion(depth=0, confidence=0.0), Recursion(depth=1, confidence=1.0)]
    # the rejected iteration streamed only as a candidate, before its recursion event
    first = got.events[:got.events.index(recursions[0])]
    assert "".join(e.delta for e in first if isinstance(e, CandidateDelta)) == "too short"
    assert got.usage is not None and got.usage["total_tokens"] == 30
    revision = fake.calls("m")[1].body["messages"]
    assert revision[-2] == {"role": "assistant", "content": "too short"}
    assert "scored 0.00 out of 1" in revision[-1]["content"]
    assert "shorter than 40 characters" in revision[-1]["content"]


async def test_never_pass_runs_max_depth_plus_one_times(fake: ScriptedUpstream) -> None:
    fake.reset({"m": ["one", "two", "three", "four"]})
    orch = SelfCaller(model(fake, "m"), guards.RuleBased(min_chars=1000), max_depth=2)
    async with served(orch) as base:
        got = await stream(base, "q")
    assert [e for e in got.events if isinstance(e, Recursion)] == [
        Recursion(depth=d, confidence=0.0) for d in range(3)]
    assert len(fake.calls("m")) == 3
    assert got.text == "three"  # the last allowed iteration is the answer
    # ... and it streamed as content from its first token (no candidate frames)
    assert not [e for e in got.events if isinstance(e, CandidateDelta) and e.step == 2]
    result = await SelfCaller(model(fake, "m"), guards.RuleBased(min_chars=1000),
                              max_depth=0).run("q")
    assert result.steps == 1


async def test_llm_judge_guard_sees_the_question(fake: ScriptedUpstream) -> None:
    fake.reset({"m": ["draft", "final answer"],
                "judge": ["Score: 0.4\nThe proof is missing.", "0.9"]})
    guard = guards.LlmJudge(model(fake, "judge"), "Is the answer rigorous?")
    orch = SelfCaller(model(fake, "m"), guard, max_depth=3, min_confidence=0.7)
    async with served(orch) as base:
        got = await stream(base, "prove that sqrt(2) is irrational")
    assert got.text == "final answer"
    assert [e for e in got.events if isinstance(e, Recursion)] == [
        Recursion(depth=0, confidence=0.4), Recursion(depth=1, confidence=0.9)]
    judged = fake.calls("judge")[0].prompt
    assert "Is the answer rigorous?" in judged
    assert "prove that sqrt(2) is irrational" in judged and "---\ndraft\n---" in judged
    assert "(The proof is missing.)" in fake.calls("m")[1].prompt
    assert got.usage is not None and got.usage["total_tokens"] == 4 * 15  # judge counted


async def test_early_pass_never_truncates_the_answer(fake: ScriptedUpstream) -> None:
    deltas = tuple(f"{i}" * 35 + " " for i in range(6))  # 6 deltas of 36 characters
    fake.reset({"m": [Reply(chunks=deltas)]})
    orch = SelfCaller(model(fake, "m"), guards.RuleBased(min_chars=60), max_depth=3)
    async with served(orch) as base:
        got = await stream(base, "q")
    assert got.text == "".join(deltas) and len(got.text) == 216
    assert [e for e in got.events if isinstance(e, Recursion)] == [
        Recursion(depth=0, confidence=1.0)]
    assert (await orch.run("q")).text == got.text
    assert len(fake.calls("m")) == 2  # one run each: no revision after an early pass


async def test_nested_self_callers_share_one_depth_budget(fake: ScriptedUpstream) -> None:
    fake.reset({"m": ["never good enough"]})
    never = guards.RuleBased(min_chars=1000)
    inner = SelfCaller(model(fake, "m"), never, max_depth=3)
    outer = SelfCaller(inner, never, max_depth=1)
    result = await outer.run("q")
    # outer iteration 0 leaves the inner 1 revision (2 runs), iteration 1 leaves none
    # (1 run): 3 model calls, where tako's renumbering would make 2 x 4 = 8
    assert len(fake.calls("m")) == 3
    assert result.text == "never good enough"


async def test_wrapping_a_conductor_passes_its_events_on(fake: ScriptedUpstream) -> None:
    fake.reset({"coord": [json.dumps({"dispatch": [{"worker": "w", "task": "t"}]}),
                          json.dumps({"halt": True, "final_answer": LONG})],
                "w": ["worker output"]})
    team = Conductor(model(fake, "coord"), {"w": model(fake, "w")})
    orch = SelfCaller(team, guards.RuleBased(min_chars=40), max_depth=2)
    async with served(orch) as base:
        got = await stream(base, "q")
    assert got.text == LONG
    assert any(isinstance(e, ToolCallStart) and e.name == "worker:w" for e in got.events)
    assert [e for e in got.events if isinstance(e, Recursion)] == [
        Recursion(depth=0, confidence=1.0)]
    assert got.usage is not None and got.usage["total_tokens"] == 3 * 15


def _streamed(fake: ScriptedUpstream, name: str) -> list[bool]:
    """Whether each request the upstream got for ``name`` asked for a stream."""
    return [bool(c.body.get("stream")) for c in fake.calls(name)]


async def test_run_asks_for_each_iteration_whole(fake: ScriptedUpstream) -> None:
    fake.reset({"m": ["too short", Reply(chunks=(LONG[:30], LONG[30:]))]})
    orch = SelfCaller(model(fake, "m"), guards.RuleBased(min_chars=40), max_depth=3)
    result = await orch.run("why do CRDTs converge?")
    assert result.text == LONG and result.steps == 2
    assert result.usage.total_tokens == 30
    assert _streamed(fake, "m") == [False, False]  # JSON answers, no stream to parse
    revision = fake.calls("m")[1].body["messages"]
    assert revision[-2] == {"role": "assistant", "content": "too short"}
    assert "shorter than 40 characters" in revision[-1]["content"]


async def test_a_tool_less_single_agent_inner_answers_whole(fake: ScriptedUpstream) -> None:
    fake.reset({"m": ["too short", LONG]})
    inner = SingleAgent(model(fake, "m"), system="Be precise.")
    orch = SelfCaller(inner, guards.RuleBased(min_chars=40), max_depth=3)
    result = await orch.run("why do CRDTs converge?")
    assert (result.text, result.steps, result.usage.total_tokens) == (LONG, 2, 30)
    assert _streamed(fake, "m") == [False, False]  # the agent's one step asked whole
    first = fake.calls("m")[0].body["messages"]
    assert first[0] == {"role": "system", "content": "Be precise."}
    async with served(SelfCaller(inner, guards.RuleBased(min_chars=40), name="orch")) as base:
        got = await stream(base, "why?")
    assert got.text == LONG and _streamed(fake, "m")[-1] is True  # a stream still streams


async def test_complete_sums_whole_iterations_and_judge_calls(fake: ScriptedUpstream
                                                              ) -> None:
    # a streaming judge: it would judge partial text, but no one streams
    fake.reset({"m": ["draft", "final answer"],
                "judge": ["Score: 0.4\nThe proof is missing.", "0.9"]})
    guard = guards.LlmJudge(model(fake, "judge"), "Is it rigorous?", streaming_min_chars=1)
    orch = SelfCaller(model(fake, "m"), guard, max_depth=3, name="orch")
    async with served(orch) as base:
        r = await post(base, "prove that sqrt(2) is irrational")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "final answer"
    assert body["usage"]["total_tokens"] == 4 * 15  # two iterations, two judge calls
    assert _streamed(fake, "m") == [False, False]
    assert _streamed(fake, "judge") == [False, False]  # the whole answers only, judged
    assert "---\ndraft\n---" in fake.calls("judge")[0].prompt
    assert "(The proof is missing.)" in fake.calls("m")[1].prompt


async def test_a_stream_still_streams_and_judges_partial_text(fake: ScriptedUpstream
                                                              ) -> None:
    fake.reset({"m": [Reply(chunks=("alpha ", "beta ", "gamma")), "final answer"],
                "judge": lambda body: "0.2" if "gamma" not in last_user(body) else "0.3"})
    guard = guards.LlmJudge(model(fake, "judge"), streaming_min_chars=1, streaming_every_n=2)
    orch = SelfCaller(model(fake, "m"), guard, max_depth=1, name="orch")
    async with served(orch) as base:
        got = await stream(base, "q")
    assert got.text == "final answer"
    assert _streamed(fake, "m") == [True, True]
    # the first iteration's 2nd delta judged on its text so far, then its whole text; the
    # last iteration (the answer whatever its score) judged whole only
    judged = [c.prompt for c in fake.calls("judge")]
    assert len(judged) == 3
    assert "---\nalpha beta \n---" in judged[0] and "alpha beta gamma" in judged[1]
    assert [e for e in got.events if isinstance(e, Recursion)] == [
        Recursion(depth=0, confidence=0.3), Recursion(depth=1, confidence=0.2)]
    assert got.usage is not None and got.usage["total_tokens"] == 5 * 15
