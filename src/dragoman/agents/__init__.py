"""Agents: orchestrators that run a tool loop over any provider, served as models.

Imports only ``dragoman.core``, the provider protocol and ``dragoman.net``.

- ``Tool`` (protocol), ``ToolError``, ``ToolRegistry``; ``FunctionTool`` / ``@tool`` turn a
  type-hinted function into a tool.
- ``SingleAgent``: one model, tools, a loop (implements ``LlmProvider``).
- Orchestrators over several models (each an ``LlmProvider`` too, so they nest):
  ``Conductor`` (a coordinator dispatches workers), ``Trinity`` (a router picks a role and
  a model per turn), ``SelfCaller`` (a guard asks for revisions), ``AbMcts`` (tree search
  scored by a verifier); ``verifiers``, ``guards`` and ``routers`` for them. ``Result``
  is what their ``run()`` returns.
- ``TurnStore`` (protocol), ``MemoryTurnStore``, ``PendingTurn``: where the hidden part of
  a turn that ends with client tool calls waits for the results, per (tenant, call id);
  the gateway implements it on the session store (``dragoman.server.agent_turns``).
- ``Workspace`` and the built-in tools in ``dragoman.agents.builtin``.
- ``dragoman.agents.client``: read the ``dragoman.*`` SSE events on the client side.
"""

from .ab_mcts import AbMcts
from .conductor import Conductor
from .function_tool import FunctionTool, tool
from .orchestrator import Orchestrator, Result
from .self_caller import SelfCaller
from .single import SingleAgent
from .tools import Tool, ToolError, ToolOutcome, ToolRegistry
from .trinity import Trinity
from .turns import MemoryTurnStore, PendingTurn, TurnStore
from .workspace import Workspace

__all__ = ["FunctionTool", "MemoryTurnStore", "PendingTurn", "SingleAgent", "Tool",
           "ToolError", "ToolOutcome", "ToolRegistry", "TurnStore", "Workspace", "tool"]
__all__ += ["AbMcts", "Conductor", "Orchestrator", "Result", "SelfCaller", "Trinity"]
