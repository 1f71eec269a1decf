"""Every orchestrator, served: a client that leaves mid-stream closes every inner upstream
call at once and leaves no task behind; and a streamed answer equals the non-streamed one
with the same usage on all three dialects (the plain SDK-visible content only ever
carries the answer)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from dragoman import AbMcts, Conductor, SelfCaller, Trinity, guards, routers, verifiers
from dragoman.agents import Orchestrator
from tests.fakes.scripted import Reply, ScriptedUpstream

from .orchestration import model, post, served, settled, stream

SLOW = Reply(chunks=tuple(f"tick{i} " for i in range(200)), gap=0.05)
PLAN = json.dumps({"dispatch": [{"worker": "w", "task": "t"}, {"worker": "w2", "task": "u"}]})
HALT = json.dumps({"halt": True, "final_answer": "done"})

ORCHESTRATORS: dict[str, Callable[[ScriptedUpstream], Orchestrator]] = {
    "conductor": lambda f: Conductor(model(f, "coord"), {"w": model(f, "m"),
                                                         "w2": model(f, "m2")}, name="orch"),
    "trinity": lambda f: Trinity({"worker": model(f, "m"), "verifier": model(f, "v")},
                                 routers.RegexRouter(), name="orch"),
    "self_caller": lambda f: SelfCaller(model(f, "m"), guards.RuleBased(min_chars=10 ** 6),
                                        name="orch"),
    "ab_mcts": lambda f: AbMcts(model(f, "m"), verifiers.RuleBased(min_chars=10 ** 6),
                                candidates=[model(f, "m2")], seed=1, name="orch"),
}


@pytest.mark.parametrize("kind", list(ORCHESTRATORS))
async def test_client_leaving_stops_every_inner_call(fake: ScriptedUpstream, kind: str) -> None:
    fake.reset({"coord": [PLAN, HALT], "m": [SLOW], "m2": [SLOW], "v": ["VERDICT: ACCEPT"]})
    async with served(ORCHESTRATORS[kind](fake)) as base:
        baseline = asyncio.all_tasks()
        async with httpx.AsyncClient(base_url=base, timeout=10) as c, c.stream(
                "POST", "/v1/chat/completions", json={
                    "model": "orch", "stream": True,
                    "messages": [{"role": "user", "content": "go"}]}) as r:
            async for line in r.aiter_lines():
                if "tick2" in line:
                    break
        for _ in range(100):
            if fake.open == 0:
                break
            await asyncio.sleep(0.02)
        assert fake.open == 0, "an inner upstream call is still open"
        slow = [c for c in fake.calls() if c.model in ("m", "m2")]
        assert slow and all(c.closed_early for c in slow)
        assert await settled(baseline) == set(), "tasks left running"


def _scripts() -> dict[str, list[str | Reply]]:
    return {"coord": [PLAN, HALT], "m": ["first answer"], "m2": ["second answer"],
            "v": ["VERDICT: ACCEPT"]}


@pytest.mark.parametrize("ingress", ["chat", "responses", "messages"])
@pytest.mark.parametrize("kind", list(ORCHESTRATORS))
async def test_streamed_equals_not_streamed(fake: ScriptedUpstream, kind: str,
                                            ingress: str) -> None:
    async with served(ORCHESTRATORS[kind](fake)) as base:
        fake.reset(_scripts())
        plain = (await post(base, "go")).json()
        calls = len(fake.calls())
        fake.reset(_scripts())
        got = await stream(base, "go", ingress=ingress)
    answer = plain["choices"][0]["message"]["content"]
    assert got.text == answer and answer
    assert len(fake.calls()) == calls > 1
    assert got.usage is not None
    total = plain["usage"]["total_tokens"]
    assert total == 15 * calls  # every inner call counted
    if ingress == "chat":
        assert got.usage["total_tokens"] == total
    elif ingress == "responses":
        assert got.usage["input_tokens"] + got.usage["output_tokens"] == total
    else:
        assert got.usage["output_tokens"] == 5 * calls
