"""The request-template language of the HTTP-generic provider.

A template is any JSON value (a YAML mapping in the config). Its strings may hold
placeholders ``{{name}}`` or ``{{name:-default}}`` naming one of ``VARIABLES``:

* a string that is exactly one placeholder is replaced by the variable's *typed* value
  (number, string, boolean, array, object): ``"max_tokens": "{{max_tokens}}"`` sends a
  number. When the request has no value (no temperature given…) the key is left out of its
  object (or the element out of its array), so the upstream's own default applies; with a
  default, the default is sent instead (read as JSON when it parses, else as a string:
  ``{{temperature:-0.7}}`` sends the number 0.7).
* a placeholder inside a longer string is replaced by text: ``"[INST] {{prompt}} [/INST]"``.
  Strings are inserted as they are, other values as compact JSON, a missing value as its
  default or as nothing.

Nothing is evaluated: a placeholder is a name lookup, object keys are never templated, and
an unknown name is a configuration error naming its path. The template is compiled once;
subtrees without placeholders are shared constants, so rendering a request builds only
the containers that hold placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from ..core import ChatRequest, Image, Message, Text, ToolCall, ToolResult

VARIABLES: dict[str, str] = {
    "model": "the upstream model id (the entry's `model`)",
    "prompt": "text of the last user message",
    "system": "system instructions as one text (request-level system plus system and "
              "developer messages, joined by blank lines)",
    "messages": "the conversation without system text, chat-style: "
                "[{role, content}] with role user/assistant/tool, text content; assistant "
                "tool calls as OpenAI `tool_calls`, tool results with `tool_call_id`",
    "messages_with_system": "`messages` preceded by {role: system, content: <system>} "
                            "when there is system text",
    "images": "URLs of the images in the last user message (inline images as data: URLs)",
    "max_tokens": "output token cap", "temperature": "sampling temperature",
    "top_p": "nucleus sampling", "top_k": "top-k sampling", "seed": "sampling seed",
    "stop": "stop sequences (array of strings)", "user": "end-user id",
    "stream": "true for a streaming call, false otherwise",
    "tools": "function tools, OpenAI Chat shape [{type: function, function: {name, "
             "description, parameters}}]",
    "tool_choice": "OpenAI Chat tool_choice (auto, none, required or a named function)",
    "response_format": "OpenAI Chat response_format ({type: json_object} or {type: "
                       "json_schema, json_schema: {...}})",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::-(.*?))?\s*\}\}", re.S)
_NO_DEFAULT: Any = object()
_DROP: Any = object()
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class TemplateError(ValueError):
    """An invalid template; ``str()`` names the path (``$.template.params.t``)."""


def _default(text: str | None) -> Any:
    if text is None:
        return _NO_DEFAULT
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return text


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _encode(value).decode()


class _Whole:
    """A string that is exactly one placeholder: the typed value."""

    __slots__ = ("default", "name")

    def __init__(self, name: str, default: Any) -> None:
        self.name = name
        self.default = default

    def render(self, values: Mapping[str, Any]) -> Any:
        v = values.get(self.name, _DROP)
        if v is _DROP and self.default is not _NO_DEFAULT:
            return self.default
        return v


class _Interpolated:
    """A string with placeholders inside other text."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[str | _Whole]) -> None:
        self.parts = parts

    def render(self, values: Mapping[str, Any]) -> str:
        out: list[str] = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            v = p.render(values)
            if v is not _DROP:
                out.append(_as_text(v))
        return "".join(out)


class _Object:
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any, bool]]) -> None:
        self.items = items  # (key, value or node, is_node)

    def render(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, val, is_node in self.items:
            if is_node:
                val = val.render(values)
                if val is _DROP:
                    continue
            out[key] = val
        return out


class _Array:
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, bool]]) -> None:
        self.items = items

    def render(self, values: Mapping[str, Any]) -> list[Any]:
        out: list[Any] = []
        for val, is_node in self.items:
            if is_node:
                val = val.render(values)
                if val is _DROP:
                    continue
            out.append(val)
        return out


_Node = _Whole | _Interpolated | _Object | _Array


class RequestTemplate:
    """A compiled template. ``names`` are the placeholders it uses (so a provider computes
    only those values); ``render(values)`` gives the JSON-ready body."""

    __slots__ = ("_root", "names")

    def __init__(self, template: Any, where: str = "$.template") -> None:
        names: set[str] = set()
        self._root, _ = _compile(template, where, names)
        self.names = frozenset(names)

    def render(self, values: Mapping[str, Any]) -> Any:
        root = self._root
        if isinstance(root, (_Whole, _Interpolated, _Object, _Array)):
            out = root.render(values)
            return None if out is _DROP else out
        return root


def _compile(value: Any, where: str, names: set[str]) -> tuple[Any, bool]:
    """(compiled value, is_node): constants come back as themselves."""
    if isinstance(value, str):
        return _compile_str(value, where, names)
    if isinstance(value, dict):
        items: list[tuple[str, Any, bool]] = []
        dynamic = False
        for k, v in value.items():
            if not isinstance(k, str):
                raise TemplateError(f"template object keys must be strings - at `{where}`")
            node, is_node = _compile(v, f"{where}.{k}", names)
            dynamic = dynamic or is_node
            items.append((k, node, is_node))
        return (_Object(items), True) if dynamic else (value, False)
    if isinstance(value, list):
        elems: list[tuple[Any, bool]] = []
        dynamic = False
        for i, v in enumerate(value):
            node, is_node = _compile(v, f"{where}[{i}]", names)
            dynamic = dynamic or is_node
            elems.append((node, is_node))
        return (_Array(elems), True) if dynamic else (value, False)
    if value is None or isinstance(value, (bool, int, float)):
        return value, False
    raise TemplateError(f"template values must be JSON (got {type(value).__name__}) "
                        f"- at `{where}`")


