"""The README's client recipes, run as written: every Python block of "Using it from
clients" (the openai and anthropic SDKs, LangChain's ``ChatOpenAI`` and ``ChatAnthropic``,
the LiteLLM SDK) goes to a real ``dragoman serve`` started with no configuration at all,
as the README's first command does. Only the port changes (8080 -> a free one). The CLI
recipes (Codex, Claude Code) are covered by tests/test_real_clients.py."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway_proc import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parents[1]


def _recipes() -> dict[str, str]:
    """Bold title -> Python code, for each Python block of the README's client section."""
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Using it from clients\n")
    section = text[start:text.index("\n## ", start + 1)]
    found = re.findall(r"\*\*([^*]+)\*\*[^\n]*\n```python\n(.*?)\n```", section, re.S)
    return dict(found)


RECIPES = _recipes()


def test_the_readme_has_a_python_recipe_per_library() -> None:
    assert set(RECIPES) == {"OpenAI Python SDK", "Anthropic Python SDK", "LangChain",
                            "LangChain ChatAnthropic", "LiteLLM"}


@pytest.fixture(scope="module")
def bare_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``dragoman serve`` with no --config: the embedded defaults (the echo model, SQLite)."""
    tmp = tmp_path_factory.mktemp("bare")
    port = free_port()
    with open(tmp / "serve.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dragoman.cli", "serve", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
            env={**os.environ, "XDG_DATA_HOME": str(tmp / "xdg")})
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
            yield str(port)
        finally:
            stop_process(proc)


def _printing_last_value(code: str) -> str:
    """The recipe with ``print(repr(...))`` around each top-level expression statement, so
    the test sees what every call returned."""
    tree = ast.parse(code)
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.Expr):
            call = ast.Call(ast.Name("print", ast.Load()),
                            [ast.Call(ast.Name("repr", ast.Load()), [node.value], [])], [])
            tree.body[i] = ast.Expr(call)
    return ast.unparse(ast.fix_missing_locations(tree))


@pytest.mark.parametrize("title", sorted(RECIPES))
def test_a_readme_recipe_runs_as_written(bare_gateway: str, title: str,
                                         tmp_path: Path) -> None:
    code = RECIPES[title]
    assert "8080" in code
    script = _printing_last_value(code.replace("8080", bare_gateway))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path,
                       env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert r.returncode == 0, r.stderr[-3000:]
    answers = r.stdout.strip().splitlines()
    calls = sum(isinstance(n, ast.Expr) for n in ast.parse(code).body)
    assert len(answers) == calls
    reply = _echo_reply(bare_gateway)
    for answer in answers:  # every call returned the echo model's answer to "hi"
        assert repr(reply) in answer or f'"{reply}"' in answer, (reply, answer[:500])


def _echo_reply(port: str) -> str:
    """What the echo model answers to "hi", asked over plain HTTP."""
    r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                   json={"model": "dragoman/echo", "messages": [{"role": "user", "content": "hi"}]})
    r.raise_for_status()
    text = r.json()["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text
    return text
