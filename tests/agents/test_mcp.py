"""MCP servers as agent tool sources: a real stdio server (``mcp_notes_server.py``, written
with the SDK's MCPServer) started in each thread's sandbox, and a real streamable-HTTP
server behind a bearer token, driven through ``dragoman serve`` by the openai SDK."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from dragoman.agents.client import ToolCallResult, ToolCallStart, iter_events
from dragoman.agents.mcp import McpHub, McpServerSpec, McpTool
from dragoman.agents.sandbox import SandboxPolicy, probe
from dragoman.agents.tools import ToolError, ToolOutput
from dragoman.agents.workspaces import ThreadWorkspaces
from tests.cli_clients import codex
from tests.conftest import API_KEY
from tests.gateway_proc import free_port, run_gateway

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

SERVER = Path(__file__).with_name("mcp_notes_server.py")
#: What the sandboxed server needs to see: the venv (its packages: mcp) and the interpreter.
VENV = [str(Path(sys.executable).parent.parent), sys.base_prefix]
TOKEN = "mcp-test-token-91"


def notes_spec(**kw: Any) -> dict[str, Any]:
    return {"name": "notes", "kind": "stdio", "command": sys.executable,
            "args": ["mcp_notes_server.py"], **kw}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What every thread's workspace starts with: the stdio server's script."""
    t = tmp_path_factory.mktemp("mcp-template")
    shutil.copy(SERVER, t / SERVER.name)
    return t


@pytest.fixture(scope="module")
def http_mcp() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), "http", str(port), TOKEN],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # up when it answers (401: no token)
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                assert httpx.get(url + "/mcp", timeout=1).status_code == 401
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url + "/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def mcp_gateway(tmp_path_factory: pytest.TempPathFactory, template: Path,
                http_mcp: str) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("mcp-gw")
    (tmp / "roots").mkdir()
    config = {
        "server": {"api_keys": [API_KEY]},
        "models": [{"name": "dragoman/echo", "provider": "echo"}],
        "agents": [{
            "name": "notes-agent", "model": "dragoman/echo", "max_steps": 3,
            "workspace": str(tmp / "roots"), "workspace_template": str(template),
            "sandbox_paths": VENV, "tools": [{"bash": {"timeout": 10}}],
            "mcp_servers": [notes_spec(timeout=3),
                            {"name": "search", "kind": "http", "url": http_mcp,
                             "headers": {"Authorization": "Bearer ${MCP_TEST_TOKEN}"}}]}],
    }
    with run_gateway(config, tmp, env={"MCP_TEST_TOKEN": TOKEN}) as base:
        yield base


def turn(base: str, tool: str, args: dict[str, Any], thread: str) -> tuple[str, list[Any]]:
    """One streamed turn through the openai SDK: the answer, and the dragoman.* events."""
    with openai.OpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0, timeout=60,
                       default_headers={"x-dragoman-thread-key": thread}) as client, \
            client.chat.completions.with_streaming_response.create(
                model="notes-agent", stream=True,
                messages=[{"role": "user", "content": f"::tool {tool} {json.dumps(args)}"}],
            ) as raw:
        body = raw.read()
    events = list(iter_events(body))
    text = ""
    for line in body.decode().splitlines():
        if line.startswith("data: {") and '"choices"' in line:
            for c in json.loads(line[6:])["choices"]:
                text += (c.get("delta") or {}).get("content") or ""
    return text, events


def test_stdio_server_runs_per_thread_in_the_sandbox(mcp_gateway: str) -> None:
    text, events = turn(mcp_gateway, "add_note", {"text": "buy milk"}, "mcp-1")
    assert "saved note 'buy milk'" in text
    # the model saw the tool under its own name; the events name it so
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    results = [e for e in events if isinstance(e, ToolCallResult)]
    assert [s.name for s in starts] == ["add_note"] and starts[0].args == {"text": "buy milk"}
    assert results[0].name == "add_note" and not results[0].is_error
    # the server's cwd is the thread's workspace, inside the sandbox
    where1, _ = turn(mcp_gateway, "where", {}, "mcp-1")
    assert "cwd=/workspace" in where1 and "home=/workspace" in where1
    # the file it wrote is in the workspace: bash (same thread) reads it
    assert "buy milk" in turn(mcp_gateway, "bash", {"command": "cat notes.txt"}, "mcp-1")[0]
    # one process per thread, reused across turns
    where2, _ = turn(mcp_gateway, "where", {}, "mcp-1")
    assert where1.split("pid=")[1].split()[0] == where2.split("pid=")[1].split()[0]
    # another thread: its own server, its own (empty) workspace
    other, _ = turn(mcp_gateway, "notes__list_notes", {}, "mcp-2")
    assert "notes: (none)" in other


