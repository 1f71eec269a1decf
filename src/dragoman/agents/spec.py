"""The ``agents:`` section of the config, and how an entry becomes an orchestrator.

```yaml
agents:
  - name: coder                 # the model name clients send
    kind: single                # orchestrator kind (single: one model, a tool loop)
    model: claude               # a name from `models:` (or an agent defined above)
    system: You are a careful coding agent.
    max_steps: 20
    workspace: /srv/agent-work  # root of the file tools, cwd of bash
    tools:
      - read_file
      - edit_file
      - bash: {timeout: 60}     # a built-in with options
      - python: mypkg.tools:get_weather   # a function or Tool object, by import path
```
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import msgspec

from ..providers.base import LlmProvider
from .builtin import BuiltinError, build_builtin
from .single import SingleAgent
from .tools import Tool
from .turns import TurnStore
from .workspace import Workspace


class AgentSpecError(ValueError):
    """A bad agent entry. ``where`` is the path below the entry (``.tools[2]``)."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class AgentSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag="single",
                tag_field="kind"):
    """``kind: single`` (the default); the other kinds are in ``orchestrator_spec``."""

    name: str
    model: str
    system: str | None = None
    max_steps: int = 10
    workspace: str | None = None
    tools: list[str | dict[str, Any]] = msgspec.field(default_factory=list)
    parallel_tool_calls: bool = True
    tool_timeout: float | None = 600.0


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


def build_tools(spec: ToolEntries) -> list[Any]:
    """The spec's tool entries → tools (built-ins, imported functions or Tool objects)."""
    workspace: Workspace | None = None
    if spec.workspace is not None:
        try:
            workspace = Workspace(spec.workspace)
        except ValueError as e:
            raise AgentSpecError(str(e), ".workspace") from None
    out: list[Any] = []
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
                out.append(obj)
            else:
                if options is not None and not isinstance(options, dict):
                    raise AgentSpecError(f"the options of tool {name!r} must be a mapping")
                out.append(build_builtin(name, options, workspace))
        except (BuiltinError, TypeError) as e:
            raise AgentSpecError(str(e), where) from None
        except AgentSpecError as e:
            raise AgentSpecError(e.message, where) from None
    return out


def build_agent(spec: AgentSpec, provider: LlmProvider, *, owns_provider: bool = False,
                turns: TurnStore | None = None) -> SingleAgent:
    """One orchestrator from its config entry, running on ``provider``; ``turns`` keeps
    the hidden part of turns that end with client tool calls (in memory when None)."""
    if spec.max_steps < 1:
        raise AgentSpecError("max_steps must be at least 1", ".max_steps")
    tools = build_tools(spec)
    try:
        return SingleAgent(provider, tools, system=spec.system, max_steps=spec.max_steps,
                           name=spec.name, parallel_tool_calls=spec.parallel_tool_calls,
                           tool_timeout=spec.tool_timeout, owns_provider=owns_provider,
                           turns=turns)
    except (TypeError, ValueError) as e:  # two tools with one name, a bad function
        raise AgentSpecError(str(e), ".tools") from None
