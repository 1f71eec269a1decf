"""The orchestrator kinds of ``agents:`` (the issue's config shape, exactly): what they
build, the start-up errors that name their path (bad references, cycles, bad settings),
and a real ``dragoman serve`` answering the official SDKs and the real Codex CLI with
every kind on a scripted upstream — including one agent used by another."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from dragoman import AbMcts, Conductor, SelfCaller, Trinity
from dragoman.agents.client import ToolCallResult, iter_events
from dragoman.config import ConfigError, build_gateway, parse_config
from dragoman.router.routed import RoutedProvider
from tests.cli_clients import claude, codex
from tests.conftest import API_KEY
from tests.fakes.scripted import ScriptedUpstream, last_user, system_text
from tests.gateway_proc import run_gateway

MODELS = [{"name": n, "provider": "echo"} for n in ("m", "judge")]


def agents_config(model: str = "m") -> list[dict[str, Any]]:
    """The issue's example, on ``model``."""
    return [
        {"name": "team", "kind": "conductor", "coordinator": model,
         "workers": {"code": model, "math": model}, "max_steps": 6, "max_fanout": 4,
         "worker_timeout": 120, "fail_fast": False,
         "verifier": {"kind": "rule_based", "min_chars": 1, "pattern": "QED"}},
        {"name": "trio", "kind": "trinity",
         "roles": {"thinker": model, "worker": model, "verifier": model},
         "router": "regex", "max_steps": 8},
        {"name": "careful", "kind": "self_caller", "inner": "team", "max_depth": 3,
         "min_confidence": 0.7,
         "guard": {"kind": "llm_judge", "model": "judge", "rubric": "Is it right?"}},
        {"name": "search", "kind": "ab_mcts", "model": model, "candidates": [model],
         "max_iterations": 16, "branching_factor": 3, "min_confidence": 0.95, "seed": 7,
         "verifier": {"kind": "llm_judge", "model": "judge"}},
    ]


def test_the_contract_shape_builds_every_kind() -> None:
    gw = build_gateway(parse_config({"models": MODELS, "agents": agents_config(),
                                     "server": {"agents_events": "tako"}}))
    assert gw.agents_events == "tako"
    team = gw.models.resolve("team").provider
    assert isinstance(team, Conductor) and sorted(team.workers) == ["code", "math"]
    assert isinstance(team.coordinator, RoutedProvider) and not team.owns_providers
    assert (team.max_steps, team.max_fanout, team.worker_timeout) == (6, 4, 120)
    assert isinstance(gw.models.resolve("trio").provider, Trinity)
    careful = gw.models.resolve("careful").provider
    assert isinstance(careful, SelfCaller) and careful.inner.name == "team"  # an agent
    search = gw.models.resolve("search").provider
    assert isinstance(search, AbMcts) and len(search.models) == 2 and search.seed == 7
    assert [d.name for d in gw.models.listed()] == ["m", "judge", "team", "trio", "careful",
                                                    "search"]


@pytest.mark.parametrize(("change", "message"), [
    ({"workers": {"code": "nope"}},
     "`$.agents[0].workers.code`: 'nope' is not a model (or agent) defined before"),
    ({"coordinator": "team"}, "`$.agents[0].coordinator`: 'team' is this agent itself "
                              "(a cycle)"),
    ({"coordinator": "careful"}, "`$.agents[0].coordinator`: 'careful' is defined after "
                                 "this agent, at `$.agents[2]`"),
    ({"verifier": {"kind": "llm_judge", "model": "ghost"}},
     "`$.agents[0].verifier.model`: 'ghost' is not a model"),
    ({"verifier": {"kind": "vibes"}}, "at `$.agents[0].verifier.kind`"),
    ({"verifier": {"kind": "rule_based", "pattern": "("}},
     "is not a valid regex: missing ), unterminated subpattern at position 0 - at "
     "`$.agents[0].verifier`"),
    ({"max_fanout": 0}, "max_fanout must be at least 1 - at `$.agents[0]`"),
    ({"halt": True}, "unknown field `halt` - at `$.agents[0]`"),
])
def test_bad_entries_name_their_path(change: dict[str, Any], message: str) -> None:
    agents = agents_config()
    agents[0] = {**agents[0], **change}
    with pytest.raises(ConfigError) as e:
        build_gateway(parse_config({"models": MODELS, "agents": agents}))
    assert message in str(e.value)


@pytest.mark.parametrize(("index", "change", "message"), [
    (2, {"inner": "careful"}, "`$.agents[2].inner`: 'careful' is this agent itself"),
    (3, {"candidates": ["m", "x"]}, "`$.agents[3].candidates[1]`: 'x' is not a model"),
    (1, {"router": {"kind": "llm", "model": "search"}},
     "`$.agents[1].router.model`: 'search' is defined after this agent"),
    (1, {"router": "onnx"}, "at `$.agents[1].router`"),
    (2, {"guard": None}, "at `$.agents[2].guard`"),
])
def test_bad_references_in_other_kinds(index: int, change: dict[str, Any],
                                       message: str) -> None:
    agents = agents_config()
    agents[index] = {**agents[index], **change}
    with pytest.raises(ConfigError) as e:
        build_gateway(parse_config({"models": MODELS, "agents": agents}))
    assert message in str(e.value)


def test_agents_events_setting_is_checked() -> None:
    with pytest.raises(ConfigError, match="agents_events"):
        parse_config({"server": {"agents_events": "tako2"}})


# --- a real server ---------------------------------------------------------------------------


