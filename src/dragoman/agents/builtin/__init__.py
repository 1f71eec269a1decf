"""Built-in tools, each opt-in by name in an agent's config.

``build_builtin(name, options, workspace)`` makes one; ``BUILTINS`` lists the names. The
file tools and bash need a workspace; web_fetch does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from ..sandbox import SandboxPolicy
from ..tools import Tool
from ..workspace import Workspace
from .files import (
    EditFile,
    Glob,
    ListDir,
    ListOptions,
    ReadFile,
    ReadFileOptions,
    WriteFile,
    WriteFileOptions,
)
from .search import Grep, GrepOptions
from .shell import Bash, BashOptions
from .web import WebFetch, WebFetchOptions


@dataclass(frozen=True, slots=True)
class Builtin:
    options: type[msgspec.Struct]
    make: Callable[[Workspace | None, Any, SandboxPolicy | None], Tool]
    needs_workspace: bool = True
    starts_processes: bool = False
    """Runs commands: the agent needs a sandbox."""


BUILTINS: dict[str, Builtin] = {
    "read_file": Builtin(ReadFileOptions, lambda ws, o, p: ReadFile(ws, o)),  # type: ignore[arg-type]
    "write_file": Builtin(WriteFileOptions, lambda ws, o, p: WriteFile(ws, o)),  # type: ignore[arg-type]
    "edit_file": Builtin(ReadFileOptions, lambda ws, o, p: EditFile(ws, o)),  # type: ignore[arg-type]
    "list_dir": Builtin(ListOptions, lambda ws, o, p: ListDir(ws, o)),  # type: ignore[arg-type]
    "glob": Builtin(ListOptions, lambda ws, o, p: Glob(ws, o)),  # type: ignore[arg-type]
    "grep": Builtin(GrepOptions, lambda ws, o, p: Grep(ws, o)),  # type: ignore[arg-type]
    "bash": Builtin(BashOptions, lambda ws, o, p: Bash(ws, o, p),  # type: ignore[arg-type]
                    starts_processes=True),
    "web_fetch": Builtin(WebFetchOptions, lambda ws, o, p: WebFetch(o), needs_workspace=False),
}


class BuiltinError(ValueError):
    """An unknown built-in or bad options; ``str()`` says which."""


def builtin_options(name: str, options: dict[str, Any] | None) -> tuple[Builtin, Any]:
    """The built-in named ``name`` and its validated options (``BuiltinError`` if
    either is wrong): validate once, make many (one per thread's workspace)."""
    spec = BUILTINS.get(name)
    if spec is None:
        raise BuiltinError(f"unknown built-in tool {name!r} (known: {', '.join(BUILTINS)})")
    try:
        return spec, msgspec.convert(options or {}, spec.options)
    except msgspec.ValidationError as e:
        raise BuiltinError(f"options of tool {name!r}: {e}") from None


def build_builtin(name: str, options: dict[str, Any] | None,
                  workspace: Workspace | None, policy: SandboxPolicy | None = None) -> Tool:
    spec, opts = builtin_options(name, options)
    if spec.needs_workspace and workspace is None:
        raise BuiltinError(f"tool {name!r} needs a `workspace` directory")
    return spec.make(workspace, opts, policy)


__all__ = ["BUILTINS", "Bash", "BashOptions", "BuiltinError", "EditFile", "Glob", "Grep",
           "GrepOptions", "ListDir", "ListOptions", "ReadFile", "ReadFileOptions", "WebFetch",
           "WebFetchOptions", "WriteFile", "WriteFileOptions", "build_builtin", "builtin_options"]
