"""Judges and routers call their models with the run's request context, like every other
inner call: served over a real socket, a client's ``anthropic-beta`` header (forwarded by
the context to Anthropic-wire upstreams) reaches the judge's and the router's upstream
calls as it reaches the workers', in every orchestrator that judges or routes."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from dragoman import AbMcts, Conductor, SelfCaller, Trinity, guards, routers, verifiers
from dragoman.agents import Orchestrator
from tests.fakes.scripted import ScriptedUpstream

from .orchestration import claude_model, served

BETA = "judges-see-this-2026-12-07"
PLAN = json.dumps({"dispatch": [{"worker": "w", "task": "answer"}]})
HALT = json.dumps({"halt": True, "final_answer": "done"})


def _judge(fake: ScriptedUpstream) -> verifiers.LlmJudge:
    # partial judging on too: the streamed scores' calls carry the context as well
    return verifiers.LlmJudge(claude_model(fake, "judge"), streaming_min_chars=1)


ORCHESTRATORS: dict[str, Callable[[ScriptedUpstream], Orchestrator]] = {
    "conductor": lambda f: Conductor(claude_model(f, "coord"), {"w": claude_model(f, "m")},
                                     verifier=_judge(f), name="orch"),
    "trinity": lambda f: Trinity({"worker": claude_model(f, "m")},
                                 routers.LlmRouter(claude_model(f, "router")),
                                 verifier=_judge(f), name="orch"),
    "self_caller": lambda f: SelfCaller(
        claude_model(f, "m"), guards.LlmJudge(claude_model(f, "judge"), streaming_min_chars=1),
        max_depth=1, name="orch"),
    "ab_mcts": lambda f: AbMcts(claude_model(f, "m"), _judge(f), max_iterations=1, seed=1,
                                name="orch"),
}


@pytest.mark.parametrize("kind", list(ORCHESTRATORS))
async def test_judge_and_router_calls_carry_the_request_context(fake: ScriptedUpstream,
                                                                kind: str) -> None:
    fake.reset({"coord": [PLAN, HALT], "m": ["the answer is 42"], "judge": ["0.9\nfine"],
                "router": ["worker|m"]})
    async with served(ORCHESTRATORS[kind](fake)) as base, \
            httpx.AsyncClient(base_url=base, timeout=30) as c:
        r = await c.post("/v1/chat/completions", headers={"anthropic-beta": BETA}, json={
            "model": "orch", "messages": [{"role": "user", "content": "what is 6 * 7?"}]})
    assert r.status_code == 200, r.text
    judged = [*fake.calls("judge"), *fake.calls("router")]
    assert judged, "no judge or router call was made"
    assert [c.headers.get("anthropic-beta") for c in judged] == [BETA] * len(judged)
    # the same as the workers' calls (which always had it)
    workers = fake.calls("m")
    assert workers and all(c.headers.get("anthropic-beta") == BETA for c in workers)
