"""How each coding CLI is started as a harness: its command line and environment, with its
model provider pointed back at this gateway, and its session resumed when the thread has
one.

Both run without their own approval prompts or sandboxes: the harness runs inside the
thread's sandbox (``dragoman.agents.sandbox``), which is the boundary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from .events import ClaudeCodeEvents, CodexEvents, Translator

HarnessKind = Literal["codex", "claude_code"]

#: The environment variable carrying the harness's key to this gateway.
KEY_ENV = "DRAGOMAN_HARNESS_KEY"


@dataclass(frozen=True, slots=True)
class Turn:
    """What one harness run needs: ``url`` is the gateway's base URL (no /v1)."""

    binary: str
    prompt: str
    model: str
    url: str
    system: str | None
    session: str | None


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


class Codex:
    name = "codex"
    binary = "codex"
    #: Directories below the workspace the CLI expects to exist.
    dirs = (".codex",)

    def argv(self, t: Turn) -> list[str]:
        provider = ("{name=\"dragoman\", base_url=" + _toml(t.url + "/v1")
                    + f", wire_api=\"responses\", env_key=\"{KEY_ENV}\", "
                    "request_max_retries=0, stream_max_retries=0}")
        out = [t.binary, "exec", "--json", "--skip-git-repo-check",
               "--dangerously-bypass-approvals-and-sandbox", "-m", t.model,
               "-c", 'model_provider="dragoman"', "-c", f"model_providers.dragoman={provider}"]
        if t.system:
            out += ["-c", f"developer_instructions={_toml(t.system)}"]
        if t.session:
            out += ["resume", t.session]
        return [*out, t.prompt]

    def env(self, home: str, key: str, url: str) -> dict[str, str]:
        return {"CODEX_HOME": f"{home}/.codex", KEY_ENV: key}

    def translator(self) -> Translator:
        return CodexEvents()


class ClaudeCode:
    name = "claude_code"
    binary = "claude"
    dirs: tuple[str, ...] = ()

    def argv(self, t: Turn) -> list[str]:
        out = [t.binary, "-p", t.prompt, "--output-format", "stream-json", "--verbose",
               "--model", t.model, "--dangerously-skip-permissions"]
        if t.system:
            out += ["--append-system-prompt", t.system]
        if t.session:
            out += ["--resume", t.session]
        return out

    def env(self, home: str, key: str, url: str) -> dict[str, str]:
        return {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": key, KEY_ENV: key,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
                "DISABLE_AUTOUPDATER": "1",
                # it refuses to skip permissions as root unless told it is sandboxed
                "IS_SANDBOX": "1"}

    def translator(self) -> Translator:
        return ClaudeCodeEvents()


CLIS: dict[str, Codex | ClaudeCode] = {"codex": Codex(), "claude_code": ClaudeCode()}
