"""The ``agents:`` section of the config, and how an entry becomes an orchestrator.

```yaml
agents:
  - name: coder                 # the model name clients send
    kind: single                # orchestrator kind (single: one model, a tool loop)
    model: claude               # a name from `models:` (or an agent defined above)
    system: You are a careful coding agent.
    max_steps: 20
    workspace: /srv/agent-work  # root: each tenant+thread gets its own directory below it
    sandbox: bwrap              # default; `none` runs bash & MCP servers unsandboxed (warned)
    mcp_servers:                # tool sources, see dragoman.agents.mcp
      - {name: notes, kind: stdio, command: python3, args: [notes_server.py]}
    tools:
      - read_file
      - edit_file
      - bash: {timeout: 60}     # a built-in with options
      - python: mypkg.tools:get_weather   # a function or Tool object, by import path
```
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
from typing import Any, Literal, Protocol

import msgspec

from ..providers.base import LlmProvider
from .builtin import Builtin, BuiltinError, build_builtin, builtin_options
from .egress import guard_private_ranges
from .harness import CLIS, HarnessAgent, HarnessKind
from .mcp import McpHub, McpServerSpec, check_specs
from .sandbox import SandboxError, SandboxKind, SandboxLimits, SandboxPolicy, make_sandbox
from .single import SingleAgent
from .toolbox import ThreadToolbox
from .tools import Tool
from .turns import TurnStore
from .warm_sandbox import WarmPool
from .workspace import Workspace
from .workspaces import ThreadWorkspaces, WorkspaceQuota, default_workspace_root

log = logging.getLogger("dragoman.agents")


class AgentSpecError(ValueError):
    """A bad agent entry. ``where`` is the path below the entry (``.tools[2]``)."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class AgentSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="kind",
                tag="single"):
    name: str
    model: str
    system: str | None = None
    max_steps: int = 10
    workspace: str | None = None
    tools: list[str | dict[str, Any]] = msgspec.field(default_factory=list)
    parallel_tool_calls: bool = True
    tool_timeout: float | None = 600.0
    # Per-thread workspaces and their sandbox (docs/workspaces.md).
    sandbox: SandboxKind | None = None
    network: bool = False
    sandbox_paths: list[str] = msgspec.field(default_factory=list)
    limits: SandboxLimits = msgspec.field(default_factory=SandboxLimits)
    sandbox_idle: float = 300.0
    """Seconds a thread's warm sandbox is kept without a command."""
    quota: WorkspaceQuota = msgspec.field(default_factory=WorkspaceQuota)
    workspace_template: str | None = None
    mcp_servers: list[McpServerSpec] = msgspec.field(default_factory=list)


