"""One ``dragoman serve`` process with agents configured on the echo model and on the three
fake vendor upstreams, for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import API_KEY
from tests.cross_dialect.clients import UPSTREAM_MODEL
from tests.fakes.scripted import ScriptedUpstream
from tests.fakes.upstream import ANTHROPIC_KEY, OPENAI_KEY, FakeUpstream
from tests.gateway_proc import run_gateway

ROOT = Path(__file__).resolve().parents[2]
TOOLS = "tests.agents.sample_tools"
SECRET_NOTE = "the launch code is zebra-42"
AGENT_SYSTEM = "You are dragoman's test agent."


def _python(name: str) -> dict[str, str]:
    return {"python": f"{TOOLS}:{name}"}


def agent_config(fake: FakeUpstream, workspace: Path) -> dict[str, Any]:
    """``workspace``: the template every thread's workspace starts as a copy of."""
    fake_models = [
        {"name": "chat-up", "provider": "openai", "model": UPSTREAM_MODEL["chat-up"],
         "base_url": fake.url + "/v1", "api_key": OPENAI_KEY},
        {"name": "resp-up", "provider": "openai_responses", "model": UPSTREAM_MODEL["resp-up"],
         "base_url": fake.url + "/v1", "api_key": OPENAI_KEY},
        {"name": "claude-up", "provider": "anthropic", "model": UPSTREAM_MODEL["claude-up"],
         "base_url": fake.url, "api_key": ANTHROPIC_KEY},
    ]
    weather_tools = [_python("get_weather"), _python("get_time")]
    return {
        "server": {"api_keys": [API_KEY]},
        "models": [{"name": "dragoman/echo", "provider": "echo"},
                   {"name": "claude-*", "provider": "echo"}, *fake_models],
        "agents": [
            {"name": "echo-agent", "kind": "single", "model": "dragoman/echo",
             "system": AGENT_SYSTEM, "max_steps": 4, "workspace": str(workspace.parent / "roots"),
             "workspace_template": str(workspace),
             "tools": ["read_file", "list_dir", {"bash": {"timeout": 5}},
                       *weather_tools, _python("explode")]},
            {"name": "one-step-agent", "model": "dragoman/echo", "max_steps": 1,
             "tools": weather_tools},
            *({"name": f"agent-{m['name']}", "model": m["name"], "tools": weather_tools,
               "system": AGENT_SYSTEM} for m in fake_models),
        ],
    }


@pytest.fixture(scope="session")
def agent_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="session")
def agent_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("agent-ws")
    (ws / "notes.txt").write_text(SECRET_NOTE + "\n")
    (ws.parent / "roots").mkdir()
    return ws


@pytest.fixture(scope="session")
def agent_gateway(agent_upstream: FakeUpstream, agent_workspace: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = agent_config(agent_upstream, agent_workspace)
    with run_gateway(config, tmp_path_factory.mktemp("agent-gw"),
                     env={"PYTHONPATH": str(ROOT)}) as base:
        yield base


@pytest.fixture(scope="session")
def aoai(agent_gateway: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=agent_gateway + "/v1", api_key=API_KEY, max_retries=0,
                           timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="session")
def aant(agent_gateway: str) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=agent_gateway, api_key=API_KEY, max_retries=0,
                                 timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="module")
def fake() -> Iterator[ScriptedUpstream]:
    """A scripted upstream (per-model scripts) for the orchestrator tests of one module."""
    with ScriptedUpstream() as f:
        yield f
