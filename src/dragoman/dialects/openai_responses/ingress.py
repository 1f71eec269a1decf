"""``parse_request``: a client's Responses request body → ``ChatRequest``.

Every malformed input raises ``InvalidRequest`` naming the field; nothing else escapes.
"""

from __future__ import annotations

from typing import Any

from ...core import (
    ChatRequest,
    File,
    HostedTool,
    Image,
    InvalidRequest,
    Message,
    Opaque,
    Part,
    Reasoning,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from ..fields import expect_object, optional, optional_number, require
from .wire import NAME, ORIGIN, split_data

_KNOWN = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
    "reasoning", "max_output_tokens", "temperature", "top_p", "stream", "store",
    "previous_response_id", "metadata", "user",
})
_ROLES = ("user", "assistant", "system", "developer")


def _bad(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {what}.", param=param)


def _type_of(obj: dict[str, Any], where: str) -> str:
    typ = obj.get("type")
    if not isinstance(typ, str):
        raise InvalidRequest(f"Missing or invalid '{where}.type': expected a string.",
                             param=f"{where}.type")
    return typ


# --- input items --------------------------------------------------------------------------


class _Builder:
    """Groups items into the canonical messages: consecutive assistant-side items form one
    assistant message, consecutive tool outputs one tool message."""

    __slots__ = ("messages",)

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def add(self, role: str, parts: list[Part]) -> None:
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == role and role in ("assistant", "tool"):
            last.content.extend(parts)
        else:
            self.messages.append(Message(role=role, content=parts))  # type: ignore[arg-type]


def _part(p: Any, where: str) -> Part:
    if not isinstance(p, dict):
        raise InvalidRequest(f"Invalid type for '{where}': expected an object.", param=where)
    typ = _type_of(p, where)
    w = where + "."
    if typ in ("input_text", "output_text", "text"):
        return Text(text=require(p, "text", str, w))
    if typ == "refusal":
        return Text(text=require(p, "refusal", str, w))
    if typ == "input_image":
        url = optional(p, "image_url", str, w)
        detail = optional(p, "detail", str, w)
        if url is not None:
            if url.startswith("data:"):
                split = split_data(url)
                if split is None:
                    raise InvalidRequest("Image data URLs must be base64 encoded "
                                         "(data:<mime>;base64,...).", param=f"{w}image_url")
                return Image(mime=split[0], data=split[1], detail=detail)
            return Image(url=url, detail=detail)
        if optional(p, "file_id", str, w) is not None:
            return Opaque(dialect=NAME, data=p)
        raise InvalidRequest(f"'{where}' needs 'image_url' or 'file_id'.", param=f"{w}image_url")
    if typ == "input_file":
        file_data = optional(p, "file_data", str, w)
        file_id = optional(p, "file_id", str, w)
        file_url = optional(p, "file_url", str, w)
        filename = optional(p, "filename", str, w)
        if file_data is None and file_id is None and file_url is None:
            raise InvalidRequest(f"'{where}' needs 'file_data', 'file_id' or 'file_url'.",
                                 param=f"{w}file_data")
        mime = data = None
        if file_data is not None:
            split = split_data(file_data)
            mime, data = split if split is not None else (None, file_data)
        return File(mime=mime, data=data, url=file_url, file_id=file_id, filename=filename)
    raise _bad(f"{w}type", f"unsupported content part type {typ!r}")


def _content(item: dict[str, Any], where: str) -> list[Part]:
    content = item.get("content")
    if isinstance(content, str):
        return [Text(text=content)]
    if isinstance(content, list):
        return [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
    if content is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.content'.",
                             param=f"{where}.content")
    raise InvalidRequest(f"Invalid type for '{where}.content': expected a string or an array.",
                         param=f"{where}.content")


def _result(item: dict[str, Any], where: str, kind: str) -> ToolResult:
    call_id = require(item, "call_id", str, where + ".")
    output = item.get("output")
    content: list[Text | Image | File] = []
    if isinstance(output, str):
        if output:
            content.append(Text(text=output))
    elif isinstance(output, list):
        for j, p in enumerate(output):
            part = _part(p, f"{where}.output[{j}]")
            if not isinstance(part, (Text, Image, File)):
                raise _bad(f"{where}.output[{j}]", "images by file_id are not supported in "
                           "tool outputs")
            content.append(part)
    elif output is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.output'.",
                             param=f"{where}.output")
    else:
        raise InvalidRequest(f"Invalid type for '{where}.output': expected a string or an "
                             "array.", param=f"{where}.output")
    return ToolResult(call_id=call_id, content=content,
                      kind="custom" if kind == "custom" else "function")


