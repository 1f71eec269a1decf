"""Config errors a user can act on: ``FILE:LINE: message - at `$.path` (did you mean `models`?)``.

Every check of the config (msgspec's, the provider's, the cross-references of
``config.py``) reports a path such as ``$.models[0].provider``. This module turns that path
back into a line of the YAML file, and suggests the closest known key for an unknown one:

- ``load_yaml`` composes the YAML node tree (which keeps each node's line) and constructs
  the data from it: one parse, and the tree is kept only as long as the caller keeps the
  ``SourceMap``;
- ``SourceMap.locate`` finds the first config path in a message and prefixes its line;
- ``did_you_mean``/``schema_hint`` find the closest name among the known ones (for an
  unknown key, the fields of the msgspec type at that path; for a bad value, its literals,
  enum values or union tags).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import yaml

#: the first config path in a message: ``$``, ``$.a.b[0]``, ``$.limits.models[...]``
_PATH = re.compile(r"(?P<path>\$(?:\.[^\s.\[\]`()',]+|\[[^\]\s]*\])*)")
_QUOTED_PATH = re.compile(f"`{_PATH.pattern}`")
_SEGMENT = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\[[^\]]*\]")
#: msgspec's wording for an unknown key (``- at `$.x``` is missing at the top level)
_UNKNOWN = re.compile(r"unknown field `([^`]+)`(?: - at `([^`]+)`)?")
#: msgspec's wording for a value outside a literal, an enum or the tags of a union
_INVALID = re.compile(r"Invalid (?:enum )?value '([^']*)' - at `([^`]+)`")


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean `models`?)`` for the known name closest to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, sorted(set(known)), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def schema_hint(message: str, schema: Any, extra: Iterable[str] = ()) -> str:
    """The closest known name for msgspec's error ``message`` about data of type
    ``schema``: for "unknown field `x` - at `$.p`", among the fields at ``$.p`` (and
    ``extra``); for "Invalid value 'x' - at `$.p`", among the values ``$.p`` takes (its
    literals, enum values or union tags, e.g. ``auth.type``); else ``""``."""
    if (m := _UNKNOWN.search(message)) is not None:
        fields = _fields(_at(schema, _segments(m.group(2) or "$")))
        return did_you_mean(m.group(1), [*fields, *extra])
    if (m := _INVALID.search(message)) is not None:
        *parent, last = _segments(m.group(2)) or [""]
        return did_you_mean(m.group(1), _values(_at(schema, parent), last))
    return ""


def _at(schema: Any, segments: list[str | int]) -> msgspec.inspect.Type | None:
    """The msgspec type found at ``segments`` below ``schema`` (None: not a known place)."""
    info: msgspec.inspect.Type | None = msgspec.inspect.type_info(schema)
    for seg in segments:
        info = _child(info, seg) if info is not None else None
    return info


def _values(holder: msgspec.inspect.Type | None, seg: str | int) -> list[str]:
    """The values the member ``seg`` of ``holder`` may take: the tags of a tagged union
    when ``seg`` is its tag field, else the member's literals or enum values."""
    if isinstance(holder, msgspec.inspect.UnionType):
        tags = [str(t.tag) for t in holder.types
                if isinstance(t, msgspec.inspect.StructType) and t.tag_field == seg]
        if tags:
            return tags
    return _choices(_child(holder, seg)) if holder is not None else []


def _choices(info: msgspec.inspect.Type | None) -> list[str]:
    if isinstance(info, msgspec.inspect.LiteralType):
        return [str(v) for v in info.values]
    if isinstance(info, msgspec.inspect.EnumType):
        return [str(e.value) for e in info.cls]
    if isinstance(info, msgspec.inspect.UnionType):  # Optional[...]
        return [v for t in info.types for v in _choices(t)]
    return []


def with_root_path(message: str) -> str:
    """msgspec names no path for an error at the top level; name it (``- at `$```)."""
    return message if " - at `" in message else f"{message} - at `$`"


def _segments(path: str) -> list[str | int]:
    """``$.models[0].provider`` → ``["models", 0, "provider"]``; ``[...]`` (a dict key
    msgspec does not name) → ``"..."``."""
    out: list[str | int] = []
    for m in _SEGMENT.finditer(path, 1):
        name, index = m.group(1), m.group(2)
        out.append(name if name is not None else int(index) if index is not None else "...")
    return out


def _fields(info: msgspec.inspect.Type | None) -> list[str]:
    if isinstance(info, msgspec.inspect.StructType):
        return [f.encode_name for f in info.fields if f.encode_name != "options"]
    if isinstance(info, msgspec.inspect.UnionType):
        return [name for t in info.types for name in _fields(t)]
    return []


def _child(info: msgspec.inspect.Type, seg: str | int) -> msgspec.inspect.Type | None:
    if isinstance(info, msgspec.inspect.StructType) and isinstance(seg, str):
        return next((f.type for f in info.fields if f.encode_name == seg), None)
    if isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.SetType)):
        return info.item_type
    if isinstance(info, msgspec.inspect.DictType):
        return info.value_type
    if isinstance(info, msgspec.inspect.UnionType):
        for t in info.types:
            found = _child(t, seg)
            if found is not None:
                return found
    return None


class SourceMap:
    """The lines of one YAML config file, by config path."""

    def __init__(self, file: str | Path | None, root: yaml.Node | None = None) -> None:
        self.file = file
        self._root = root

    def line(self, path: str) -> int | None:
        """1-based line where ``path`` starts: the line of its key (or list item); for a
        path that is not in the file (a missing key), the line of its deepest parent."""
        node = self._root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for seg in _segments(path):
            if isinstance(node, yaml.MappingNode) and isinstance(seg, str):
                pair = next(((k, v) for k, v in node.value
                             if isinstance(k, yaml.ScalarNode) and k.value == seg), None)
                if pair is None:
                    break
                line, node = pair[0].start_mark.line + 1, pair[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(seg, int) \
                    and seg < len(node.value):
                node = node.value[seg]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def locate(self, message: str) -> str:
        """``message`` prefixed with ``FILE:LINE:`` of the first config path it names (of
        the unknown key itself for an unknown-key error)."""
        if self.file is None:
            return message
        unknown = _UNKNOWN.search(message)
        # a path in backticks first: a bare `$` may be part of a quoted value
        found = _QUOTED_PATH.search(message) or _PATH.search(message)
        if unknown is not None:  # its parent is named next to it, or first in the message
            parent = unknown.group(2) or (found.group("path") if found else "$")
            path: str | None = f"{parent}.{unknown.group(1)}"
        else:
            path = found.group("path") if found else None
        line = self.line(path) if path is not None else None
        return f"{self.file}:{line}: {message}" if line else f"{self.file}: {message}"


def load_yaml(text: str, file: str | Path) -> tuple[Any, SourceMap]:
    """The YAML document (safe types only) and the map of its lines. Raises
    ``yaml.YAMLError`` (format it with ``yaml_error``)."""
    loader = yaml.SafeLoader(text)
    loader.name = str(file)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return data, SourceMap(file, root)


def yaml_error(e: yaml.YAMLError, file: str | Path) -> str:
    """A YAML syntax error on one line: ``FILE:LINE:COLUMN: not valid YAML: problem``."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        what = ": ".join(p for p in (e.context, e.problem) if p)
        return f"{file}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {what}"
    return f"{file}: not valid YAML: {e}"
