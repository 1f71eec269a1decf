"""Client → neutral: validate and parse a Messages (and count_tokens) request body.

Every malformed input raises ``InvalidRequest`` naming the field; nothing else escapes.
"""

from __future__ import annotations

import base64
from typing import Any

from ...core import (
    CacheControl,
    ChatRequest,
    File,
    HostedTool,
    Image,
    InvalidRequest,
    Message,
    Opaque,
    Part,
    Reasoning,
    RedactedThinking,
    ResponseFormat,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from ..fields import expect_object, optional, optional_number, require
from ..tool_args import arguments_from_object as arguments_from_input
from .wire import NAME, ORIGIN, TOOL_EXTRAS_KEY, is_opaque_block_type

KNOWN_FIELDS = frozenset({
    "model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p",
    "top_k", "stream", "metadata", "tools", "tool_choice", "thinking", "output_config",
})

_TOOL_FIELDS = frozenset({"name", "description", "input_schema", "cache_control", "strict",
                          "type"})


def parse_request(body: Any) -> ChatRequest:
    """Parse a ``POST /v1/messages`` body."""
    return _parse(body, count_tokens=False)


def parse_count_tokens_request(body: Any) -> ChatRequest:
    """Parse a ``POST /v1/messages/count_tokens`` body (``max_tokens`` not required)."""
    return _parse(body, count_tokens=True)


def _bad(msg: str, param: str) -> InvalidRequest:
    return InvalidRequest(msg, param=param)


def _parse(body: Any, *, count_tokens: bool) -> ChatRequest:
    body = expect_object(body)
    model = require(body, "model", str)
    if count_tokens:
        max_tokens = optional(body, "max_tokens", int)
    else:
        max_tokens = require(body, "max_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        raise _bad("max_tokens: must be greater than or equal to 1.", "max_tokens")

    raw_messages = require(body, "messages", list)
    if not raw_messages:
        raise _bad("messages: at least one message is required.", "messages")
    messages = _parse_messages(raw_messages)

    extra: dict[str, Any] = {k: v for k, v in body.items() if k not in KNOWN_FIELDS}

    system = _parse_system(body.get("system"))

    stop = optional(body, "stop_sequences", list)
    if stop is not None:
        for i, s in enumerate(stop):
            if not isinstance(s, str):
                raise _bad(f"stop_sequences[{i}]: expected a string.", f"stop_sequences[{i}]")

    temperature = optional_number(body, "temperature")
    top_p = optional_number(body, "top_p")
    top_k = optional(body, "top_k", int)
    stream = optional(body, "stream", bool)

    metadata = optional(body, "metadata", dict)
    user: str | None = None
    if metadata is not None:
        user = optional(metadata, "user_id", str, "metadata.")

    tools, hosted, tool_extras = _parse_tools(body.get("tools"))
    if tool_extras:
        extra[TOOL_EXTRAS_KEY] = tool_extras
    tool_choice, parallel = _parse_tool_choice(body.get("tool_choice"))

    reasoning, response_format = _parse_reasoning(body, extra)

    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=tools,
        hosted_tools=hosted,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        stop=stop,
        response_format=response_format,
        reasoning=reasoning,
        stream=bool(stream),
        metadata=metadata,
        user=user,
        dialect=NAME,
        extra=extra or None,
    )


# --- system --------------------------------------------------------------------------------


def _parse_system(raw: Any) -> list[Text] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return [Text(text=raw)]
    if not isinstance(raw, list):
        raise _bad("system: expected a string or an array of text blocks.", "system")
    out: list[Text] = []
    for i, block in enumerate(raw):
        where = f"system[{i}]"
        if not isinstance(block, dict):
            raise _bad(f"{where}: expected an object.", where)
        if block.get("type") != "text":
            raise _bad(f"{where}.type: system blocks must be of type 'text'.", f"{where}.type")
        out.append(_text(block, where))
    return out


# --- messages ------------------------------------------------------------------------------


def _parse_messages(raw: list[Any]) -> list[Message]:
    out: list[Message] = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _bad(f"{where}: expected an object.", where)
        role = m.get("role")
        if role not in ("user", "assistant", "system"):
            raise _bad(f"{where}.role: expected 'user', 'assistant' or 'system'.",
                       f"{where}.role")
        content = m.get("content")
        if content is None:
            raise _bad(f"Missing required parameter: '{where}.content'.", f"{where}.content")
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}]
            string_content = True
        elif isinstance(content, list):
            blocks = content
            string_content = False
        else:
            raise _bad(f"{where}.content: expected a string or an array of content blocks.",
                       f"{where}.content")
        if role == "system":
            parts: list[Part] = []
            for j, b in enumerate(blocks):
                bw = where if string_content else f"{where}.content[{j}]"
                if not isinstance(b, dict):
                    raise _bad(f"{bw}: expected an object.", bw)
                if b.get("type") != "text":
                    raise _bad(f"{bw}.type: system messages may only hold text blocks.",
                               f"{bw}.type")
                parts.append(_text(b, bw))
            out.append(Message(role="system", content=parts))
        elif role == "assistant":
            parts = [_assistant_block(b, f"{where}.content[{j}]") for j, b in enumerate(blocks)]
            if out and out[-1].role == "assistant":
                out[-1].content.extend(parts)  # the API merges consecutive turns
            else:
                out.append(Message(role="assistant", content=parts))
        else:
            results: list[Part] = []
            others: list[Part] = []
            for j, b in enumerate(blocks):
                p = _user_block(b, f"{where}.content[{j}]")
                (results if isinstance(p, ToolResult) else others).append(p)
            if results:
                if out and out[-1].role == "tool":
                    out[-1].content.extend(results)
                else:
                    out.append(Message(role="tool", content=results))
            if others or not results:
                out.append(Message(role="user", content=others))
    return out