def _reasoning_item(item: dict[str, Any], where: str) -> Thinking:
    texts: list[str] = []
    for key in ("summary", "content"):
        seq = item.get(key)
        if seq is None:
            continue
        if not isinstance(seq, list):
            raise InvalidRequest(f"Invalid type for '{where}.{key}': expected an array.",
                                 param=f"{where}.{key}")
        for k, s in enumerate(seq):
            if not isinstance(s, dict):
                raise InvalidRequest(f"Invalid type for '{where}.{key}[{k}]': expected an "
                                     "object.", param=f"{where}.{key}[{k}]")
            texts.append(require(s, "text", str, f"{where}.{key}[{k}]."))
        if texts:  # raw reasoning_text content only when there is no summary
            break
    return Thinking(text="\n\n".join(texts),
                    signature=optional(item, "encrypted_content", str, where + "."),
                    origin=ORIGIN, id=optional(item, "id", str, where + "."))


def _input(inp: Any) -> list[Message]:
    if inp is None:
        return []
    if isinstance(inp, str):
        return [Message(role="user", content=[Text(text=inp)])]
    if not isinstance(inp, list):
        raise InvalidRequest("Invalid type for 'input': expected a string or an array.",
                             param="input")
    b = _Builder()
    for i, item in enumerate(inp):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid type for '{where}': expected an object.", param=where)
        typ = item.get("type")
        if typ is None and "role" in item:
            typ = "message"
        else:
            typ = _type_of(item, where)
        w = where + "."
        if typ == "message":
            role = item.get("role")
            if not isinstance(role, str) or role not in _ROLES:
                raise _bad(f"{w}role", "expected one of 'user', 'assistant', 'system', "
                           "'developer'")
            b.add(role, _content(item, where))
        elif typ == "reasoning":
            b.add("assistant", [_reasoning_item(item, where)])
        elif typ == "function_call":
            args = optional(item, "arguments", str, w)
            b.add("assistant", [ToolCall(id=require(item, "call_id", str, w),
                                         name=require(item, "name", str, w),
                                         arguments=args or "")])
        elif typ == "custom_tool_call":
            raw = optional(item, "input", str, w)
            b.add("assistant", [ToolCall(id=require(item, "call_id", str, w),
                                         name=require(item, "name", str, w),
                                         arguments=raw or "", kind="custom")])
        elif typ == "function_call_output":
            b.add("tool", [_result(item, where, "function")])
        elif typ == "custom_tool_call_output":
            b.add("tool", [_result(item, where, "custom")])
        else:
            # hosted-tool items, item_reference, compaction…: replayed verbatim to a
            # Responses upstream only. Ids are dropped (stateless upstream) except where
            # the id is the item.
            data = item if typ == "item_reference" else {
                k: v for k, v in item.items() if k != "id"}
            b.add("assistant", [Opaque(dialect=NAME, data=data)])
    return b.messages


# --- tools --------------------------------------------------------------------------------


def _tool(t: dict[str, Any], where: str, ns: str | None, ns_desc: str | None) -> Tool:
    w = where + "."
    name = require(t, "name", str, w)
    desc = optional(t, "description", str, w)
    if t.get("type") == "custom":
        return Tool(name=name, description=desc, kind="custom",
                    format=optional(t, "format", dict, w), namespace=ns,
                    namespace_description=ns_desc)
    return Tool(name=name, description=desc, parameters=optional(t, "parameters", dict, w),
                strict=optional(t, "strict", bool, w), namespace=ns,
                namespace_description=ns_desc)


def _tools(v: Any) -> tuple[list[Tool] | None, list[HostedTool] | None]:
    if v is None:
        return None, None
    if not isinstance(v, list):
        raise InvalidRequest("Invalid type for 'tools': expected an array.", param="tools")
    tools: list[Tool] = []
    hosted: list[HostedTool] = []
    for i, t in enumerate(v):
        where = f"tools[{i}]"
        if not isinstance(t, dict):
            raise InvalidRequest(f"Invalid type for '{where}': expected an object.", param=where)
        typ = _type_of(t, where)
        if typ in ("function", "custom"):
            tools.append(_tool(t, where, None, None))
        elif typ == "namespace":
            name = require(t, "name", str, where + ".")
            desc = optional(t, "description", str, where + ".")
            sub = require(t, "tools", list, where + ".")
            if all(isinstance(s, dict) and s.get("type") in ("function", "custom")
                   for s in sub):
                tools.extend(_tool(s, f"{where}.tools[{j}]", name, desc)
                             for j, s in enumerate(sub))
            else:  # a namespace of hosted tools has no neutral form: pass it through
                hosted.append(HostedTool(dialect=NAME, data=t))
        else:  # web_search, file_search, mcp, local_shell, tool_search, anything new
            hosted.append(HostedTool(dialect=NAME, data=t))
    return tools or None, hosted or None


