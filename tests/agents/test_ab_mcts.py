"""AbMcts end to end over a scripted upstream: a seeded search that stops early at
``min_confidence``, exhaustion (``max_iterations`` rollouts, branches 1…n, best answer
chosen), refinements carrying the parent answer and the verifier's feedback, a failed
rollout scored 0 and isolated, every rollout failing, several candidate models, an LLM
judge, the token budget, and only the chosen answer as content."""

from __future__ import annotations

from typing import Any

from dragoman import AbMcts, verifiers
from dragoman.agents.client import CandidateDelta, Step, VerifierScore
from tests.fakes.scripted import Reply, ScriptedUpstream

from .orchestration import model, post, served, stream

SHORT = "short"
LONGISH = "a longer answer without the magic word, still long"
GOOD = "a long and complete answer that ends with QED"


def search(fake: ScriptedUpstream, **kw: Any) -> AbMcts:
    verifier = kw.pop("verifier", verifiers.RuleBased(min_chars=40, pattern="QED"))
    return AbMcts(model(fake, "m"), verifier, name="orch", **kw)


async def test_seeded_search_stops_at_min_confidence(fake: ScriptedUpstream) -> None:
    fake.reset({"m": [SHORT, LONGISH, GOOD]})
    async with served(search(fake, seed=7)) as base:
        got = await stream(base, "prove it")
    assert got.text == GOOD
    finals = [e for e in got.events if isinstance(e, VerifierScore) and e.final]
    assert finals == [VerifierScore(step=0, branch=1, score=0.0),
                      VerifierScore(step=1, branch=2, score=0.5),
                      VerifierScore(step=2, branch=3, score=1.0)]
    assert [e.index for e in got.events if isinstance(e, Step)] == [0, 1, 2]
    # every rollout streamed as a candidate of its own (step, branch), partials included
    for step, text in enumerate((SHORT, LONGISH, GOOD)):
        assert "".join(e.delta for e in got.events if isinstance(e, CandidateDelta)
                       and e.step == step and e.branch == step + 1) == text
    assert any(isinstance(e, VerifierScore) and not e.final for e in got.events)
    assert got.usage is not None and got.usage["total_tokens"] == 45
    # a refinement carries the parent answer, its score and the verifier's feedback
    for call in fake.calls("m")[1:]:
        msgs = call.body["messages"]
        if len(msgs) > 1:
            assert msgs[-2]["role"] == "assistant"
            assert "scored" in msgs[-1]["content"] and "Feedback:" in msgs[-1]["content"]


async def test_same_seed_same_search(fake: ScriptedUpstream) -> None:
    def shapes() -> list[int]:
        return [len(c.body["messages"]) for c in fake.calls("m")]

    answers = [SHORT, LONGISH, SHORT, LONGISH, SHORT, LONGISH, SHORT, LONGISH]
    fake.reset({"m": answers})
    await search(fake, seed=3, max_iterations=8).run("q")
    first = shapes()
    fake.reset({"m": answers})
    await search(fake, seed=3, max_iterations=8).run("q")
    assert shapes() == first and len(first) == 8


async def test_exhaustion_picks_the_best_answer(fake: ScriptedUpstream) -> None:
    fake.reset({"m": [SHORT, LONGISH, SHORT, LONGISH + " too", SHORT]})
    orch = search(fake, seed=1, max_iterations=5)
    result = await orch.run("q")
    assert result.text == LONGISH  # 0.5, the earliest of the best
    assert result.steps == 5 and result.usage.total_tokens == 75
    async with served(orch) as base:
        fake.reset()
        got = await stream(base, "q")
    finals = [e for e in got.events if isinstance(e, VerifierScore) and e.final]
    assert [(e.step, e.branch) for e in finals] == [(i, i + 1) for i in range(5)]
    assert got.text == LONGISH


async def test_a_failed_rollout_is_scored_zero_and_isolated(fake: ScriptedUpstream) -> None:
    fake.reset({"m": [Reply(status=500, text="boom"), SHORT, GOOD]})
    async with served(search(fake, seed=2)) as base:
        got = await stream(base, "q")
    finals = [e for e in got.events if isinstance(e, VerifierScore) and e.final]
    assert finals[0] == VerifierScore(step=0, branch=1, score=0.0)
    assert got.text == GOOD
    # nobody refined the failed branch
    assert all("boom" not in c.prompt for c in fake.calls("m"))


async def test_every_rollout_failing_fails_the_run(fake: ScriptedUpstream) -> None:
    fake.reset({"m": [Reply(status=500, text="boom")]})
    async with served(search(fake, max_iterations=3)) as base:
        r = await post(base, "q")
    assert r.status_code >= 500 and "boom" in r.json()["error"]["message"]
    assert len(fake.calls("m")) == 3


async def test_candidate_models_are_learned(fake: ScriptedUpstream) -> None:
    fake.reset({"m": [SHORT], "other": [LONGISH]})
    orch = AbMcts(model(fake, "m"), verifiers.RuleBased(min_chars=40, pattern="QED"),
                  candidates=[model(fake, "other")], max_iterations=16, seed=4)
    result = await orch.run("q")
    assert result.text == LONGISH
    n_m, n_other = len(fake.calls("m")), len(fake.calls("other"))
    assert n_m + n_other == 16 and n_other > n_m  # the better model is used more
    assert result.usage.total_tokens == 16 * 15


async def test_llm_judge_sees_the_question_and_feeds_the_refinement(
        fake: ScriptedUpstream) -> None:
    fake.reset({"m": ["draft", "better"], "judge": ["0.3\nmissing the base case", "0.97"]})
    orch = search(fake, verifier=verifiers.LlmJudge(model(fake, "judge")), seed=9)
    result = await orch.run("prove by induction")
    assert result.text == "better"
    assert "prove by induction" in fake.calls("judge")[0].prompt
    refine = fake.calls("m")[1].body["messages"]
    if len(refine) > 1:  # the search chose to go deeper
        assert "missing the base case" in refine[-1]["content"]
    assert result.usage.total_tokens == 4 * 15


async def test_token_budget_stops_the_search(fake: ScriptedUpstream) -> None:
    fake.reset({"m": [SHORT]})
    result = await search(fake, max_tokens=40).run("q")
    assert len(fake.calls("m")) == 3 and result.usage.total_tokens == 45