def _import(target: str) -> Any:
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise AgentSpecError(f"python tool {target!r} must be written 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise AgentSpecError(f"cannot import python tool {target!r}: {e}") from None
    return obj


class ToolEntries(Protocol):
    """An entry that lists tools: ``kind: single`` and ``kind: trinity``."""

    @property
    def workspace(self) -> str | None: ...

    @property
    def tools(self) -> list[str | dict[str, Any]]: ...


def _tool_entries(spec: ToolEntries) -> tuple[list[Any], list[tuple[str, Builtin, Any]]]:
    """The spec's tool entries → (tools every thread shares: imported functions or Tool
    objects, built-ins without a workspace; built-ins made per workspace, validated)."""
    shared: list[Any] = []
    per_workspace: list[tuple[str, Builtin, Any]] = []
    for i, entry in enumerate(spec.tools):
        where = f".tools[{i}]"
        if isinstance(entry, str):
            name, options = entry, None
        elif len(entry) == 1:
            name, options = next(iter(entry.items()))
        else:
            raise AgentSpecError("a tool entry is a name or a one-key mapping "
                                 "({name: options} or {python: 'module:name'})", where)
        try:
            if name == "python":
                if not isinstance(options, str):
                    raise AgentSpecError("`python` takes 'package.module:name'")
                obj = _import(options)
                if not (isinstance(obj, Tool) or callable(obj)):
                    raise AgentSpecError(f"{options!r} is neither a Tool nor a function")
                shared.append(obj)
            else:
                if options is not None and not isinstance(options, dict):
                    raise AgentSpecError(f"the options of tool {name!r} must be a mapping")
                builtin, opts = builtin_options(name, options)
                if not builtin.needs_workspace:
                    shared.append(build_builtin(name, options, None))
                elif spec.workspace is None:
                    raise AgentSpecError(f"tool {name!r} needs a `workspace` directory")
                else:
                    per_workspace.append((name, builtin, opts))
        except (BuiltinError, TypeError) as e:
            raise AgentSpecError(str(e), where) from None
        except AgentSpecError as e:
            raise AgentSpecError(e.message, where) from None
    return shared, per_workspace


def build_tools(spec: ToolEntries) -> list[Any]:
    """The tools of an entry whose built-ins share one ``workspace:`` directory (a
    Trinity's; a single agent's workspace is per thread, ``build_toolbox``). Tools that
    run processes are refused here: only a per-thread workspace has a sandbox."""
    shared, per_workspace = _tool_entries(spec)
    if not per_workspace:
        return shared
    assert spec.workspace is not None  # (_tool_entries refuses them without one)
    try:
        workspace = Workspace(spec.workspace)
    except ValueError as e:
        raise AgentSpecError(str(e), ".workspace") from None
    for name, builtin, opts in per_workspace:
        if name == "bash":
            raise AgentSpecError("`bash` runs only in a single agent's per-thread sandbox; "
                                 "give this entry a single agent with bash as a model",
                                 ".tools")
        shared.append(builtin.make(workspace, opts, None))
    return shared


def _policy(spec: AgentSpec,
            per_workspace: list[tuple[str, Builtin, Any]]) -> SandboxPolicy | None:
    """The sandbox of an agent whose tools start processes (bash, stdio MCP servers)."""
    starts_processes = any(b.starts_processes for _, b, _ in per_workspace) \
        or any(m.kind == "stdio" for m in spec.mcp_servers)
    if not starts_processes:
        return None
    try:
        sandbox = make_sandbox(spec.sandbox)
    except SandboxError as e:
        raise AgentSpecError(str(e), ".sandbox") from None
    if sandbox.kind == "none":
        log.warning("agent %r runs bash and MCP servers WITHOUT a sandbox (`sandbox: none`): "
                    "they can read everything the server's user can", spec.name)
    elif spec.network:
        guard_private_ranges(spec.name)
    return SandboxPolicy(sandbox, network=spec.network, ro_paths=tuple(spec.sandbox_paths),
                         limits=spec.limits, warm=WarmPool(spec.sandbox_idle))


def build_toolbox(spec: AgentSpec, ttl: float | None = None) -> ThreadToolbox:
    """The per-thread tools of an agent with a ``workspace:`` root; ``ttl``: the sessions
    TTL, after which an unused thread's workspace is removed."""
    assert spec.workspace is not None
    problem = check_specs(spec.mcp_servers)
    if problem is not None:
        raise AgentSpecError(problem, ".mcp_servers")
    if spec.mcp_servers and importlib.util.find_spec("mcp") is None:
        raise AgentSpecError("`mcp_servers` need the MCP SDK: pip install 'dragoman[mcp]'",
                             ".mcp_servers")
    shared, per_workspace = _tool_entries(spec)
    policy = _policy(spec, per_workspace)
    try:
        workspaces = ThreadWorkspaces(spec.workspace, quota=spec.quota,
                                      template=spec.workspace_template, ttl=ttl)
    except ValueError as e:
        raise AgentSpecError(str(e), ".workspace") from None
    mcp = McpHub(spec.mcp_servers, policy) if spec.mcp_servers else None
    return ThreadToolbox(workspaces, shared=shared, per_workspace=per_workspace,
                         policy=policy, mcp=mcp, timeout=spec.tool_timeout)


def build_agent(spec: AgentSpec, provider: LlmProvider, *, owns_provider: bool = False,
                turns: TurnStore | None = None, ttl: float | None = None) -> SingleAgent:
    """One orchestrator from its config entry, running on ``provider``; ``turns`` keeps
    the hidden part of turns that end with client tool calls (in memory when None);
    ``ttl``: the sessions TTL (thread workspaces expire with it)."""
    if spec.max_steps < 1:
        raise AgentSpecError("max_steps must be at least 1", ".max_steps")
    if spec.mcp_servers and spec.workspace is None:
        raise AgentSpecError("`mcp_servers` need a `workspace` root (each thread's servers "
                             "run in its workspace)", ".mcp_servers")
    toolbox = build_toolbox(spec, ttl) if spec.workspace is not None else None
    tools = toolbox.shared if toolbox is not None else build_tools(spec)
    try:
        return SingleAgent(provider, tools, system=spec.system, max_steps=spec.max_steps,
                           name=spec.name, parallel_tool_calls=spec.parallel_tool_calls,
                           tool_timeout=spec.tool_timeout, owns_provider=owns_provider,
                           turns=turns, toolbox=toolbox)
    except (TypeError, ValueError) as e:  # two tools with one name, a bad function
        raise AgentSpecError(str(e), ".tools") from None


#: A CLI is a JIT runtime with many threads: no address-space limit, room for threads.
HARNESS_LIMITS = SandboxLimits(cpu_seconds=3600, memory_mb=None, processes=4096)

class HarnessSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="kind",
                  tag="harness"):
    """``kind: harness``: Codex CLI or Claude Code as the orchestrator
    (docs/harness-agents.md). ``model`` is what the CLI asks this gateway for;
    ``harness_bin`` the CLI (found on PATH by default); ``api_key`` the key it calls back
    with (default: the first of ``server.api_keys``); ``workspace`` the root of the
    threads' workspaces (default: ``$XDG_DATA_HOME/dragoman/workspaces/NAME``)."""

    name: str
    model: str
    harness: HarnessKind
    harness_bin: str | None = None
    system: str | None = None
    workspace: str | None = None
    workspace_template: str | None = None
    sandbox: SandboxKind | None = None
    sandbox_paths: list[str] = msgspec.field(default_factory=list)
    limits: SandboxLimits = msgspec.field(default_factory=lambda: HARNESS_LIMITS)
    quota: WorkspaceQuota = msgspec.field(default_factory=WorkspaceQuota)
    api_key: str | None = None
    gateway_url: str | None = None
    client_tools: Literal["refuse", "ignore"] = "refuse"
    timeout: float = 1800.0

    def __repr__(self) -> str:  # api_key is a secret
        return f"HarnessSpec(name={self.name!r}, harness={self.harness!r})"


