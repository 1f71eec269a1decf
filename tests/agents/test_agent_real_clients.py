"""The real Codex CLI and Claude Code run tasks end to end against an agent model.

The agent (on the echo model) reads a file of ITS workspace — one the clients cannot see —
so the answer can only contain the secret if the agent's tool loop ran; the stream the
clients parse carries the ``dragoman.*`` events all along, and they must still finish.
Then the other way round: the agent hands the client a call of the CLIENT's own tool, the
client runs it, and the agent's loop continues with the result.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import API_KEY
from tests.test_real_clients import _binary, _run

pytestmark = pytest.mark.clients

TASK = '::tool read_file {"path": "notes.txt"}'
ANSWER = "result: the launch code is zebra-42"


def _codex(gateway: str, tmp: Path, prompt: str) -> subprocess.CompletedProcess[str]:
    codex_home = tmp / "codex-home"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(f"""
model = "echo-agent"
model_provider = "gw"
[model_providers.gw]
name = "dragoman"
base_url = "{gateway}/v1"
wire_api = "responses"
env_key = "GW_KEY"
request_max_retries = 0
stream_max_retries = 0
""")
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "CODEX_HOME": str(codex_home),
           "GW_KEY": API_KEY}
    return _run([_binary("codex"), "exec", "--skip-git-repo-check", "--ephemeral",
                 "--dangerously-bypass-approvals-and-sandbox", "-m", "echo-agent", prompt],
                env, tmp)


def _claude(gateway: str, tmp: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    home = tmp / "claude-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANTHROPIC_BASE_URL": gateway,
           "ANTHROPIC_API_KEY": API_KEY, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1"}
    return _run([_binary("claude"), "-p", prompt, "--model", "echo-agent", *extra], env, tmp)


def test_codex_runs_an_agent_task(agent_gateway: str, tmp_path: Path) -> None:
    r = _codex(agent_gateway, tmp_path, TASK)
    assert r.returncode == 0, r.stderr[-3000:]
    assert ANSWER in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_claude_code_runs_an_agent_task(agent_gateway: str, tmp_path: Path) -> None:
    r = _claude(agent_gateway, tmp_path, TASK)
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert ANSWER in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_codex_runs_its_own_tool_for_an_agent(agent_gateway: str, tmp_path: Path) -> None:
    r = _codex(agent_gateway, tmp_path, '::tool exec_command {"cmd":"echo tool-ran-$((6*7))"}')
    assert r.returncode == 0, r.stderr[-3000:]
    assert "tool-ran-42" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_claude_code_runs_its_own_tool_for_an_agent(agent_gateway: str, tmp_path: Path) -> None:
    r = _claude(agent_gateway, tmp_path, '::tool Bash {"command": "echo tool-ran-$((6*7))"}',
                "--allowedTools", "Bash")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert "tool-ran-42" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
