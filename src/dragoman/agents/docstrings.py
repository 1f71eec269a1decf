"""Read a function's docstring: its summary, and one description per parameter.

Understands the three styles people write: Google (``Args:`` with ``name (type): text``),
NumPy (``Parameters`` underlined, ``name : type`` then indented text) and Sphinx
(``:param name: text``). Anything it does not recognise stays part of the summary, so a
plain docstring is simply the tool's description.
"""

from __future__ import annotations

import inspect
import re

_GOOGLE_ARGS = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)"
                          r":\s*$")
_GOOGLE_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_RULE = re.compile(r"^-{3,}\s*$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(:.*)?$")
_SPHINX = re.compile(r"^:(param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?(\w+):\s*(.*)$")
_SPHINX_OTHER = re.compile(r"^:\w+")
_OTHER_SECTIONS = frozenset({"Returns", "Return", "Yields", "Raises", "Examples", "Example",
                             "Note", "Notes", "See Also", "Warning", "Warnings"})


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _join(lines: list[str]) -> str:
    return " ".join(s.strip() for s in lines if s.strip())


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(summary, {parameter name: description})."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, list[str]] = {}
    summary: list[str] = []
    i, n = 0, len(lines)
    in_summary = True
    current: list[str] | None
    while i < n:
        line = lines[i]
        stripped = line.strip()
        # NumPy: a header line underlined with dashes.
        if i + 1 < n and _NUMPY_RULE.match(lines[i + 1].strip()) and stripped:
            in_summary = False
            header = stripped.lower()
            i += 2
            while i < n and not (i + 1 < n and _NUMPY_RULE.match(lines[i + 1].strip())):
                m = _NUMPY_ITEM.match(lines[i]) if _indent(lines[i]) == 0 else None
                if header in ("parameters", "other parameters") and m:
                    current = params.setdefault(m.group(1), [])
                    i += 1
                    while i < n and (not lines[i].strip() or _indent(lines[i]) > 0):
                        if i + 1 < n and _NUMPY_RULE.match(lines[i + 1].strip()):
                            break
                        current.append(lines[i])
                        i += 1
                    continue
                i += 1
            continue
        if _GOOGLE_ARGS.match(stripped) and _indent(line) == 0:
            in_summary = False
            i += 1
            item_indent: int | None = None
            current = None
            while i < n:
                ln = lines[i]
                if ln.strip() and _indent(ln) == 0:
                    break  # the next section
                if ln.strip():
                    ind = _indent(ln)
                    m = _GOOGLE_ITEM.match(ln.strip())
                    if m and (item_indent is None or ind <= item_indent):
                        item_indent = ind
                        current = params.setdefault(m.group(1).lstrip("*"), [])
                        current.append(m.group(3))
                    elif current is not None:
                        current.append(ln)
                i += 1
            continue
        m = _SPHINX.match(stripped)
        if m:
            in_summary = False
            current = params.setdefault(m.group(2), [m.group(3)])
            i += 1
            while i < n and lines[i].strip() and not _SPHINX_OTHER.match(lines[i].strip()):
                current.append(lines[i])
                i += 1
            continue
        section = _GOOGLE_SECTION.match(stripped) and _indent(line) == 0 and (
            not in_summary or stripped.rstrip(":") in _OTHER_SECTIONS)
        if _SPHINX_OTHER.match(stripped) or section:
            in_summary = False
        elif in_summary:
            summary.append(line)
        i += 1
    text = "\n".join(summary).strip()
    # Paragraphs stay apart; hard-wrapped lines inside one are joined.
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join(paragraphs), {k: _join(v) for k, v in params.items() if _join(v)}
