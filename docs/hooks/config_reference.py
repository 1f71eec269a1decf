"""The configuration reference, generated from the config schema at every docs build.

``dragoman.config.Config`` (defined in ``dragoman.config_schema``) is a tree of msgspec structs; ``msgspec.inspect`` gives every
key with its type and default, and the source gives each key's documentation (the string
under it, or the ``#:`` comment above it). So the page cannot fall behind the code: a key
added to a struct is on the page at the next ``mkdocs build``.

Used two ways: as an MkDocs hook (``hooks:`` in mkdocs.yml; ``on_files`` adds the page as
``reference/configuration.md``), and from the tests (``render()``).
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from dataclasses import dataclass, field
from typing import Any

import msgspec
import yaml
from msgspec import inspect as mi

PAGE = "reference/configuration.md"

INTRO = """\
# Configuration reference

Every key of `dragoman.yaml`, generated from the config schema (`dragoman.config.Config`
and the structs it holds) when this site is built. Unknown keys are errors that name
their path; `${VAR}` and `${VAR:-default}` are replaced from the environment in every
string. Each section ends with an example that spells out every key with its default
(`<…>`: a value you must give).

A model's provider-specific keys (`region` for Bedrock, `project` for Vertex, …) sit next
to the common ones and are checked by that provider: see [Providers](../providers.md).
"""


@dataclass
class Section:
    path: str
    struct: mi.StructType
    anchor: str
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    example: dict[str, Any] = field(default_factory=dict)


def _field_docs(cls: type) -> dict[str, str]:
    """Each field's documentation from ``cls``'s source (and its bases'): the string
    literal right under the field, else the ``#:`` comment lines right above it."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, msgspec.Struct) or not isinstance(klass, type):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        lines = source.splitlines()
        node = ast.parse(source).body[0]
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for i, stmt in enumerate(body):
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                continue
            name = stmt.target.id
            nxt = body[i + 1] if i + 1 < len(body) else None
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) \
                    and isinstance(nxt.value.value, str):
                docs[name] = inspect.cleandoc(nxt.value.value)
                continue
            comments = []
            j = stmt.lineno - 2
            while j >= 0 and lines[j].strip().startswith("#:"):
                comments.insert(0, lines[j].strip()[2:].strip())
                j -= 1
            if comments:
                docs[name] = " ".join(comments)
    return docs


def _anchor(path: str) -> str:
    if not path:
        return "cfg-top-level"
    keep = [c if c.isalnum() else "-" for c in path.lower()]
    return "cfg-" + "-".join(p for p in "".join(keep).split("-") if p)


class _Walker:
    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.by_class: dict[type, Section] = {}

    def struct(self, path: str, t: mi.StructType) -> Section:
        known = self.by_class.get(t.cls)
        if known is not None:
            return known
        sec = Section(path, t, _anchor(path))
        self.by_class[t.cls] = sec
        self.sections.append(sec)
        docs = _field_docs(t.cls)
        for f in t.fields:
            key = f.encode_name
            sub = f"{path}.{key}" if path else key
            type_text = self.type(sub, f.type)
            default, example = _default(f)
            if isinstance(f.type, mi.StructType) and example is not _REQUIRED:
                default = "its defaults"  # the struct's own section lists them
            sec.rows.append((key, type_text, default, docs.get(f.name, "")))
            sec.example[key] = example if example is not _REQUIRED else _placeholder(f.type)
        return sec

    def type(self, path: str, t: mi.Type) -> str:
        """Markdown for a type; the structs it holds become sections of their own."""
        if isinstance(t, mi.StructType):
            if t.tag is not None:  # a member of a tagged union
                path = f"{path} ({t.tag_field}: {t.tag})"
            sec = self.struct(path, t)
            return f"[{t.cls.__name__}](#{sec.anchor})"
        if isinstance(t, mi.UnionType):
            parts = [self.type(path, x) for x in t.types if not isinstance(x, mi.NoneType)]
            text = " \\| ".join(parts)
            return text + (" \\| null" if t.includes_none else "")
        if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
            return f"list of {self.type(path + '[]', t.item_type)}"
        if isinstance(t, mi.DictType):
            return f"map of {self.type(path, t.key_type)} → {self.type(path + '.*', t.value_type)}"
        if isinstance(t, mi.LiteralType):
            return " \\| ".join(f"`{json.dumps(v)}`" for v in t.values)
        if isinstance(t, mi.EnumType):
            return " \\| ".join(f"`{json.dumps(e.value)}`" for e in t.cls)
        return _scalar(t)


_SCALARS = {mi.StrType: "string", mi.IntType: "integer", mi.FloatType: "number",
            mi.BoolType: "boolean", mi.AnyType: "any", mi.NoneType: "null",
            mi.BytesType: "bytes"}


def _scalar(t: mi.Type) -> str:
    name = _SCALARS.get(type(t), type(t).__name__.removesuffix("Type").lower())
    bounds = [f"{sym} {getattr(t, attr)}" for attr, sym in
              (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))
              if getattr(t, attr, None) is not None]
    return name + (f" ({', '.join(bounds)})" if bounds else "")


_REQUIRED = object()


def _default(f: mi.Field) -> tuple[str, Any]:
    """(the default as shown in the table, the value for the example)."""
    if f.required:
        return "**required**", _REQUIRED
    if f.default is not msgspec.NODEFAULT:
        value = f.default
    else:
        value = msgspec.to_builtins(f.default_factory())
    value = msgspec.to_builtins(value)
    return f"`{json.dumps(value)}`", value


def _placeholder(t: mi.Type) -> Any:
    if isinstance(t, mi.ListType):
        return []
    if isinstance(t, (mi.DictType, mi.StructType)):
        return {}
    if isinstance(t, mi.UnionType):
        return _placeholder(t.types[0])
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    return f"<{_scalar(t).split(' ')[0]}>"


def render() -> str:
    from dragoman.config import Config

    walker = _Walker()
    walker.struct("", mi.type_info(Config))  # type: ignore[arg-type]
    out = [INTRO]
    for sec in walker.sections:
        title = f"`{sec.path}`" if sec.path else "Top level"
        out.append(f"## {title} {{#{sec.anchor}}}\n")
        doc = inspect.getdoc(sec.struct.cls)
        if doc and sec.struct.cls.__doc__ is not None and "Struct" not in doc[:40]:
            out.append(doc.split("\n\n")[0].replace("\n", " ") + "\n")
        out.append(f"Schema: `{sec.struct.cls.__module__}.{sec.struct.cls.__name__}`\n")
        out.append("| key | type | default | description |\n|---|---|---|---|")
        for key, type_text, default, doc_text in sec.rows:
            cell = doc_text.replace("\n", " ").replace("|", "\\|")
            out.append(f"| `{key}` | {type_text} | {default} | {cell} |")
        example: Any = dict(sec.example)
        if sec.struct.tag is not None:
            example = {sec.struct.tag_field: sec.struct.tag, **example}
        for part in reversed([p for p in sec.path.replace("[]", "").split(".") if p]):
            part = part.split(" (")[0]
            example = {part: [example] if _is_list(sec.path, part) else example}
        body = yaml.safe_dump(example, sort_keys=False, default_flow_style=False,
                              allow_unicode=True)
        out.append(f"\n```yaml\n{body}```\n")
    return "\n".join(out)


def _is_list(path: str, part: str) -> bool:
    return f"{part}[]" in path


# --- the MkDocs hook -------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
