"""Parse a client's Chat Completions request body into a neutral ``ChatRequest``.

Every malformed input raises ``InvalidRequest`` naming the offending field; nothing else
escapes. Unknown top-level fields are kept in ``ChatRequest.extra``.
"""

from __future__ import annotations

from typing import Any

from ...core import (
    ChatRequest,
    File,
    Image,
    InvalidRequest,
    Message,
    Part,
    Reasoning,
    Refusal,
    ResponseFormat,
    ResultContent,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    new_id,
)
from ..data_urls import split_data_url
from ..framing import compact_json
from ._validate import bad, obj, opt, opt_number, opt_tokens, req_str
from .tools import parse_tool_choice, parse_tools
from .wire import NAME

#: Top-level fields this module maps; everything else goes to ``extra``.
_KNOWN = frozenset({
    "model", "messages", "stream", "stream_options", "max_completion_tokens", "max_tokens",
    "n", "stop", "temperature", "top_p", "seed", "user", "metadata", "reasoning_effort",
    "response_format", "tools", "tool_choice", "parallel_tool_calls", "functions",
    "function_call",
})

#: The optional ones among them: a body with none of these is read by a shorter path.
_OPTIONAL = _KNOWN - {"model", "messages", "stream", "stream_options"}

# --- content ------------------------------------------------------------------------------


def _text_of(part: dict[str, Any], where: str, key: str = "text") -> str:
    val = part.get(key)
    if not isinstance(val, str):
        if val is None:
            raise InvalidRequest(f"Missing required parameter: '{where}.{key}'.",
                                 param=f"{where}.{key}")
        raise bad(f"{where}.{key}", "a string")
    return val


def _image(part: dict[str, Any], where: str) -> Image:
    raw = part.get("image_url")
    param = f"{where}.image_url"
    detail: str | None = None
    if isinstance(raw, str):  # lenient: some clients send the URL directly
        url = raw
    elif isinstance(raw, dict):
        url = req_str(raw, "url", param)
        detail = opt(raw, "detail", str, param)
        param += ".url"
    elif raw is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    else:
        raise bad(param, "an object")
    if url.startswith("data:"):
        try:
            split = split_data_url(url)
        except InvalidRequest as e:
            raise InvalidRequest(e.message, param=param) from None
        assert split is not None
        mime, data = split  # its base64 is checked for every dialect (core.validate)
        return Image(mime=mime, data=data, detail=detail)
    if not url:
        raise InvalidRequest(f"Invalid '{param}': empty URL.", param=param)
    return Image(url=url, detail=detail)


def _file(part: dict[str, Any], where: str) -> File:
    param = f"{where}.file"
    f = part.get("file")
    if f is None:
        raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    f = obj(f, param)
    file_data = opt(f, "file_data", str, param)
    file_id = opt(f, "file_id", str, param)
    filename = opt(f, "filename", str, param)
    if file_data is not None:
        if file_data.startswith("data:"):
            try:
                split = split_data_url(file_data)
            except InvalidRequest as e:
                raise InvalidRequest(e.message.replace("Image", "File"),
                                     param=f"{param}.file_data") from None
            assert split is not None
            mime, data = split
            return File(mime=mime, data=data, filename=filename, file_id=file_id)
        return File(data=file_data, filename=filename, file_id=file_id)
    if file_id is not None:
        return File(file_id=file_id, filename=filename)
    raise InvalidRequest(f"'{param}' needs 'file_data' or 'file_id'.", param=param)


_SYSTEM_PARTS = frozenset({"text"})
_USER_PARTS = frozenset({"text", "image_url", "file", "input_audio"})
_ASSISTANT_PARTS = frozenset({"text", "refusal"})


