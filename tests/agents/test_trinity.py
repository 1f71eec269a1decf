"""Trinity end to end over a scripted upstream: tako's regex rule walking thinker → worker
→ verifier, a rejection fed back, ``max_steps``, an LLM router, role prompts reaching the
models, a scoring verifier, and tools as in SingleAgent."""

from __future__ import annotations

from dragoman import Trinity, routers, verifiers
from dragoman.agents.client import (
    CandidateDelta,
    Step,
    ToolCallResult,
    ToolCallStart,
    VerifierScore,
)
from dragoman.providers import EchoProvider
from tests.fakes.scripted import ScriptedUpstream

from .orchestration import model, post, served, stream
from .sample_tools import get_weather

PLAN = "1. add the numbers 2. return the sum"
ANSWER = "def add(a, b):\n    return a + b"


def trio(fake: ScriptedUpstream, router: routers.Router | None = None,
         **kw: object) -> Trinity:
    roles = {"thinker": model(fake, "t"), "worker": model(fake, "w"),
             "verifier": model(fake, "v")}
    return Trinity(roles, router or routers.RegexRouter(), name="orch", **kw)  # type: ignore[arg-type]


async def test_regex_router_walks_plan_solve_check(fake: ScriptedUpstream) -> None:
    fake.reset({"t": [PLAN], "w": [ANSWER], "v": ["VERDICT: ACCEPT"]})
    async with served(trio(fake)) as base:
        got = await stream(base, "Write code that adds two numbers")
    assert got.text == ANSWER
    steps = [e.index for e in got.events if isinstance(e, Step)]
    assert steps == [0, 1, 2]
    # the code prompt routes to candidate 0 (thinker), "Solve ..." to 1, the rest to 2
    branches = [e.branch for e in got.events if isinstance(e, CandidateDelta)]
    assert sorted(set(branches)) == [0, 1, 2] and branches == sorted(branches)
    assert got.events[-1] == VerifierScore(step=2, branch=2, score=1.0)
    assert got.usage is not None and got.usage["total_tokens"] == 45
    # real role prompts; every role sees the team's work so far
    assert "You are the Thinker" in fake.calls("t")[0].body["messages"][0]["content"]
    worker = fake.calls("w")[0]
    assert "You are the Worker" in worker.body["messages"][0]["content"]
    assert f"[thinker]\n{PLAN}" in worker.prompt
    assert f"[worker]\n{ANSWER}" in fake.calls("v")[0].prompt


async def test_a_rejection_is_fed_back_until_accepted(fake: ScriptedUpstream) -> None:
    fake.reset({"w": ["x = 3", "x = -3"], "t": [PLAN],
                "v": ["VERDICT: REJECT\nthe sign is wrong", "VERDICT: ACCEPT"]})
    async with served(trio(fake)) as base:
        got = await stream(base, "hello there")  # routes to the verifier: nothing to check
    assert got.text == "x = -3"
    scores = [e for e in got.events if isinstance(e, VerifierScore)]
    assert scores == [VerifierScore(step=1, branch=2, score=0.0),
                      VerifierScore(step=3, branch=2, score=1.0)]
    assert len(fake.calls("w")) == 2 and not fake.calls("t")
    assert "the sign is wrong" in fake.calls("w")[1].prompt


async def test_max_steps_ends_with_the_last_answer(fake: ScriptedUpstream) -> None:
    fake.reset({"w": ["a1", "a2"], "v": ["VERDICT: REJECT\nno"]})
    orch = trio(fake, max_steps=4)
    async with served(orch) as base:
        r = await post(base, "hello")
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "a2"
    assert body["choices"][0]["finish_reason"] == "length"  # max_steps, like max_tokens
    result = await orch.run("hello")
    assert result.steps == 4 and result.stop_reason == "max_steps"


async def test_llm_router_picks_roles(fake: ScriptedUpstream) -> None:
    fake.reset({"r": ["worker|w", "The verifier should check it."], "w": [ANSWER],
                "v": ["VERDICT: ACCEPT"]})
    result = await trio(fake, routers.LlmRouter(model(fake, "r"))).run("add numbers")
    assert result.text == ANSWER and result.steps == 2
    assert "- thinker|t\n- worker|w\n- verifier|v" in fake.calls("r")[0].prompt
    assert f"[worker] {ANSWER}" in fake.calls("r")[1].prompt  # it reads the transcript
    assert result.usage.total_tokens == 4 * 15


async def test_scoring_verifier_reports_worker_turns(fake: ScriptedUpstream) -> None:
    fake.reset({"w": [ANSWER], "v": ["VERDICT: ACCEPT"]})
    orch = trio(fake, verifier=verifiers.RuleBased(min_chars=20))
    async with served(orch) as base:
        got = await stream(base, "hi")
    worker_scores = [e for e in got.events if isinstance(e, VerifierScore) and e.branch == 1]
    assert worker_scores[-1] == VerifierScore(step=0, branch=1, score=1.0)
    assert any(not e.final for e in worker_scores)


async def test_tools_run_as_in_single_agent() -> None:
    orch = Trinity({"worker": EchoProvider()}, routers.RegexRouter(), tools=[get_weather],
                   name="orch")
    async with served(orch) as base:
        got = await stream(base, '::tool get_weather {"city": "Paris"}')
    start = next(e for e in got.events if isinstance(e, ToolCallStart))
    result = next(e for e in got.events if isinstance(e, ToolCallResult))
    assert (start.name, start.args) == ("get_weather", {"city": "Paris"})
    assert result.result == "18C, sunny in Paris" and not result.is_error
    assert got.text.endswith("result: 18C, sunny in Paris")


async def test_candidates_are_in_role_order_whatever_the_given_order(
        fake: ScriptedUpstream) -> None:
    # a YAML mapping has no order (the config writer may sort it): the keyword rule
    # must still walk solve -> check
    fake.reset({"w": ["4"], "v": ["VERDICT: ACCEPT"]})
    orch = Trinity({"verifier": model(fake, "v"), "worker": model(fake, "w")},
                   routers.RegexRouter(), name="orch")
    result = await orch.run("What is 2+2?")
    assert (result.text, result.steps) == ("4", 2)