def test_colliding_names_are_namespaced_and_http_servers_get_their_headers(
        mcp_gateway: str) -> None:
    text, events = turn(mcp_gateway, "notes__list_notes", {}, "mcp-3")
    assert "notes: (none)" in text
    assert [e.name for e in events if isinstance(e, ToolCallStart)] == ["notes__list_notes"]
    text, _ = turn(mcp_gateway, "search__list_notes", {}, "mcp-3")
    assert "remote notes: none" in text
    text, _ = turn(mcp_gateway, "search", {"query": "bubblewrap"}, "mcp-3")  # unique: as is
    assert "3 results for 'bubblewrap'" in text
    text, _ = turn(mcp_gateway, "list_notes", {}, "mcp-3")
    assert "unknown tool 'list_notes'" in text


def test_errors_and_timeouts_are_tool_errors(mcp_gateway: str) -> None:
    text, events = turn(mcp_gateway, "broken", {}, "mcp-4")
    assert "error" in text and "the notes are on fire" in text
    assert [e.is_error for e in events if isinstance(e, ToolCallResult)] == [True]
    text, _ = turn(mcp_gateway, "slow", {}, "mcp-4")
    assert "MCP tool 'slow' of server 'notes' timed out after 3 s" in text
    text, _ = turn(mcp_gateway, "add_note", {"text": "still works"}, "mcp-4")
    assert "saved note 'still works'" in text


# --- the hub in-process: result mapping and tools/list_changed --------------------------

@contextlib.asynccontextmanager
async def _hub(tmp_path: Path, template: Path) -> AsyncIterator[tuple[McpHub, Any]]:
    (tmp_path / "roots").mkdir()
    spaces = ThreadWorkspaces(tmp_path / "roots", template=template)
    hub = McpHub([McpServerSpec(**notes_spec(timeout=5))],
                 SandboxPolicy(probe(), ro_paths=tuple(VENV)))
    try:
        async with spaces.open("tenant", "thread") as ws:
            yield hub, ws
    finally:
        await hub.aclose()


async def _tools(hub: McpHub, ws: Any) -> dict[str, McpTool]:
    async with contextlib.AsyncExitStack() as stack:
        return {t.name: t for t in await hub.tools("tenant", "thread", ws, set(), stack)}


async def test_results_map_text_images_structured_content_and_errors(
        tmp_path: Path, template: Path) -> None:
    async with _hub(tmp_path, template) as (hub, ws):
        tools = await _tools(hub, ws)
        assert {"add_note", "list_notes", "pixel", "forecast", "broken"} <= set(tools)
        assert tools["add_note"].parameters["properties"]["text"]["type"] == "string"
        out = await tools["pixel"].run({})
        assert isinstance(out, ToolOutput) and out.images[0].mime == "image/png"
        assert out.images[0].data and out.images[0].data.startswith("iVBOR")
        forecast = await tools["forecast"].run({"city": "Oslo"})
        assert isinstance(forecast, str)
        assert json.loads(forecast) == {"city": "Oslo", "temp_c": 18, "sky": "sunny"}
        with pytest.raises(ToolError, match="the notes are on fire"):
            await tools["broken"].run({})


async def test_tool_list_changed_refreshes_the_tools(tmp_path: Path, template: Path) -> None:
    async with _hub(tmp_path, template) as (hub, ws):
        before = await _tools(hub, ws)
        assert "secret_door" not in before
        assert await before["unlock"].run({}) == "unlocked"
        after = await _tools(hub, ws)
        assert "secret_door" in after
        assert await after["secret_door"].run({}) == "you found the secret door"
        # the same server process served both listings
        assert after["where"].conn is before["where"].conn


def test_codex_cli_drives_an_agent_with_mcp_tools(mcp_gateway: str, tmp_path: Path) -> None:
    done = codex(mcp_gateway, tmp_path, '::tool add_note {"text": "from codex"}',
                 model="notes-agent")
    assert "saved note 'from codex'" in done.stdout, done.stderr[-2000:]
    done = codex(mcp_gateway, tmp_path, '::tool search {"query": "sandboxes"}',
                 model="notes-agent")
    assert "3 results for 'sandboxes'" in done.stdout, done.stderr[-2000:]
