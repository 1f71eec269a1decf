"""Agents: orchestrators that run a tool loop over any provider, served as models.

Imports only ``dragoman.core``, the provider protocol and ``dragoman.net``.

- ``Tool`` (protocol), ``ToolError``, ``ToolRegistry``; ``FunctionTool`` / ``@tool`` turn a
  type-hinted function into a tool.
- ``SingleAgent``: one model, tools, a loop (implements ``LlmProvider``).
- ``TurnStore`` (protocol), ``MemoryTurnStore``, ``PendingTurn``: where the hidden part of
  a turn that ends with client tool calls waits for the results, per (tenant, call id);
  the gateway implements it on the session store (``dragoman.server.agent_turns``).
- ``Workspace`` and the built-in tools in ``dragoman.agents.builtin``.
- ``dragoman.agents.client``: read the ``dragoman.*`` SSE events on the client side.
"""

from .function_tool import FunctionTool, tool
from .single import SingleAgent
from .tools import Tool, ToolError, ToolOutcome, ToolRegistry
from .turns import MemoryTurnStore, PendingTurn, TurnStore
from .workspace import Workspace

__all__ = ["FunctionTool", "MemoryTurnStore", "PendingTurn", "SingleAgent", "Tool",
           "ToolError", "ToolOutcome", "ToolRegistry", "TurnStore", "Workspace", "tool"]
