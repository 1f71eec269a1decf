"""The ``agents:`` config section: what it builds and the errors it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dragoman.agents import SingleAgent
from dragoman.config import ConfigError, build_gateway, parse_config
from dragoman.router.routed import RoutedProvider

ECHO = {"name": "m", "provider": "echo"}


def build(agents: list[dict[str, Any]], models: list[dict[str, Any]] | None = None) -> Any:
    return build_gateway(parse_config({"models": models or [ECHO], "agents": agents}))


def test_agents_become_deployments(tmp_path: Path) -> None:
    gw = build([
        {"name": "coder", "model": "m", "system": "Be careful.", "max_steps": 7,
         "workspace": str(tmp_path),
         "tools": ["read_file", "write_file", "edit_file", "list_dir", "glob", "grep",
                   {"bash": {"timeout": 5, "pass_env": ["HOME"]}},
                   {"web_fetch": {"allow_hosts": ["wiki.internal"]}},
                   {"python": "tests.agents.sample_tools:get_weather"}]},
        {"name": "boss", "model": "coder", "tools": []},
    ])
    coder = gw.models.resolve("coder")
    assert isinstance(coder.provider, SingleAgent)
    assert coder.owned_by == "dragoman-agent"
    agent = coder.provider
    assert agent.system == "Be careful." and agent.max_steps == 7
    # workspace tools are made per thread (its own workspace), the rest are shared
    assert agent.toolbox is not None
    assert agent.toolbox.names() == ["read_file", "write_file", "edit_file", "list_dir", "glob",
                                     "grep", "bash", "web_fetch", "get_weather"]
    assert [t.name for t in agent.tools] == ["web_fetch", "get_weather"]
    # the agent calls its model through the router (retries, fallbacks, breakers)
    assert isinstance(agent.provider, RoutedProvider) and agent.provider.name == "m"
    assert not agent.owns_provider  # the model's own deployment closes it
    boss = gw.models.resolve("boss").provider
    assert isinstance(boss, SingleAgent) and isinstance(boss.provider, RoutedProvider) \
        and boss.provider.name == "coder"
    assert [d.name for d in gw.models.listed()] == ["m", "coder", "boss"]


@pytest.mark.parametrize(("agents", "message"), [
    ([{"name": "a", "model": "nope"}],
     "`$.agents[0].model`: 'nope' is not a model (or agent) defined before this agent"),
    ([{"name": "m", "model": "m"}], "`$.agents[0].name`: 'm' is already a model or agent name"),
    ([{"name": "a", "model": "m", "kind": "swarm"}], "at `$.agents[0].kind`"),
    ([{"name": "a", "model": "m", "toolz": []}], "unknown field `toolz` - at `$.agents[0]`"),
    ([{"name": "a", "model": "m", "tools": ["bsh"]}],
     "unknown built-in tool 'bsh' (known: read_file, write_file"),
    ([{"name": "a", "model": "m", "tools": ["read_file"]}],
     "tool 'read_file' needs a `workspace` directory - at `$.agents[0].tools[0]`"),
    ([{"name": "a", "model": "m", "workspace": "/no/such/dir", "tools": []}],
     "workspace '/no/such/dir' is not a directory - at `$.agents[0].workspace`"),
    ([{"name": "a", "model": "m", "tools": [{"web_fetch": {"timout": 1}}]}],
     "options of tool 'web_fetch': Object contains unknown field `timout`"),
    ([{"name": "a", "model": "m", "tools": [{"python": "tests.agents.sample_tools:nope"}]}],
     "cannot import python tool 'tests.agents.sample_tools:nope'"),
    ([{"name": "a", "model": "m", "tools": [{"python": "no_colon"}]}],
     "must be written 'package.module:name' - at `$.agents[0].tools[0]`"),
    ([{"name": "a", "model": "m", "tools": [{"python": "tests.agents.sample_tools:get_time"},
                                            {"python": "tests.agents.sample_tools:get_time"}]}],
     "two tools are named 'get_time' - at `$.agents[0].tools`"),
    ([{"name": "a", "model": "m", "max_steps": 0}], "max_steps must be at least 1"),
    ([{"name": "a", "model": "m", "tools": [{"bash": {}, "grep": {}}]}],
     "a tool entry is a name or a one-key mapping"),
])
def test_agent_config_errors_name_their_place(agents: list[dict[str, Any]],
                                              message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(agents)
    assert message in str(info.value)


def test_agents_may_run_on_the_default_echo_model() -> None:
    gw = build_gateway(parse_config({"agents": [{"name": "a", "model": "dragoman/echo"}]}))
    assert isinstance(gw.models.resolve("a").provider, SingleAgent)