def _coordinator(body: dict[str, Any]) -> str:
    text = last_user(body)
    if text.startswith("Worker results:"):
        return json.dumps({"halt": True, "final_answer": "TEAM: " + text.split("): ", 1)[1]})
    return json.dumps({"dispatch": [{"worker": "code", "task": "solve: " + text[-60:]}]})


def _model(body: dict[str, Any]) -> str:
    """One scripted model playing every part, by what it is asked."""
    system = system_text(body)
    if "coordinator of a team" in system:
        return _coordinator(body)
    if "You are the Thinker" in system:
        return "PLAN: add the numbers"
    if "You are the Worker" in system:
        return "WORK: the sum is 4"
    if "You are the Verifier" in system:
        return "VERDICT: ACCEPT"
    return f"CODE({last_user(body)}) QED"


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream({"up": _model, "judge-up": ["0.9\nfine"]}) as f:
        yield f


@pytest.fixture(scope="module")
def gateway(scripted: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[str]:
    config = {"server": {"api_keys": [API_KEY]},
              "models": [scripted.provider("up"), {**scripted.provider("judge-up"),
                                                   "name": "judge"}],
              "agents": agents_config("up")}
    with run_gateway(config, tmp_path_factory.mktemp("orch-gw")) as base:
        yield base


@pytest.mark.parametrize(("agent", "answer"), [
    ("team", "TEAM: CODE(solve: what is 2+2?) QED"),
    ("trio", "WORK: the sum is 4"),
    ("careful", "TEAM: CODE(solve: what is 2+2?) QED"),
    ("search", "CODE(what is 2+2?) QED"),
])
def test_every_kind_answers_the_sdks_alike(gateway: str, agent: str, answer: str) -> None:
    oai = openai.OpenAI(base_url=gateway + "/v1", api_key=API_KEY, max_retries=0, timeout=60)
    msgs: Any = [{"role": "user", "content": "what is 2+2?"}]
    plain = oai.chat.completions.create(model=agent, messages=msgs)
    chunks = list(oai.chat.completions.create(model=agent, messages=msgs, stream=True,
                                              stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert plain.choices[0].message.content == streamed == answer
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    usage = chunks[-1].usage
    assert usage is not None and plain.usage is not None
    assert usage.total_tokens == plain.usage.total_tokens > 15  # more than one inner call
    assert oai.responses.create(model=agent, input="what is 2+2?").output_text == answer
    ant = anthropic.Anthropic(base_url=gateway, api_key=API_KEY, max_retries=0, timeout=60)
    with ant.messages.stream(model=agent, max_tokens=500, messages=msgs) as s:
        assert s.get_final_text() == answer


@pytest.mark.clients
def test_codex_cli_runs_a_task_on_a_conductor(gateway: str, tmp_path: Path) -> None:
    r = codex(gateway, tmp_path, "Say hello to the team", model="team")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "TEAM: CODE(solve: " in r.stdout and "Say hello to the team) QED" in r.stdout, \
        r.stdout[-2000:] + r.stderr[-2000:]


@pytest.mark.clients
def test_claude_code_runs_a_task_on_a_trinity(gateway: str, tmp_path: Path) -> None:
    r = claude(gateway, tmp_path, "What is 2+2?", model="trio")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert "WORK: the sum is 4" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


# --- a Trinity's tools, written in YAML --------------------------------------------------------


def test_trinity_tools_are_set_in_yaml_and_run_through_serve(tmp_path: Path) -> None:
    """``tools:``/``workspace:`` as a single agent's: a built-in with options and an
    imported function; the Trinity's worker turn calls one, over a real ``dragoman
    serve`` (the echo model calls the tools its prompt names)."""
    (tmp_path / "notes.txt").write_text("hello from the workspace")
    config = {"server": {"api_keys": [API_KEY]}, "models": [MODELS[0]], "agents": [
        {"name": "trio", "kind": "trinity", "roles": {"worker": "m"}, "tool_steps": 3,
         "workspace": str(tmp_path),
         "tools": [{"read_file": {}}, {"python": "tests.agents.sample_tools:get_weather"}]}]}
    prompt = '::tool get_weather {"city": "Paris"}\n::tool read_file {"path": "notes.txt"}'
    with run_gateway(config, tmp_path) as base:
        oai = openai.OpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0,
                            timeout=60)
        msgs: Any = [{"role": "user", "content": prompt}]
        with oai.chat.completions.with_streaming_response.create(
                model="trio", messages=msgs, stream=True) as raw:
            events = list(iter_events(raw))
        plain = oai.chat.completions.create(model="trio", messages=msgs)
    results = {e.name: e for e in events if isinstance(e, ToolCallResult)}
    assert results["get_weather"].result == "18C, sunny in Paris"
    assert results["read_file"].result.rstrip().endswith("hello from the workspace")
    assert not any(r.is_error for r in results.values())
    assert "hello from the workspace" in (plain.choices[0].message.content or "")


@pytest.mark.parametrize(("tools", "message"), [
    (["no_such_tool"], "at `$.agents[0].tools[0]`"),
    ([{"python": "tests.agents.sample_tools:get_weather"},
      {"python": "tests.agents.sample_tools:get_weather"}], "at `$.agents[0].tools`"),
])
def test_bad_trinity_tools_name_their_path(tools: list[Any], message: str) -> None:
    agents = [{"name": "trio", "kind": "trinity", "roles": {"worker": "m"}, "tools": tools}]
    with pytest.raises(ConfigError) as e:
        build_gateway(parse_config({"models": MODELS, "agents": agents}))
    assert message in str(e.value)
