"""Every config in ``examples/`` (and the first configuration example of the README and of
docs/configuration.md) passes ``dragoman config check``, run as the real command with the
environment variables the file names; the Ollama example also serves a request through a
fake Ollama."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml

from tests.cli_proc import dragoman
from tests.fakes.ollama import OLLAMA_MODEL, FakeOllama
from tests.fakes.upstream import TEXT
from tests.gateway_proc import run_gateway

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def _environment(text: str, tmp_path: Path) -> dict[str, str]:
    """A value for each variable the file uses without a default (a directory for those a
    check needs to exist: the agent's workspace)."""
    plausible = {"WORKSPACE": str(tmp_path),
                 "DSN": "postgresql://dragoman:test-password@127.0.0.1:5432/dragoman",
                 "REDIS_URL": "redis://:test-password@127.0.0.1:6379/0"}
    env = {}
    for name, default in _VARIABLE.findall(text):
        if not default:
            env[name] = next((v for end, v in plausible.items() if name.endswith(end)),
                             f"test-{name.lower()}")
    return env


def test_there_is_an_example_per_common_setup() -> None:
    assert {p.stem for p in EXAMPLES} >= {"openai-anthropic", "bedrock", "vertex", "ollama",
                                          "agent", "postgres-redis-cluster"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_passes_config_check(example: Path, tmp_path: Path) -> None:
    text = example.read_text()
    r = dragoman("config", "check", str(example), env=_environment(text, tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{example}: OK\n")
    for model in yaml.safe_load(text)["models"]:  # the explanation lists every model
        assert f"\n    {model['name']} -> " in r.stdout
    assert "test-" not in r.stdout  # keys and passwords are never printed


def test_a_missing_variable_fails_the_check(tmp_path: Path) -> None:
    example = ROOT / "examples" / "openai-anthropic.yaml"
    env = _environment(example.read_text(), tmp_path)
    del env["OPENAI_API_KEY"]
    r = dragoman("config", "check", str(example), env=env, unset=("OPENAI_API_KEY",))
    assert r.returncode == 2 and r.stdout == ""
    line = example.read_text().splitlines().index("    api_key: ${OPENAI_API_KEY}") + 1
    assert r.stderr == (f"dragoman: {example}:{line}: environment variable OPENAI_API_KEY "
                        "is not set (used at $.models[0].api_key)\n")


def _first_config(page: str, heading: str) -> str:
    """The first YAML block after ``heading`` in ``page`` (a Markdown file)."""
    text = (ROOT / page).read_text()
    section = text[text.index(heading):]
    start = section.index("```yaml\n") + 8
    return section[start:section.index("\n```", start)]


@pytest.mark.parametrize(("page", "heading"), [("README.md", "\n## Configuration\n"),
                                               ("docs/configuration.md", "# Configuration\n")])
def test_the_first_config_is_copy_pasteable(tmp_path: Path, page: str, heading: str) -> None:
    """The README's short first config and the docs' full one both work for real keys."""
    text = _first_config(page, heading)
    assert "127.0.0.1:9000" not in text  # no placeholder upstream: real vendors' defaults
    f = tmp_path / "dragoman.yaml"
    f.write_text(text)
    r = dragoman("config", "check", str(f), env=_environment(text, tmp_path))
    assert r.returncode == 0, r.stderr
    assert "my-model -> openai gpt-4o-mini" in r.stdout
    assert "claude-* -> anthropic" in r.stdout


def test_the_ollama_example_serves_through_ollama(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "examples" / "ollama.yaml").read_text())
    config["models"][0]["model"] = OLLAMA_MODEL  # the one model the fake has pulled
    with FakeOllama() as fake, \
            run_gateway(config, tmp_path, env={"OLLAMA_HOST": fake.url}) as base:
        r = httpx.post(f"{base}/v1/chat/completions", timeout=30,
                       json={"model": "llama", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == TEXT
        sent = fake.requests[-1]
        assert sent.path == "/api/chat" and sent.body["model"] == OLLAMA_MODEL
        assert sent.body["keep_alive"] == "10m" and sent.body["options"]["num_ctx"] == 8192