AnyAgentSpec = AgentSpec | HarnessSpec



def _install_dir(binary: str) -> str | None:
    """What the sandbox must see of a CLI outside /usr: its node_modules tree (the
    npm-installed CLIs load their platform binary from a sibling package)."""
    real = os.path.realpath(binary)
    if real.startswith("/usr/"):
        return None
    parts = real.split(os.sep)
    if "node_modules" in parts:
        return os.sep.join(parts[:parts.index("node_modules") + 1])
    return os.path.dirname(real)


def build_harness(spec: HarnessSpec, *, default_key: str | None = None,
                  ttl: float | None = None) -> HarnessAgent:
    """A harness agent from its entry; a missing CLI is an error naming it."""
    cli = CLIS[spec.harness]
    wanted = spec.harness_bin or cli.binary
    found = shutil.which(wanted)
    if found is None:
        raise AgentSpecError(f"the {spec.harness} harness needs {wanted!r}, which is not "
                             "installed (or not on PATH; set `harness_bin:`)", ".harness_bin")
    binary = os.path.realpath(found)  # symlinks (npm's .bin) may point outside the sandbox
    root = spec.workspace or str(default_workspace_root() / spec.name)
    if spec.workspace is None:
        os.makedirs(root, exist_ok=True)
    try:
        workspaces = ThreadWorkspaces(root, quota=spec.quota,
                                      template=spec.workspace_template, ttl=ttl)
    except ValueError as e:
        raise AgentSpecError(str(e), ".workspace") from None
    try:
        sandbox = make_sandbox(spec.sandbox)
    except SandboxError as e:
        raise AgentSpecError(str(e), ".sandbox") from None
    if sandbox.kind == "none":
        log.warning("harness agent %r runs WITHOUT a sandbox (`sandbox: none`)", spec.name)
    else:
        guard_private_ranges(spec.name, spec.gateway_url)
    extra = _install_dir(binary)
    # The CLI calls this gateway back for its model: it needs the network.
    policy = SandboxPolicy(sandbox, network=True, limits=spec.limits,
                           ro_paths=tuple([*spec.sandbox_paths, *([extra] if extra else [])]))
    key = spec.api_key or default_key
    if key is None:
        raise AgentSpecError("a harness calls this gateway back: set `api_key:` (a key the "
                             "gateway accepts)", ".api_key")
    return HarnessAgent(cli, binary, model=spec.model, workspaces=workspaces, policy=policy,
                        key=key, name=spec.name, system=spec.system, url=spec.gateway_url,
                        client_tools=spec.client_tools, timeout=spec.timeout)