def _tool_choice(v: Any) -> tuple[ToolChoice | None, Any]:
    """The neutral choice, or (None, raw) for a hosted-tool choice kept in ``extra``."""
    if v is None:
        return None, None
    if isinstance(v, str):
        if v in ("auto", "none", "required"):
            return ToolChoice(mode=v), None  # type: ignore[arg-type]
        raise _bad("tool_choice", "expected 'none', 'auto', 'required' or an object")
    if not isinstance(v, dict):
        raise InvalidRequest("Invalid type for 'tool_choice': expected a string or an object.",
                             param="tool_choice")
    typ = _type_of(v, "tool_choice")
    if typ in ("function", "custom"):
        return ToolChoice(mode="tool", name=require(v, "name", str, "tool_choice.")), None
    if typ == "allowed_tools":
        mode = v.get("mode")
        if mode not in ("auto", "required"):
            raise _bad("tool_choice.mode", "expected 'auto' or 'required'")
        allowed = require(v, "tools", list, "tool_choice.")
        names: list[str] = []
        for j, t in enumerate(allowed):
            if not isinstance(t, dict):
                raise InvalidRequest(f"Invalid type for 'tool_choice.tools[{j}]': expected an "
                                     "object.", param=f"tool_choice.tools[{j}]")
            name = t.get("name")
            if isinstance(name, str):
                names.append(name)
        return ToolChoice(mode=mode, allowed=names), None
    return None, v


# --- text format, reasoning ---------------------------------------------------------------


def _format(f: Any) -> ResponseFormat:
    if not isinstance(f, dict):
        raise InvalidRequest("Invalid type for 'text.format': expected an object.",
                             param="text.format")
    typ = _type_of(f, "text.format")
    if typ in ("text", "json_object"):
        return ResponseFormat(type=typ)  # type: ignore[arg-type]
    if typ == "json_schema":
        w = "text.format."
        return ResponseFormat(type="json_schema", name=require(f, "name", str, w),
                              schema=require(f, "schema", dict, w),
                              strict=optional(f, "strict", bool, w),
                              description=optional(f, "description", str, w))
    raise _bad("text.format.type", "expected 'text', 'json_object' or 'json_schema'")


def _reasoning(v: Any) -> Reasoning | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise InvalidRequest("Invalid type for 'reasoning': expected an object.",
                             param="reasoning")
    effort = optional(v, "effort", str, "reasoning.")
    summary = optional(v, "summary", str, "reasoning.")
    legacy = optional(v, "generate_summary", str, "reasoning.")
    summary = summary if summary is not None else legacy
    if effort is None and summary is None:
        return None
    return Reasoning(effort=effort, summary=summary)


# --- request --------------------------------------------------------------------------------


def parse_request(body: Any) -> ChatRequest:
    body = expect_object(body)
    model = require(body, "model", str)
    messages = _input(body.get("input"))
    instructions = optional(body, "instructions", str)
    tools, hosted = _tools(body.get("tools"))
    tool_choice, raw_choice = _tool_choice(body.get("tool_choice"))
    max_tokens = optional(body, "max_output_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        raise _bad("max_output_tokens", "expected an integer >= 1")

    extra = {k: v for k, v in body.items() if k not in _KNOWN and v is not None}
    if raw_choice is not None:
        extra["tool_choice"] = raw_choice
    response_format = None
    text = optional(body, "text", dict)
    if text is not None:
        if text.get("format") is not None:
            response_format = _format(text["format"])
        rest = {k: v for k, v in text.items() if k != "format" and v is not None}
        if rest:
            extra["text"] = rest

    return ChatRequest(
        model=model,
        messages=messages,
        system=[Text(text=instructions)] if instructions is not None else None,
        tools=tools,
        hosted_tools=hosted,
        tool_choice=tool_choice,
        parallel_tool_calls=optional(body, "parallel_tool_calls", bool),
        max_tokens=max_tokens,
        temperature=optional_number(body, "temperature"),
        top_p=optional_number(body, "top_p"),
        response_format=response_format,
        reasoning=_reasoning(body.get("reasoning")),
        stream=bool(optional(body, "stream", bool)),
        metadata=optional(body, "metadata", dict),
        user=optional(body, "user", str),
        store=optional(body, "store", bool),
        previous_response_id=optional(body, "previous_response_id", str),
        dialect=NAME,
        extra=extra or None,
    )
