"""The real Codex CLI and Claude Code run tasks end to end against an agent model.

The agent (on the echo model) reads a file of ITS workspace — one the clients cannot see —
so the answer can only contain the secret if the agent's tool loop ran; the stream the
clients parse carries the ``dragoman.*`` events all along, and they must still finish.
Then the other way round: the agent hands the client a call of the CLIENT's own tool, the
client runs it, and the agent's loop continues with the result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_clients import claude, codex

pytestmark = pytest.mark.clients

TASK = '::tool read_file {"path": "notes.txt"}'
ANSWER = "result: the launch code is zebra-42"


def test_codex_runs_an_agent_task(agent_gateway: str, tmp_path: Path) -> None:
    r = codex(agent_gateway, tmp_path, TASK, model="echo-agent")
    assert r.returncode == 0, r.stderr[-3000:]
    assert ANSWER in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_claude_code_runs_an_agent_task(agent_gateway: str, tmp_path: Path) -> None:
    r = claude(agent_gateway, tmp_path, TASK, model="echo-agent")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert ANSWER in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_codex_runs_its_own_tool_for_an_agent(agent_gateway: str, tmp_path: Path) -> None:
    r = codex(agent_gateway, tmp_path, '::tool exec_command {"cmd":"echo tool-ran-$((6*7))"}',
              model="echo-agent")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "tool-ran-42" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_claude_code_runs_its_own_tool_for_an_agent(agent_gateway: str, tmp_path: Path) -> None:
    r = claude(agent_gateway, tmp_path, '::tool Bash {"command": "echo tool-ran-$((6*7))"}',
                "--allowedTools", "Bash", model="echo-agent")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert "tool-ran-42" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
