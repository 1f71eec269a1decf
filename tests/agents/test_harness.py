"""Harness agents: the real Claude Code and Codex CLI run inside the thread's sandbox as the
orchestrator, calling this gateway back for their model (the echo model, whose ``::tool``
directive makes the CLI run one of its own tools), driven by the openai and anthropic
SDKs. A second turn on the same thread resumes the CLI's session in the same workspace
and reads back the file the first turn wrote."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from dragoman.agents.client import ToolCallResult, ToolCallStart, iter_events
from dragoman.agents.harness.events import ClaudeCodeEvents, CodexEvents
from dragoman.config import ConfigError, build_gateway, parse_config
from dragoman.core import AgentToolCall, AgentToolResult, TextDelta
from tests.cli_clients import binary, codex
from tests.conftest import API_KEY
from tests.gateway_proc import run_gateway

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

SYSTEM = "You are the harness under test."


@pytest.fixture(scope="module")
def harness_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("harness")
    (tmp / "roots").mkdir()
    config = {
        "server": {"api_keys": [API_KEY]},
        "models": [{"name": "dragoman/echo", "provider": "echo"},
                   {"name": "claude-echo", "provider": "echo"}],
        "agents": [
            {"name": "cc", "kind": "harness", "harness": "claude_code", "model": "claude-echo",
             "harness_bin": binary("claude"), "workspace": str(tmp / "roots"),
             "system": SYSTEM},
            {"name": "cx", "kind": "harness", "harness": "codex", "model": "dragoman/echo",
             "harness_bin": binary("codex"), "workspace": str(tmp / "roots"),
             "client_tools": "ignore"},
            # for clients that always declare their own tools (the Codex CLI)
            {"name": "cc-open", "kind": "harness", "harness": "claude_code",
             "model": "claude-echo", "harness_bin": binary("claude"),
             "workspace": str(tmp / "roots"), "client_tools": "ignore"},
        ],
    }
    with run_gateway(config, tmp) as base:
        yield base, tmp / "roots"


def _oai(base: str, thread: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0, timeout=180,
                         default_headers={"x-dragoman-thread-key": thread})


def _streamed_chat(base: str, model: str, prompt: str, thread: str) -> tuple[str, list[Any]]:
    with _oai(base, thread) as client, client.chat.completions.with_streaming_response.create(
            model=model, stream=True, messages=[{"role": "user", "content": prompt}]) as raw:
        body = raw.read()
    text = "".join((c.get("delta") or {}).get("content") or ""
                   for line in body.decode().splitlines()
                   if line.startswith("data: {") and '"choices"' in line
                   for c in json.loads(line[6:])["choices"])
    return text, list(iter_events(body))


def test_claude_code_harness_writes_then_a_resumed_turn_reads_back(
        harness_gateway: tuple[str, Path]) -> None:
    base, root = harness_gateway
    text, events = _streamed_chat(
        base, "cc", '::tool Bash {"command": "echo harness-was-here > note.txt && echo written"}',
        "cc-thread")
    assert "result: written" in text
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert [s.name for s in starts] == ["Bash"] and "note.txt" in starts[0].args["command"]
    assert results[0].result == "written" and not results[0].is_error
    [note] = root.glob("*/*/files/note.txt")
    assert note.read_text() == "harness-was-here\n"
    session = (note.parent.parent / "harness-session").read_text()
    # turn two, from the anthropic SDK: the same thread, the CLI's session resumed
    with anthropic.Anthropic(base_url=base, api_key=API_KEY, max_retries=0, timeout=180,
                             default_headers={"x-dragoman-thread-key": "cc-thread"}) as ant:
        msg = ant.messages.create(model="cc", max_tokens=512, system="Answer briefly.",
                                  messages=[{"role": "user", "content":
                                             '::tool Bash {"command": "cat note.txt"}'}])
    answer = "".join(b.text for b in msg.content if b.type == "text")
    assert "result: harness-was-here" in answer
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert (note.parent.parent / "harness-session").read_text() == session
    transcripts = list(note.parent.glob(".claude/projects/*/*.jsonl"))
    assert any(session in t.name for t in transcripts)
    # it ran sandboxed: the file belongs to the workspace's uid, not root
    assert note.stat().st_uid >= 200_000


def test_codex_harness_through_the_responses_api(harness_gateway: tuple[str, Path]) -> None:
    base, root = harness_gateway
    with _oai(base, "cx-thread") as client:
        r = client.responses.create(
            model="cx", input='::tool exec_command {"cmd": "echo codex-wrote > c.txt; echo ok"}')
        assert "ok" in r.output_text
        assert r.usage is not None and r.usage.total_tokens > 0
        r2 = client.responses.create(model="cx",
                                     input='::tool exec_command {"cmd": "cat c.txt"}')
    assert "codex-wrote" in r2.output_text
    [written] = root.glob("*/*/files/c.txt")
    assert written.read_text() == "codex-wrote\n"


def test_a_codex_client_drives_a_claude_code_harness(harness_gateway: tuple[str, Path],
                                                     tmp_path: Path) -> None:
    base, root = harness_gateway
    first = codex(base, tmp_path, '::tool Bash {"command": "echo from-codex > cx.txt && '
                  'echo saved"}', model="cc-open", ephemeral=False)
    assert "result: saved" in first.stdout, first.stderr[-2000:]
    [written] = root.glob("*/*/files/cx.txt")
    assert written.read_text() == "from-codex\n"
    # `codex exec resume`: the same Codex session id, so the same thread and workspace
    second = codex(base, tmp_path, "resume", "--last", '::tool Bash {"command": "cat cx.txt"}',
                   model="cc-open", ephemeral=False)
    assert "result: from-codex" in second.stdout, second.stderr[-2000:]


def test_client_tools_are_refused_with_a_clear_error(
        harness_gateway: tuple[str, Path]) -> None:
    base, _ = harness_gateway
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {}}}}
    with _oai(base, "refused") as client, pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="cc", tools=[tool],  # type: ignore[list-item]
                                       messages=[{"role": "user", "content": "hi"}])
    assert "runs its own tools" in str(err.value)
    assert err.value.code == "client_tools_unsupported"


def test_a_missing_cli_is_a_start_up_error_naming_it(tmp_path: Path) -> None:
    cfg = parse_config({"server": {"api_keys": [API_KEY]},
                        "models": [{"name": "m", "provider": "echo"}],
                        "agents": [{"name": "cc", "kind": "harness", "harness": "claude_code",
                                    "model": "m", "harness_bin": str(tmp_path / "claude"),
                                    "workspace": str(tmp_path)}]})
    with pytest.raises(ConfigError, match=r"needs '.*/claude', which is not installed"):
        build_gateway(cfg)


# --- the translators, on the CLIs' own event shapes ---------------------------------------

def test_codex_events_translate() -> None:
    t = CodexEvents()
    out = []
    for e in [
        {"type": "thread.started", "thread_id": "th-1"},
        {"type": "item.completed", "item": {"id": "i0", "type": "error", "message": "warn"}},
        {"type": "item.started", "item": {"id": "i1", "type": "command_execution",
                                          "command": "ls", "status": "in_progress"}},
        {"type": "item.completed", "item": {"id": "i1", "type": "command_execution",
                                            "command": "ls", "aggregated_output": "boom\n",
                                            "exit_code": 2, "status": "failed"}},
        {"type": "item.completed", "item": {"id": "i2", "type": "agent_message", "text": "a"}},
        {"type": "item.completed", "item": {"id": "i3", "type": "agent_message", "text": "b"}},
        {"type": "turn.completed", "usage": {"input_tokens": 10, "cached_input_tokens": 4,
                                             "output_tokens": 3}},
    ]:
        out += t.feed(e)
    assert t.session_id == "th-1" and t.failure is None
    assert out == [AgentToolCall(id="i1", name="shell", args={"command": "ls"}),
                   AgentToolResult(id="i1", name="shell", result="boom\n", is_error=True),
                   TextDelta(text="a"), TextDelta(text="\n\n"), TextDelta(text="b")]
    assert (t.usage.input_tokens, t.usage.cached_tokens, t.usage.output_tokens) == (10, 4, 3)
    t.feed({"type": "turn.failed", "error": {"message": "upstream 500"}})
    assert t.failure == "upstream 500"


def test_claude_code_events_translate() -> None:
    t = ClaudeCodeEvents()
    out = []
    for e in [
        {"type": "system", "subtype": "init", "session_id": "s-1"},
        {"type": "assistant", "message": {"content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "tool_use", "id": "tu1", "name": "Read", "input": {"file_path": "x"}}]}},
        {"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "tu1", "is_error": True,
             "content": [{"type": "text", "text": "no such file"}]}]}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "done"}]}},
        {"type": "result", "is_error": False, "usage": {
            "input_tokens": 5, "cache_read_input_tokens": 7, "output_tokens": 2}},
    ]:
        out += t.feed(e)
    assert t.session_id == "s-1" and t.failure is None
    assert [type(e).__name__ for e in out] == ["ThinkingDelta", "AgentToolCall",
                                               "AgentToolResult", "TextDelta"]
    assert out[2] == AgentToolResult(id="tu1", name="Read", result="no such file",
                                     is_error=True)
    assert (t.usage.input_tokens, t.usage.cached_tokens, t.usage.output_tokens) == (12, 7, 2)
