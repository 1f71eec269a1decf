"""An explicit nesting limit for request bodies, checked before the JSON decoder runs.

The decoder recurses once per nesting level, on the same stack as the request handler, so
a ~2 KB body nested a thousand levels deep would otherwise end in ``RecursionError`` (a
500) at a depth that depends on how deep the handler's own stack happens to be. Here the
limit is a number, and a body past it is an ordinary 400.

Cost: a body cannot nest deeper than half its length, nor deeper than it has opening
brackets, so the common small request is settled by its length or two ``bytes.count``
calls. A body with more brackets than the limit is
measured in C-speed passes, with no Python code per byte or per bracket: escapes are
removed (so every remaining ``"`` delimits a string), everything but brackets and quotes
is deleted (``{}`` become ``[]``: depth does not care which), strings are cut out, and a
regular expression that accepts exactly the bracket sequences at most ``limit`` deep (one
possessive group per level, so it never backtracks) matches what is left. ~2 ms for a
0.5 MB tool-heavy request, ~0.7 s for a pathological 24 MB one.
"""

from __future__ import annotations

import re
from functools import cache

#: Deeper than any real request (tool JSON Schemas nest a few dozen levels at most).
MAX_JSON_DEPTH = 128

_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


@cache
def _at_most(limit: int) -> re.Pattern[bytes]:
    """Balanced ``[``/``]`` sequences nested at most ``limit`` deep."""
    pattern = b""
    for _ in range(limit):
        pattern = rb"(?:\[" + pattern + rb"\])*+"
    return re.compile(pattern)


def nests_deeper_than(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests arrays/objects more than ``limit`` levels deep.
    Text whose brackets do not balance counts as too deep: it is not JSON either."""
    if len(raw) <= 2 * limit or raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # (each level takes two bytes at least)
    text = raw
    if b"\\" in text:
        # Left to right, pairwise: exactly how the JSON lexer reads runs of backslashes.
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = text.translate(_BRACKETS_ONLY, _NOT_STRUCTURE)
    if b'"' in structure:
        # Dropping two adjacent quotes keeps every bracket on its side of every string
        # (nothing lies between them); most strings hold no bracket and go here.
        structure = structure.replace(b'""', b"")
        if b'"' in structure:
            structure = b"".join(structure.split(b'"')[::2])
    return _at_most(limit).fullmatch(structure) is None
