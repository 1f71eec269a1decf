"""JSON Pointer (RFC 6901) for reading values out of an upstream's JSON.

``JsonPointer("/choices/0/text")`` is parsed once (at config time) into its reference
tokens; ``get(doc)`` then walks a decoded document with plain dict/list lookups and returns
``MISSING`` when any step does not exist, so reading a pointer per stream frame stays cheap.

Per the RFC: ``""`` is the whole document, every other pointer starts with ``/``, ``~1``
stands for ``/`` and ``~0`` for ``~`` inside a token, and a token addresses an array
element only when it is a decimal index without leading zeros (``-`` never exists when
reading).
"""

from __future__ import annotations

from typing import Any, Final


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()
"""What ``JsonPointer.get`` returns when the pointer does not resolve."""


class JsonPointerError(ValueError):
    """The pointer text is not a valid RFC 6901 pointer."""


def _unescape(token: str) -> str:
    if "~" not in token:
        return token
    i = token.find("~")
    while i >= 0:
        if token[i + 1:i + 2] not in ("0", "1"):
            raise JsonPointerError(f"invalid escape in JSON pointer token {token!r} "
                                   "(only ~0 and ~1 are allowed)")
        i = token.find("~", i + 2)
    return token.replace("~1", "/").replace("~0", "~")


def _index(token: str) -> int | None:
    """The array index a token denotes, or None (it can then only name an object key)."""
    if token.isdigit() and token.isascii() and (token == "0" or token[0] != "0"):
        return int(token)
    return None


class JsonPointer:
    __slots__ = ("_steps", "text")

    def __init__(self, text: str) -> None:
        if text and not text.startswith("/"):
            raise JsonPointerError(f"a JSON pointer must be empty or start with '/': {text!r}")
        self.text = text
        tokens = [_unescape(t) for t in text.split("/")[1:]] if text else []
        self._steps: tuple[tuple[str, int | None], ...] = tuple((t, _index(t)) for t in tokens)

    def __repr__(self) -> str:
        return f"JsonPointer({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonPointer) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def get(self, doc: Any) -> Any:
        """The value at this pointer, or ``MISSING``."""
        cur = doc
        for key, index in self._steps:
            if isinstance(cur, dict):
                if key not in cur:
                    return MISSING
                cur = cur[key]
            elif isinstance(cur, list):
                if index is None or index >= len(cur):
                    return MISSING
                cur = cur[index]
            else:
                return MISSING
        return cur