def _content(m: dict[str, Any], where: str, allowed: frozenset[str],
             required: bool = True) -> list[Part]:
    """``content`` as neutral parts. A string becomes one Text (none when empty)."""
    raw = m.get("content")
    param = f"{where}.content"
    if raw is None:
        if required:
            raise InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
        return []
    if isinstance(raw, str):
        return [Text(text=raw)] if raw else []
    if not isinstance(raw, list):
        raise bad(param, "a string or an array of content parts")
    parts: list[Part] = []
    for j, item in enumerate(raw):
        pw = f"{param}[{j}]"
        item = obj(item, pw)
        typ = item.get("type")
        if not isinstance(typ, str):
            if typ is None:
                raise InvalidRequest(f"Missing required parameter: '{pw}.type'.",
                                     param=f"{pw}.type")
            raise bad(f"{pw}.type", "a string")
        if typ not in allowed:
            raise InvalidRequest(
                f"Invalid value for '{pw}.type': '{typ}' is not supported here; expected one of "
                + ", ".join(sorted(allowed - {"input_audio"})) + ".", param=f"{pw}.type")
        if typ == "text":
            parts.append(Text(text=_text_of(item, pw)))
        elif typ == "refusal":
            parts.append(Refusal(text=_text_of(item, pw, "refusal")))
        elif typ == "image_url":
            parts.append(_image(item, pw))
        elif typ == "file":
            parts.append(_file(item, pw))
        else:  # input_audio
            raise InvalidRequest("audio input is not supported", param=f"{pw}.type")
    return parts


# --- tool calls -----------------------------------------------------------------------------


def _arguments(val: Any, param: str) -> str:
    if val is None:
        return ""
    if isinstance(val, str):
        return val
    if isinstance(val, (dict, list)):  # lenient: some clients send the object itself
        return compact_json(val)
    raise bad(param, "a string")


def _tool_call(tc: Any, where: str) -> ToolCall:
    tc = obj(tc, where)
    call_id = req_str(tc, "id", where)
    typ = tc.get("type", "function")
    if typ == "function":
        fn = tc.get("function")
        if fn is None:
            raise InvalidRequest(f"Missing required parameter: '{where}.function'.",
                                 param=f"{where}.function")
        fn = obj(fn, f"{where}.function")
        name = req_str(fn, "name", f"{where}.function")
        args = _arguments(fn.get("arguments"), f"{where}.function.arguments")
        return ToolCall(id=call_id, name=name, arguments=args)
    if typ == "custom":
        c = tc.get("custom")
        if c is None:
            raise InvalidRequest(f"Missing required parameter: '{where}.custom'.",
                                 param=f"{where}.custom")
        c = obj(c, f"{where}.custom")
        name = req_str(c, "name", f"{where}.custom")
        inp = opt(c, "input", str, f"{where}.custom") or ""
        return ToolCall(id=call_id, name=name, arguments=inp, kind="custom")
    raise InvalidRequest(f"Invalid value for '{where}.type': expected 'function' or 'custom'.",
                         param=f"{where}.type")


class _Calls:
    """What earlier assistant turns called: kinds by id, and ids of deprecated
    ``function_call`` turns awaiting their ``function`` result, by name."""

    __slots__ = ("kinds", "pending")

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}
        self.pending: dict[str, list[str]] = {}


def _assistant(m: dict[str, Any], where: str, calls: _Calls) -> Message:
    parts: list[Part] = []
    for key in ("reasoning_content", "reasoning"):  # non-standard echo of reasoning text
        r = m.get(key)
        if isinstance(r, str) and r:
            parts.append(Thinking(text=r))
            break
    parts.extend(_content(m, where, _ASSISTANT_PARTS, required=False))
    refusal = opt(m, "refusal", str, where)
    if refusal:
        parts.append(Refusal(text=refusal))
    raw_calls = m.get("tool_calls")
    if raw_calls is not None:
        if not isinstance(raw_calls, list):
            raise bad(f"{where}.tool_calls", "an array")
        for k, tc in enumerate(raw_calls):
            call = _tool_call(tc, f"{where}.tool_calls[{k}]")
            calls.kinds[call.id] = call.kind
            parts.append(call)
    fc = m.get("function_call")
    if fc is not None:
        fc = obj(fc, f"{where}.function_call")
        name = req_str(fc, "name", f"{where}.function_call")
        call = ToolCall(id=new_id("call_"), name=name,
                        arguments=_arguments(fc.get("arguments"),
                                             f"{where}.function_call.arguments"))
        calls.pending.setdefault(name, []).append(call.id)
        parts.append(call)
    return Message(role="assistant", content=parts, name=opt(m, "name", str, where))


