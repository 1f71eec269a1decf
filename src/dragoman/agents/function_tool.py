"""Plain Python functions as tools.

``FunctionTool(fn)`` (or the ``@tool`` decorator) reads ``fn``'s signature and docstring:
the type hints become the JSON Schema of the arguments (via a msgspec struct built from
them, which also validates and converts what the model sends), the docstring's summary
becomes the description and its per-parameter lines the property descriptions.
``Annotated[int, msgspec.Meta(ge=1, description=…)]`` adds constraints.

Async functions are awaited; plain functions run in a worker thread so a slow one does not
stall the event loop (a thread cannot be interrupted: a cancelled agent stops waiting for
it, the function itself runs to its end).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any, overload

import msgspec

from .docstrings import parse_docstring
from .tool_error import ToolError

_encode = msgspec.json.Encoder().encode
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _schema(struct: type[msgspec.Struct], docs: dict[str, str]) -> dict[str, Any]:
    full = msgspec.json.schema(struct)
    defs: dict[str, Any] = full.get("$defs", {})
    schema: dict[str, Any] = defs.pop(struct.__name__)
    schema.pop("title", None)
    props: dict[str, Any] = schema.setdefault("properties", {})
    for name, text in docs.items():
        if name in props and "description" not in props[name]:
            props[name]["description"] = text
    if defs:
        schema["$defs"] = defs
    return schema


def render_result(value: Any) -> str:
    """A function's return value as the text the model reads."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return _encode(value).decode()
    except TypeError:
        return str(value)


class FunctionTool:
    """A ``Tool`` made from a function (sync or async) with type-hinted parameters."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None,
                 description: str | None = None) -> None:
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        if not _NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'")
        summary, docs = parse_docstring(inspect.getdoc(fn))
        self.description: str = description if description is not None else summary
        call = fn if inspect.isroutine(fn) else type(fn).__call__
        self._is_async = inspect.iscoroutinefunction(call)
        hints = typing.get_type_hints(call, include_extras=True)
        fields: list[Any] = []
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
                raise TypeError(f"tool {self.name!r}: parameter {p.name!r} must be nameable "
                                "(no *args, **kwargs or positional-only parameters)")
            typ = hints.get(p.name, Any)
            if p.default is p.empty:
                fields.append((p.name, typ))
            elif isinstance(p.default, (list, dict, set)):
                fields.append((p.name, typ, msgspec.field(
                    default_factory=functools.partial(copy.copy, p.default))))
            else:
                fields.append((p.name, typ, p.default))
        self._args: type[msgspec.Struct] = msgspec.defstruct(
            f"{self.name}_arguments", fields, kw_only=True, forbid_unknown_fields=True)
        self._fields = self._args.__struct_fields__
        try:
            self.parameters: dict[str, Any] = _schema(self._args, docs)
        except (TypeError, ValueError) as e:  # a type JSON Schema cannot describe
            raise TypeError(f"tool {self.name!r}: {e}") from None

    def __repr__(self) -> str:
        return f"FunctionTool(name={self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The decorated function stays callable as before."""
        return self.fn(*args, **kwargs)

    async def run(self, args: dict[str, Any]) -> str:
        try:
            parsed = msgspec.convert(args, self._args, strict=False)
        except msgspec.ValidationError as e:
            raise ToolError(f"invalid arguments: {e}") from None
        kwargs = {f: getattr(parsed, f) for f in self._fields}
        if self._is_async:
            result = await self.fn(**kwargs)
        else:
            result = await asyncio.to_thread(self.fn, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        return render_result(result)


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(*, name: str | None = None,
         description: str | None = None) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
         description: str | None = None) -> Any:
    """Decorator: ``@tool`` or ``@tool(name=…, description=…)`` turns a function into a
    ``FunctionTool`` (which can still be called like the function)."""
    if fn is not None:
        return FunctionTool(fn, name=name, description=description)
    return lambda f: FunctionTool(f, name=name, description=description)
