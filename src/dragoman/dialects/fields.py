"""Request field validators shared by ingress dialects: each raises ``InvalidRequest``
naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import InvalidRequest


def require(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str = "") -> Any:
    val = obj.get(key)
    name = f"{where}{key}"
    if val is None:
        raise InvalidRequest(f"Missing required parameter: '{name}'.", param=name)
    if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
        raise InvalidRequest(f"Invalid type for '{name}': expected {_tname(typ)}.", param=name)
    return val


def optional(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...],
             where: str = "") -> Any:
    val = obj.get(key)
    if val is None:
        return None
    if not isinstance(val, typ) or (isinstance(val, bool) and bool not in _as_tuple(typ)):
        raise InvalidRequest(f"Invalid type for '{where}{key}': expected {_tname(typ)}.",
                             param=f"{where}{key}")
    return val


def optional_number(obj: Mapping[str, Any], key: str, where: str = "") -> float | None:
    val = obj.get(key)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, (int, float)):
        raise InvalidRequest(f"Invalid type for '{where}{key}': expected a number.",
                             param=f"{where}{key}")
    return val


def _as_tuple(typ: type | tuple[type, ...]) -> tuple[type, ...]:
    return typ if isinstance(typ, tuple) else (typ,)


def _tname(typ: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "an array", dict: "an object"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(typ))


def expect_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body
