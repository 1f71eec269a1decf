"""An agent's tools for one request, built around its thread's workspace.

An agent with a ``workspace:`` root has tools that cannot exist before the request: the
file tools and ``bash`` act on the thread's own workspace, and the MCP servers' tools come
from the thread's own server processes. ``ThreadToolbox.open(tenant, thread)`` makes them
(cheap: a few objects) next to the tools every thread shares (Python functions,
``web_fetch``), and keeps the workspace for the duration of the request.

A tenant over its workspace quota still gets an agent: its workspace tools answer with the
quota error, which the model can pass on.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from .builtin import Builtin
from .egress import close_guard
from .mcp import McpHub
from .sandbox import SandboxPolicy
from .tools import Tool, ToolError, ToolRegistry
from .workspace import Workspace
from .workspaces import QuotaExceeded, ThreadWorkspaces


class _Refused:
    """A workspace tool standing in when the thread has no workspace (quota)."""

    def __init__(self, tool: Tool, reason: str) -> None:
        self.name = tool.name
        self.description = tool.description
        self.parameters = tool.parameters
        self.reason = reason

    async def run(self, args: dict[str, Any]) -> str:
        raise ToolError(self.reason)


class ThreadToolbox:
    """``shared``: tools of every thread; ``per_workspace``: (name, built-in, validated
    options) made for each thread's workspace; ``mcp``: the agent's MCP servers."""

    def __init__(self, workspaces: ThreadWorkspaces, *,
                 shared: Sequence[Tool | Callable[..., Any]] = (),
                 per_workspace: Sequence[tuple[str, Builtin, Any]] = (),
                 policy: SandboxPolicy | None = None, mcp: McpHub | None = None,
                 timeout: float | None = None) -> None:
        self.workspaces = workspaces
        self.shared = list(shared)
        self.per_workspace = list(per_workspace)
        self.policy = policy
        self.mcp = mcp
        self.timeout = timeout
        # The registry of the shared tools: names for count_tokens and collision checks.
        self.static = ToolRegistry(self.shared, timeout=timeout)

    def __repr__(self) -> str:
        return f"ThreadToolbox({self.workspaces!r})"

    def _make(self, ws: Workspace) -> list[Tool | Callable[..., Any]]:
        return [*self.shared, *(b.make(ws, o, self.policy) for _, b, o in self.per_workspace)]

    def names(self) -> list[str]:
        """The names of the tools every thread has (MCP tools are known per thread)."""
        return [*(n for n, _, _ in self.per_workspace), *(t.name for t in self.static)]

    @contextlib.asynccontextmanager
    async def open(self, tenant: str, thread: str | None) -> AsyncIterator[ToolRegistry]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                ws = await stack.enter_async_context(self.workspaces.open(tenant, thread))
            except QuotaExceeded as e:
                placeholder = Workspace(self.workspaces.root)
                made = self._make(placeholder)
                yield ToolRegistry([t if t in self.shared else _Refused(t, e.message)  # type: ignore[arg-type]
                                    for t in made], timeout=self.timeout)
                return
            warm = self.policy.warm if self.policy is not None else None
            if thread is None and warm is not None:  # its workspace goes with the request
                stack.push_async_callback(warm.stop, ws.root)
            registry = ToolRegistry(self._make(ws), timeout=self.timeout)
            if self.mcp is not None:
                taken = {t.name for t in registry}
                for tool in await self.mcp.tools(tenant, thread, ws, taken, stack):
                    registry.add(tool)
            yield registry

    async def aclose(self) -> None:
        if self.mcp is not None:
            await self.mcp.aclose()
        if self.policy is not None and self.policy.warm is not None:
            await self.policy.warm.aclose()
        if self.policy is not None and self.policy.network:
            await close_guard()