def _placeholder(m: re.Match[str], where: str, names: set[str]) -> _Whole:
    name = m.group(1)
    if name not in VARIABLES:
        raise TemplateError(f"unknown placeholder {{{{{name}}}}} (known: "
                            f"{', '.join(sorted(VARIABLES))}) - at `{where}`")
    names.add(name)
    return _Whole(name, _default(m.group(2)))


def _compile_str(s: str, where: str, names: set[str]) -> tuple[Any, bool]:
    if "{{" not in s:
        return s, False
    whole = _PLACEHOLDER.fullmatch(s)
    if whole is not None:
        return _placeholder(whole, where, names), True
    parts: list[str | _Whole] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(s):
        if m.start() > pos:
            parts.append(s[pos:m.start()])
        parts.append(_placeholder(m, where, names))
        pos = m.end()
    if pos < len(s):
        parts.append(s[pos:])
    if not any(isinstance(p, _Whole) for p in parts):
        return s, False
    return _Interpolated(parts), True


# --- the variables' values for one request -------------------------------------------------


def _text(parts: list[Any]) -> str:
    return "".join(p.text for p in parts if isinstance(p, Text))


def _system_text(req: ChatRequest) -> str:
    chunks = [t.text for t in req.system or ()]
    chunks.extend(m.text() for m in req.messages if m.is_system)
    return "\n\n".join(c for c in chunks if c)


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}


def _messages(req: ChatRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in req.messages:
        if m.is_system:
            continue
        if m.role == "tool" or any(isinstance(p, ToolResult) for p in m.content):
            for p in m.content:
                if isinstance(p, ToolResult):
                    text = p.text()
                    out.append({"role": "tool", "tool_call_id": p.call_id,
                                "content": f"Error: {text}" if p.is_error else text})
            if m.role == "tool":
                continue
        msg: dict[str, Any] = {"role": m.role, "content": _text(m.content)}
        calls = [_tool_call(p) for p in m.content if isinstance(p, ToolCall)]
        if calls and m.role == "assistant":
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def _last_user(req: ChatRequest) -> Message | None:
    for m in reversed(req.messages):
        if m.role == "user":
            return m
    return None


def _images(req: ChatRequest) -> list[str]:
    last = _last_user(req)
    urls: list[str] = []
    for p in last.content if last else ():
        if isinstance(p, Image):
            if p.data is not None:
                urls.append(f"data:{p.mime or 'application/octet-stream'};base64,{p.data}")
            elif p.url:
                urls.append(p.url)
    return urls


def _tools(req: ChatRequest) -> list[dict[str, Any]]:
    out = []
    for t in req.tools or ():
        fn: dict[str, Any] = {"name": t.name}
        if t.description is not None:
            fn["description"] = t.description
        fn["parameters"] = t.parameters if t.parameters is not None else {
            "type": "object", "properties": {"input": {"type": "string"}}}
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(req: ChatRequest) -> Any:
    tc = req.tool_choice
    if tc is None:
        return _DROP
    if tc.mode == "tool" and tc.name:
        return {"type": "function", "function": {"name": tc.name}}
    return "required" if tc.mode == "tool" else tc.mode


def _response_format(req: ChatRequest) -> Any:
    rf = req.response_format
    if rf is None or rf.type == "text":
        return _DROP
    if rf.type == "json_object":
        return {"type": "json_object"}
    js: dict[str, Any] = {"name": rf.name or "response"}
    if rf.schema is not None:
        js["schema"] = rf.schema
    if rf.strict is not None:
        js["strict"] = rf.strict
    return {"type": "json_schema", "json_schema": js}


def request_values(req: ChatRequest, names: frozenset[str], *, model: str,
                   stream: bool) -> dict[str, Any]:
    """The values of the placeholders in ``names`` for ``req`` (absent ones left out)."""
    v: dict[str, Any] = {}
    for name in names:
        val: Any
        if name == "model":
            val = model
        elif name == "stream":
            val = stream
        elif name == "prompt":
            last = _last_user(req)
            val = last.text() if last is not None else _DROP
        elif name == "system":
            val = _system_text(req) or _DROP
        elif name == "messages":
            val = _messages(req)
        elif name == "messages_with_system":
            system = _system_text(req)
            val = _messages(req)
            if system:
                val.insert(0, {"role": "system", "content": system})
        elif name == "images":
            val = _images(req) or _DROP
        elif name == "tools":
            val = _tools(req) or _DROP
        elif name == "tool_choice":
            val = _tool_choice(req) if req.tools else _DROP
        elif name == "response_format":
            val = _response_format(req)
        elif name == "stop":
            val = req.stop or _DROP
        else:  # max_tokens, temperature, top_p, top_k, seed, user
            val = getattr(req, name)
            if val is None:
                val = _DROP
        if val is not _DROP:
            v[name] = val
    return v
