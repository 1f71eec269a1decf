"""Small validators for request parsing: each raises ``InvalidRequest`` naming the field."""

from __future__ import annotations

from typing import Any

from ...core import InvalidRequest


def bad(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}.", param=param)


def obj(val: Any, param: str) -> dict[str, Any]:
    if not isinstance(val, dict):
        raise bad(param, "an object")
    return val


def req_str(d: dict[str, Any], key: str, where: str) -> str:
    val = d.get(key)
    param = f"{where}.{key}" if where else key
    if val is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if not isinstance(val, str):
        raise bad(param, "a string")
    return val


def opt(d: dict[str, Any], key: str, typ: type, where: str = "") -> Any:
    val = d.get(key)
    if val is None:
        return None
    param = f"{where}.{key}" if where else key
    if not isinstance(val, typ) or (typ is not bool and isinstance(val, bool)):
        names = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object",
                 list: "an array"}
        raise bad(param, names.get(typ, typ.__name__))
    return val


def opt_number(d: dict[str, Any], key: str) -> float | None:
    val = d.get(key)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, (int, float)):
        raise bad(key, "a number")
    return val


def opt_tokens(d: dict[str, Any], key: str) -> int | None:
    val = opt(d, key, int)
    if val is not None and val < 1:
        raise InvalidRequest(f"Invalid '{key}': integer below minimum value 1.", param=key)
    return val