def _tool_result(m: dict[str, Any], where: str, role: str, calls: _Calls) -> ToolResult:
    if role == "tool":
        call_id = req_str(m, "tool_call_id", where)
        content = _content(m, where, _USER_PARTS, required=False)
    else:  # deprecated "function" role: answers the last function_call of that name
        name = req_str(m, "name", where)
        pending = calls.pending.get(name)
        call_id = pending.pop(0) if pending else new_id("call_")
        content = _content(m, where, _SYSTEM_PARTS, required=False)
    parts: list[ResultContent] = [p for p in content if isinstance(p, (Text, Image, File))]
    if calls.kinds.get(call_id) == "custom":
        return ToolResult(call_id=call_id, content=parts, kind="custom")
    return ToolResult(call_id=call_id, content=parts)


#: roles whose plain-text turn is parsed without the general branches (``_messages``)
_PLAIN_ROLES = frozenset({"user", "system", "developer", "assistant"})


def _messages(raw: Any) -> list[Message]:
    if raw is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(raw, list):
        raise bad("messages", "an array")
    if not raw:
        raise InvalidRequest("Invalid 'messages': empty array. Expected an array with minimum "
                             "length 1.", param="messages")
    out: list[Message] = []
    calls = _Calls()
    for i, m in enumerate(raw):
        # The commonest turn, ``{"role": …, "content": "text"}`` and nothing else, is
        # what the general branches below make of it, with no validator call and no field
        # path built (a path is only needed for an error).
        if type(m) is dict and len(m) == 2:
            role, content = m.get("role"), m.get("content")
            if type(content) is str and type(role) is str and role in _PLAIN_ROLES:
                parts: list[Part] = [Text(text=content)] if content else []
                if role != "assistant":
                    out.append(Message(role=role, content=parts))  # type: ignore[arg-type]
                elif out and out[-1].role == "assistant":
                    out[-1].content.extend(parts)
                else:
                    out.append(Message(role="assistant", content=parts))
                continue
        where = f"messages[{i}]"
        m = obj(m, where)
        role = m.get("role")
        if not isinstance(role, str):
            if role is None:
                raise InvalidRequest(f"Missing required parameter: '{where}.role'.",
                                     param=f"{where}.role")
            raise bad(f"{where}.role", "a string")
        if role == "system" or role == "developer":
            out.append(Message(role="system" if role == "system" else "developer",
                               content=_content(m, where, _SYSTEM_PARTS),
                               name=opt(m, "name", str, where) if "name" in m else None))
        elif role == "user":
            out.append(Message(role="user", content=_content(m, where, _USER_PARTS),
                               name=opt(m, "name", str, where) if "name" in m else None))
        elif role == "assistant":
            msg = _assistant(m, where, calls)
            if out and out[-1].role == "assistant":
                out[-1].content.extend(msg.content)
            else:
                out.append(msg)
        elif role == "tool" or role == "function":
            result = _tool_result(m, where, role, calls)
            if out and out[-1].role == "tool":
                out[-1].content.append(result)
            else:
                out.append(Message(role="tool", content=[result]))
        else:
            raise InvalidRequest(
                f"Invalid value for '{where}.role': '{role}'. Supported values are: 'system', "
                "'developer', 'user', 'assistant', 'tool' and 'function'.",
                param=f"{where}.role")
    return out


