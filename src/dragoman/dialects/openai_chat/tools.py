"""Parse Chat ``tools`` (+ deprecated ``functions``) and ``tool_choice`` (+ ``function_call``)."""

from __future__ import annotations

from typing import Any

from ...core import HostedTool, InvalidRequest, Tool, ToolChoice
from ._validate import bad, obj, opt, req_str
from .wire import NAME


def _function_tool(fn: dict[str, Any], where: str) -> Tool:
    return Tool(
        name=req_str(fn, "name", where),
        description=opt(fn, "description", str, where),
        parameters=opt(fn, "parameters", dict, where),
        strict=opt(fn, "strict", bool, where),
    )


def parse_tools(body: dict[str, Any]) -> tuple[list[Tool] | None, list[HostedTool] | None]:
    tools: list[Tool] = []
    hosted: list[HostedTool] = []
    raw = opt(body, "tools", list)
    for i, t in enumerate(raw or ()):
        where = f"tools[{i}]"
        t = obj(t, where)
        typ = t.get("type", "function")
        if not isinstance(typ, str):
            raise bad(f"{where}.type", "a string")
        if typ == "function":
            fn = t.get("function")
            if fn is None:
                raise InvalidRequest(f"Missing required parameter: '{where}.function'.",
                                     param=f"{where}.function")
            tools.append(_function_tool(obj(fn, f"{where}.function"), f"{where}.function"))
        elif typ == "custom":
            c = t.get("custom")
            if c is None:
                raise InvalidRequest(f"Missing required parameter: '{where}.custom'.",
                                     param=f"{where}.custom")
            c = obj(c, f"{where}.custom")
            tools.append(Tool(name=req_str(c, "name", f"{where}.custom"),
                              description=opt(c, "description", str, f"{where}.custom"),
                              format=flat_format(opt(c, "format", dict, f"{where}.custom")),
                              kind="custom"))
        else:  # a provider-specific tool: only meaningful to a Chat upstream
            hosted.append(HostedTool(dialect=NAME, data=t))
    for i, fn in enumerate(opt(body, "functions", list) or ()):
        where = f"functions[{i}]"
        tools.append(_function_tool(obj(fn, where), where))
    return tools or None, hosted or None


def flat_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat nests a custom tool's grammar (``{"type":"grammar","grammar":{syntax,
    definition}}``); the neutral form is the flat Responses shape
    (``{"type":"grammar","syntax","definition"}``)."""
    if fmt is None or fmt.get("type") != "grammar" or not isinstance(fmt.get("grammar"), dict):
        return fmt
    return {"type": "grammar", **fmt["grammar"]}


def nested_format(fmt: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``flat_format``: neutral → Chat."""
    if fmt.get("type") != "grammar" or "grammar" in fmt:
        return fmt
    return {"type": "grammar", "grammar": {k: v for k, v in fmt.items() if k != "type"}}


def _named(item: dict[str, Any], where: str) -> str:
    """The tool name in ``{"type":"function","function":{"name"}}`` / custom / flat forms."""
    typ = item.get("type", "function")
    inner = item.get(typ) if isinstance(typ, str) else None
    if isinstance(inner, dict):
        return req_str(inner, "name", f"{where}.{typ}")
    if typ not in ("function", "custom"):
        raise InvalidRequest(f"Invalid value for '{where}.type': expected 'function' or "
                             "'custom'.", param=f"{where}.type")
    return req_str(item, "name", where)


def parse_tool_choice(body: dict[str, Any]) -> ToolChoice | None:
    tc = body.get("tool_choice")
    where = "tool_choice"
    if tc is None:
        tc = body.get("function_call")
        where = "function_call"
        if tc is None:
            return None
    if isinstance(tc, str):
        if tc == "auto":
            return ToolChoice(mode="auto")
        if tc == "none":
            return ToolChoice(mode="none")
        if tc == "required" and where == "tool_choice":
            return ToolChoice(mode="required")
        raise InvalidRequest(f"Invalid value for '{where}': '{tc}'. Supported values are: "
                             "'none', 'auto' and 'required'.", param=where)
    tc = obj(tc, where)
    if where == "function_call":
        return ToolChoice(mode="tool", name=req_str(tc, "name", where))
    if tc.get("type") == "allowed_tools":
        at = tc.get("allowed_tools")
        if at is None:
            raise InvalidRequest("Missing required parameter: 'tool_choice.allowed_tools'.",
                                 param="tool_choice.allowed_tools")
        at = obj(at, "tool_choice.allowed_tools")
        mode = at.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise InvalidRequest("Invalid value for 'tool_choice.allowed_tools.mode': expected "
                                 "'auto' or 'required'.", param="tool_choice.allowed_tools.mode")
        raw = at.get("tools")
        if not isinstance(raw, list):
            raise bad("tool_choice.allowed_tools.tools", "an array")
        names = [_named(obj(t, f"tool_choice.allowed_tools.tools[{i}]"),
                        f"tool_choice.allowed_tools.tools[{i}]") for i, t in enumerate(raw)]
        return ToolChoice(mode="required" if mode == "required" else "auto", allowed=names)
    return ToolChoice(mode="tool", name=_named(tc, where))