def _block_type(b: Any, where: str) -> str:
    if not isinstance(b, dict):
        raise _bad(f"{where}: expected an object.", where)
    t = b.get("type")
    if not isinstance(t, str):
        raise _bad(f"{where}.type: expected a string.", f"{where}.type")
    return t


def _cache_control(b: dict[str, Any], where: str) -> CacheControl | None:
    cc = b.get("cache_control")
    if cc is None:
        return None
    if not isinstance(cc, dict):
        raise _bad(f"{where}.cache_control: expected an object.", f"{where}.cache_control")
    return cc


def _text(b: dict[str, Any], where: str) -> Text:
    return Text(text=require(b, "text", str, f"{where}."), cache_control=_cache_control(b, where))


def _user_block(b: Any, where: str) -> Part:
    t = _block_type(b, where)
    if t == "text":
        return _text(b, where)
    if t == "image":
        return _image(b, where)
    if t == "document":
        return _document(b, where)
    if t == "tool_result":
        return _tool_result(b, where)
    if is_opaque_block_type(t):
        return Opaque(dialect=NAME, data=b)
    if t in ("tool_use", "thinking", "redacted_thinking"):
        raise _bad(f"{where}.type: '{t}' blocks are only allowed in assistant messages.",
                   f"{where}.type")
    raise _bad(f"{where}.type: unsupported content block type '{t}'.", f"{where}.type")


def _assistant_block(b: Any, where: str) -> Part:
    t = _block_type(b, where)
    if t == "text":
        return _text(b, where)
    if t == "tool_use":
        tid = require(b, "id", str, f"{where}.")
        name = require(b, "name", str, f"{where}.")
        inp = b.get("input", {})
        if not isinstance(inp, dict):
            raise _bad(f"{where}.input: expected an object.", f"{where}.input")
        return ToolCall(id=tid, name=name, arguments=arguments_from_input(inp),
                        cache_control=_cache_control(b, where))
    if t == "thinking":
        text = require(b, "thinking", str, f"{where}.")
        sig = optional(b, "signature", str, f"{where}.")
        # Only a real signature makes the block replayable to Anthropic.
        return Thinking(text=text, signature=sig or None, origin=ORIGIN if sig else None)
    if t == "redacted_thinking":
        return RedactedThinking(data=require(b, "data", str, f"{where}."), origin=ORIGIN)
    if is_opaque_block_type(t):
        return Opaque(dialect=NAME, data=b)
    if t in ("tool_result", "image", "document"):
        raise _bad(f"{where}.type: '{t}' blocks are only allowed in user messages.",
                   f"{where}.type")
    raise _bad(f"{where}.type: unsupported content block type '{t}'.", f"{where}.type")


