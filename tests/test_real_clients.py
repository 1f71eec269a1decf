"""The real Codex CLI and Claude Code, installed from npm by the test setup (.ci/run),
complete a text turn and a tool round trip against dragoman's echo model.

The tool round trip computes a value in the shell (6*7), so the final answer can only
contain it if the client really ran the tool and sent its result back through dragoman.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_clients import claude, codex

pytestmark = pytest.mark.clients


def test_codex_text_turn(echo_gateway: str, tmp_path: Path) -> None:
    r = codex(echo_gateway, tmp_path, "::reply PONG from dragoman")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "PONG from dragoman" in r.stdout


def test_codex_tool_round_trip(echo_gateway: str, tmp_path: Path) -> None:
    r = codex(echo_gateway, tmp_path,
               '::tool exec_command {"cmd":"echo tool-ran-$((6*7))"}')
    assert r.returncode == 0, r.stderr[-3000:]
    assert "tool-ran-42" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_claude_code_text_turn(echo_gateway: str, tmp_path: Path) -> None:
    r = claude(echo_gateway, tmp_path, "::reply PONG from dragoman")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert "PONG from dragoman" in r.stdout


def test_claude_code_tool_round_trip(echo_gateway: str, tmp_path: Path) -> None:
    r = claude(echo_gateway, tmp_path, '::tool Bash {"command":"echo tool-ran-$((6*7))"}',
                "--allowedTools", "Bash")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert "tool-ran-42" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