def _response_format(body: dict[str, Any]) -> ResponseFormat | None:
    rf = opt(body, "response_format", dict)
    if rf is None:
        return None
    typ = rf.get("type")
    if typ == "text" or typ == "json_object":
        return ResponseFormat(type=typ)
    if typ == "json_schema":
        js = rf.get("json_schema")
        if js is None:
            raise InvalidRequest("Missing required parameter: 'response_format.json_schema'.",
                                 param="response_format.json_schema")
        js = obj(js, "response_format.json_schema")
        w = "response_format.json_schema"
        return ResponseFormat(type="json_schema", name=opt(js, "name", str, w),
                              schema=opt(js, "schema", dict, w),
                              strict=opt(js, "strict", bool, w),
                              description=opt(js, "description", str, w))
    raise InvalidRequest("Invalid value for 'response_format.type': expected 'text', "
                         "'json_object' or 'json_schema'.", param="response_format.type")


def _stop(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop or None
    raise bad("stop", "a string or an array of strings")


# --- the request ----------------------------------------------------------------------------


def parse_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    # A missing model is "" here: the server decides (a configured default model, or the
    # 400 "Missing required parameter" OpenAI answers).
    model = body.get("model")
    if type(model) is not str:  # (a string, the common case, needs no validator call)
        model = opt(body, "model", str) or ""
    messages = _messages(body.get("messages"))
    # (an optional field the body does not have costs no call: most have a few)
    n = opt(body, "n", int) if "n" in body else None
    if n is not None and n != 1:
        raise InvalidRequest("Only n=1 is supported." if n > 1 else
                             "Invalid 'n': integer below minimum value 1.", param="n")
    stream = body.get("stream")
    if type(stream) is not bool:
        stream = bool(opt(body, "stream", bool))
    # (most bodies have only known fields: one C-level test instead of a comprehension)
    extra = {} if _KNOWN.issuperset(body) else \
        {k: v for k, v in body.items() if k not in _KNOWN}
    include_usage = False
    so = opt(body, "stream_options", dict) if "stream_options" in body else None
    if so is not None:
        include_usage = bool(opt(so, "include_usage", bool, "stream_options"))
        rest = {k: v for k, v in so.items() if k != "include_usage"}
        if rest:  # e.g. include_obfuscation: forwarded to a Chat upstream
            extra["stream_options"] = rest
    if _OPTIONAL.isdisjoint(body):  # (no optional field to read: one C-level test)
        return ChatRequest(model=model, messages=messages, stream=stream,
                           include_usage=include_usage and stream, dialect=NAME,
                           extra=extra or None)
    max_tokens = opt_tokens(body, "max_completion_tokens") \
        if "max_completion_tokens" in body else None
    legacy_max = opt_tokens(body, "max_tokens") if "max_tokens" in body else None
    effort = opt(body, "reasoning_effort", str) if "reasoning_effort" in body else None
    # (the tools module runs only for a body that has tools: most requests have none)
    tools, hosted = parse_tools(body) if "tools" in body or "functions" in body \
        else (None, None)
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        hosted_tools=hosted,
        tool_choice=parse_tool_choice(body)
        if "tool_choice" in body or "function_call" in body else None,
        parallel_tool_calls=opt(body, "parallel_tool_calls", bool)
        if "parallel_tool_calls" in body else None,
        max_tokens=max_tokens if max_tokens is not None else legacy_max,
        temperature=opt_number(body, "temperature") if "temperature" in body else None,
        top_p=opt_number(body, "top_p") if "top_p" in body else None,
        stop=_stop(body) if "stop" in body else None,
        seed=opt(body, "seed", int) if "seed" in body else None,
        response_format=_response_format(body) if "response_format" in body else None,
        reasoning=Reasoning(effort=effort) if effort is not None else None,
        stream=stream,
        include_usage=include_usage and stream,
        metadata=opt(body, "metadata", dict) if "metadata" in body else None,
        user=opt(body, "user", str) if "user" in body else None,
        dialect=NAME,
        extra=extra or None,
    )