def _source(b: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
    src = require(b, "source", dict, f"{where}.")
    st = src.get("type")
    if not isinstance(st, str):
        raise _bad(f"{where}.source.type: expected a string.", f"{where}.source.type")
    return src, st


def _image(b: dict[str, Any], where: str) -> Part:
    src, st = _source(b, where)
    cc = _cache_control(b, where)
    sw = f"{where}.source."
    if st == "base64":
        mime = require(src, "media_type", str, sw)
        data = require(src, "data", str, sw)  # base64 checked by core.validate
        return Image(mime=mime, data=data, cache_control=cc)
    if st == "url":
        return Image(url=require(src, "url", str, sw), cache_control=cc)
    if st == "file":
        require(src, "file_id", str, sw)
        return Opaque(dialect=NAME, data=b)  # Files API reference: Anthropic-only
    raise _bad(f"{sw}type: unsupported image source type '{st}'.", f"{sw}type")


def _document(b: dict[str, Any], where: str) -> Part:
    src, st = _source(b, where)
    cc = _cache_control(b, where)
    title = optional(b, "title", str, f"{where}.")
    sw = f"{where}.source."
    if st == "base64":
        mime = require(src, "media_type", str, sw)
        data = require(src, "data", str, sw)
        return File(mime=mime, data=data, filename=title, cache_control=cc)
    if st == "text":
        text = require(src, "data", str, sw)
        mime = optional(src, "media_type", str, sw) or "text/plain"
        data = base64.b64encode(text.encode()).decode()
        return File(mime=mime, data=data, filename=title, cache_control=cc)
    if st == "url":
        return File(url=require(src, "url", str, sw), filename=title, cache_control=cc)
    if st == "file":
        return File(file_id=require(src, "file_id", str, sw), filename=title, cache_control=cc)
    if st == "content":
        require(src, "content", (list, str), sw)
        return Opaque(dialect=NAME, data=b)  # custom-content documents: Anthropic-only
    raise _bad(f"{sw}type: unsupported document source type '{st}'.", f"{sw}type")


def _tool_result(b: dict[str, Any], where: str) -> ToolResult:
    call_id = require(b, "tool_use_id", str, f"{where}.")
    is_error = optional(b, "is_error", bool, f"{where}.")
    raw = b.get("content")
    content: list[Text | Image | File] = []
    if isinstance(raw, str):
        content.append(Text(text=raw))
    elif isinstance(raw, list):
        for k, item in enumerate(raw):
            iw = f"{where}.content[{k}]"
            t = _block_type(item, iw)
            if t == "text":
                content.append(_text(item, iw))
                continue
            p: Part
            if t == "image":
                p = _image(item, iw)
            elif t == "document":
                p = _document(item, iw)
            else:
                raise _bad(f"{iw}.type: unsupported tool_result content type '{t}'.",
                           f"{iw}.type")
            if not isinstance(p, (Image, File)):
                raise _bad(f"{iw}.source.type: this source type is not supported inside "
                           "tool_result content.", f"{iw}.source.type")
            content.append(p)
    elif raw is not None:
        raise _bad(f"{where}.content: expected a string or an array of content blocks.",
                   f"{where}.content")
    return ToolResult(call_id=call_id, content=content, is_error=bool(is_error),
                      cache_control=_cache_control(b, where))


# --- tools -----------------------------------------------------------------------------------


def _parse_tools(
    raw: Any,
) -> tuple[list[Tool] | None, list[HostedTool] | None, dict[str, dict[str, Any]]]:
    if raw is None:
        return None, None, {}
    if not isinstance(raw, list):
        raise _bad("tools: expected an array.", "tools")
    tools: list[Tool] = []
    hosted: list[HostedTool] = []
    extras: dict[str, dict[str, Any]] = {}
    for i, t in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(t, dict):
            raise _bad(f"{where}: expected an object.", where)
        ttype = t.get("type")
        if ttype is not None and not isinstance(ttype, str):
            raise _bad(f"{where}.type: expected a string.", f"{where}.type")
        if ttype not in (None, "custom"):
            require(t, "name", str, f"{where}.")
            hosted.append(HostedTool(dialect=NAME, data=t))
            continue
        name = require(t, "name", str, f"{where}.")
        schema = require(t, "input_schema", dict, f"{where}.")
        tools.append(Tool(
            name=name,
            description=optional(t, "description", str, f"{where}."),
            parameters=schema,
            strict=optional(t, "strict", bool, f"{where}."),
            cache_control=_cache_control(t, where),
        ))
        if not _TOOL_FIELDS.issuperset(t):
            extras[name] = {k: v for k, v in t.items() if k not in _TOOL_FIELDS}
    return tools or None, hosted or None, extras


def _parse_tool_choice(raw: Any) -> tuple[ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise _bad("tool_choice: expected an object.", "tool_choice")
    t = raw.get("type")
    disable = optional(raw, "disable_parallel_tool_use", bool, "tool_choice.")
    parallel = None if disable is None else not disable
    if t == "auto":
        return ToolChoice(mode="auto"), parallel
    if t == "any":
        return ToolChoice(mode="required"), parallel
    if t == "none":
        return ToolChoice(mode="none"), parallel
    if t == "tool":
        return ToolChoice(mode="tool", name=require(raw, "name", str, "tool_choice.")), parallel
    raise _bad("tool_choice.type: expected 'auto', 'any', 'tool' or 'none'.", "tool_choice.type")


# --- thinking / output_config ----------------------------------------------------------------


def _parse_reasoning(
    body: dict[str, Any], extra: dict[str, Any]
) -> tuple[Reasoning | None, ResponseFormat | None]:
    reasoning: Reasoning | None = None
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise _bad("thinking: expected an object.", "thinking")
        tt = thinking.get("type")
        if not isinstance(tt, str):
            raise _bad("thinking.type: expected a string.", "thinking.type")
        display = optional(thinking, "display", str, "thinking.")
        if tt == "enabled":
            budget = require(thinking, "budget_tokens", int, "thinking.")
            reasoning = Reasoning(mode="enabled", budget_tokens=budget, summary=display)
        elif tt == "adaptive":
            reasoning = Reasoning(mode="adaptive", summary=display)
        elif tt == "disabled":
            reasoning = Reasoning(mode="disabled")
        else:
            extra["thinking"] = thinking  # a newer mode: forwarded to Anthropic as is
        if reasoning is not None:
            rest = {k: v for k, v in thinking.items()
                    if k not in ("type", "budget_tokens", "display")}
            if rest:
                extra["thinking"] = rest

    response_format: ResponseFormat | None = None
    oc = body.get("output_config")
    if oc is not None:
        if not isinstance(oc, dict):
            raise _bad("output_config: expected an object.", "output_config")
        rest = {k: v for k, v in oc.items() if k not in ("effort", "format")}
        effort = optional(oc, "effort", str, "output_config.")
        if effort is not None:
            if reasoning is None:
                reasoning = Reasoning(effort=effort)
            else:
                reasoning.effort = effort
        fmt = optional(oc, "format", dict, "output_config.")
        if fmt is not None:
            ftype = fmt.get("type")
            if ftype == "json_schema":
                schema = require(fmt, "schema", dict, "output_config.format.")
                response_format = ResponseFormat(type="json_schema", schema=schema)
            elif isinstance(ftype, str):
                rest["format"] = fmt
            else:
                raise _bad("output_config.format.type: expected a string.",
                           "output_config.format.type")
        if rest:
            extra["output_config"] = rest
    return reasoning, response_format
