"""The Python names of the seed, results with ``text``/``usage``/``steps`` on every
orchestrator (SingleAgent too), and orchestrators nesting inside each other."""

from __future__ import annotations

import dragoman
from dragoman import AbMcts, Conductor, SelfCaller, SingleAgent, Trinity, guards, routers, verifiers
from dragoman.agents import guards as agent_guards
from dragoman.providers import EchoProvider

from .sample_tools import get_weather


def test_public_names() -> None:
    assert {"SingleAgent", "Conductor", "Trinity", "SelfCaller", "AbMcts", "verifiers",
            "guards", "routers"} <= set(dragoman.__all__)
    assert guards.LlmJudge is agent_guards.LlmJudge
    assert {"RuleBased", "LlmJudge"} <= set(verifiers.__all__) & set(guards.__all__)
    assert {"RegexRouter", "LlmRouter"} <= set(routers.__all__)


async def test_single_agent_result() -> None:
    agent = SingleAgent(EchoProvider(), tools=[get_weather])
    result = await agent.run('::tool get_weather {"city": "Oslo"}')
    assert result.text.endswith("result: 18C, sunny in Oslo")
    assert result.steps == 2 and result.usage.input_tokens > 0


async def test_orchestrators_nest() -> None:
    echo = EchoProvider()
    trio = Trinity({"worker": SingleAgent(echo)}, routers.RegexRouter())
    search = AbMcts(trio, verifiers.RuleBased(min_chars=2), candidates=[echo], seed=5,
                    max_iterations=3)
    team = Conductor(echo, {"search": search})
    careful = SelfCaller(search, guards.RuleBased(min_chars=2), max_depth=1)
    result = await careful.run("::reply hello")
    assert result.text == "hello" and result.steps == 1
    assert result.usage.output_tokens > 0
    assert "search" in team.instructions(0)
