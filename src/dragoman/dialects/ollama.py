"""Ollama's native chat API (``POST /api/chat``), upstream side only. Pure: no I/O.

egress: ``render_request``, ``parse_response``, ``StreamParser`` (one decoded NDJSON line
at a time), ``parse_error`` (``{"error": "..."}``).

Wire facts this translator is built on (providers.md § Ollama):

- ``stream`` defaults to true upstream: the body always says which one it wants.
- Images travel as raw base64 in the message's ``images``; Ollama cannot take a URL, so
  URL images must have been inlined before rendering (the provider fetches them) and a
  remaining one is refused here.
- Tool calls arrive whole, arguments as a JSON *object*, often without an ``id``: ids are
  synthesized. Tool results go back as ``role: "tool"`` messages carrying ``tool_name``
  (looked up from the call in the history) and ``tool_call_id``.
- Reasoning streams in ``message.thinking``; ``think`` turns it on or off (a bool here;
  the provider may turn it into a level for models that take one).
- ``done_reason`` is ``stop`` even when the turn called tools (→ ``tool_use``), ``length``
  when cut; usage is ``prompt_eval_count`` / ``eval_count`` on the ``done`` line.
- A failure after the 200 is a final ``{"error": "..."}`` line.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec

from ..core import (
    ChatRequest,
    ChatResponse,
    Collector,
    DragomanError,
    File,
    Finish,
    Image,
    InvalidRequest,
    Message,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    Thinking,
    ThinkingDelta,
    ThinkingEnd,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    TransportError,
    UpstreamError,
    Usage,
    UsageUpdate,
    error_for_status,
    new_id,
)
from .base import UpstreamDialect
from .tool_args import (
    CUSTOM_TOOL_SCHEMA,
    arguments_from_object,
    custom_input,
    custom_tool_description,
    object_from_arguments,
)

NAME = "ollama"

_decode = msgspec.json.decode

# --- request --------------------------------------------------------------------------------


def _text(parts: list[str]) -> str:
    return "\n\n".join(parts)


def _image(p: Image, where: str) -> str:
    if p.data is None:
        raise InvalidRequest(f"Ollama takes images inline only; the image at {where} is a URL "
                             "that was not fetched.", param=where)
    return p.data


def _call_names(messages: list[Message]) -> dict[str, str]:
    return {p.id: p.name for m in messages if m.role == "assistant"
            for p in m.content if isinstance(p, ToolCall)}


def _tool_message(r: ToolResult, names: dict[str, str], where: str) -> dict[str, Any]:
    texts = [p.text for p in r.content if isinstance(p, Text)]
    images = [_image(p, where) for p in r.content if isinstance(p, Image)]
    content = _text(texts)
    if r.is_error:
        content = "Error: " + content if content else "Error"
    msg: dict[str, Any] = {"role": "tool", "content": content}
    if images:
        msg["images"] = images
    name = names.get(r.call_id)
    if name:
        msg["tool_name"] = name
    msg["tool_call_id"] = r.call_id
    return msg


def _messages(req: ChatRequest, custom: Collection[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        out.append({"role": "system", "content": _text([t.text for t in req.system])})
    names = _call_names(req.messages)
    for i, m in enumerate(req.messages):
        where = f"messages[{i}]"
        texts: list[str] = []
        images: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        for p in m.content:
            if isinstance(p, ToolResult):
                out.append(_tool_message(p, names, where))
            elif isinstance(p, Text):
                texts.append(p.text)
            elif isinstance(p, Image):
                images.append(_image(p, where))
            elif isinstance(p, File):
                raise InvalidRequest(f"Ollama cannot take documents ({where}).", param=where)
            elif isinstance(p, Thinking) and m.role == "assistant" and p.text:
                thinking.append(p.text)
            elif isinstance(p, ToolCall) and m.role == "assistant":
                fn = {"name": p.name, "arguments": object_from_arguments(
                    p.arguments, p.kind == "custom" or p.name in custom)}
                calls.append({"id": p.id, "function": fn})
            # RedactedThinking / Opaque: nothing Ollama can replay
        if m.role == "tool" or (not texts and not images and not thinking and not calls
                                and any(isinstance(p, ToolResult) for p in m.content)):
            continue
        role = "system" if m.is_system else m.role
        msg: dict[str, Any] = {"role": role, "content": "".join(texts) if role == "assistant"
                               else _text(texts)}
        if images:
            msg["images"] = images
        if thinking:
            msg["thinking"] = "".join(thinking)
        if calls:
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def _tool_json(t: Tool) -> dict[str, Any]:
    if t.kind == "custom":
        fn: dict[str, Any] = {"name": t.name, "parameters": CUSTOM_TOOL_SCHEMA}
        desc = custom_tool_description(t)
    else:
        fn = {"name": t.name, "parameters": t.parameters or {"type": "object",
                                                             "properties": {}}}
        desc = t.description
    if desc:
        fn["description"] = desc
    return {"type": "function", "function": fn}


def _tools(req: ChatRequest) -> list[dict[str, Any]]:
    """Ollama has no ``tool_choice``: ``none`` sends no tools, ``allowed`` only those;
    ``required`` / a named tool cannot be enforced and fall back to offering the tools."""
    tc = req.tool_choice
    tools = req.tools or []
    if tc is not None:
        if tc.mode == "none":
            return []
        if tc.allowed is not None:
            tools = [t for t in tools if t.name in tc.allowed]
    return [_tool_json(t) for t in tools]


def think_value(req: ChatRequest) -> bool | None:
    """``think`` for the request: False when reasoning is off, True when asked for, None to
    leave the model's default."""
    r = req.reasoning
    if r is None:
        return None
    if r.mode == "disabled" or r.effort == "none":
        return False
    if r.mode is not None or r.effort is not None or r.budget_tokens is not None:
        return True
    return None


def render_request(req: ChatRequest) -> dict[str, Any]:
    custom = req.custom_tool_names()
    body: dict[str, Any] = {"model": req.model, "messages": _messages(req, custom),
                            "stream": req.stream}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    rf = req.response_format
    if rf is not None and rf.type != "text":
        body["format"] = rf.schema if rf.type == "json_schema" and rf.schema else "json"
    think = think_value(req)
    if think is not None:
        body["think"] = think
    options: dict[str, Any] = {}
    for key, val in (("temperature", req.temperature), ("top_p", req.top_p),
                     ("top_k", req.top_k), ("num_predict", req.max_tokens),
                     ("stop", req.stop or None), ("seed", req.seed)):
        if val is not None:
            options[key] = val
    if options:
        body["options"] = options
    return body


# --- answers ----------------------------------------------------------------------------------


def _int(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else 0


def usage_from_wire(obj: dict[str, Any]) -> Usage:
    return Usage(input_tokens=_int(obj.get("prompt_eval_count")),
                 output_tokens=_int(obj.get("eval_count")))


def stop_from_wire(reason: Any, has_calls: bool) -> StopReason:
    if reason == "length":
        return StopReason.MAX_TOKENS
    return StopReason.TOOL_USE if has_calls else StopReason.END_TURN


def _error_message(err: Any) -> str:
    if isinstance(err, str) and err:
        return err[:2000]
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return str(err["message"])[:2000]
    return "upstream error"


class StreamParser:
    """Decoded NDJSON lines → neutral events. The stream is complete at the ``done: true``
    line; ending without one is a cut stream.

    ``custom_tools`` names the request's free-text tools (emulated as a function with one
    ``input`` string) whose calls are turned back into custom calls."""

    __slots__ = ("_calls", "_custom", "_done", "_thinking")

    def __init__(self, custom_tools: Collection[str] = ()) -> None:
        self._custom = custom_tools
        self._calls = 0
        self._thinking = False
        self._done = False

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        if self._done:
            return []
        if isinstance(data, (str, bytes)):
            try:
                data = _decode(data)
            except (msgspec.DecodeError, ValueError):
                self._done = True
                return [StreamError(error=UpstreamError("upstream sent a line that is not JSON"))]
        if not isinstance(data, dict):
            self._done = True
            return [StreamError(error=UpstreamError("upstream sent a line that is not an "
                                                    "object"))]
        if data.get("error") is not None:
            self._done = True
            return [StreamError(error=UpstreamError(_error_message(data["error"])))]
        out: list[StreamEvent] = []
        msg = data.get("message")
        if isinstance(msg, dict):
            self._message(msg, out)
        if data.get("done") is True:
            self._end_thinking(out)
            self._done = True
            out.append(UsageUpdate(usage=usage_from_wire(data)))
            out.append(Finish(stop_reason=stop_from_wire(data.get("done_reason"),
                                                         self._calls > 0)))
        return out

    def close(self) -> list[StreamEvent]:
        if self._done:
            return []
        self._done = True
        return [StreamError(error=TransportError("upstream stream ended before completion"))]

    def _end_thinking(self, out: list[StreamEvent]) -> None:
        if self._thinking:
            self._thinking = False
            out.append(ThinkingEnd())

    def _message(self, msg: dict[str, Any], out: list[StreamEvent]) -> None:
        thinking = msg.get("thinking")
        if isinstance(thinking, str) and thinking:
            self._thinking = True
            out.append(ThinkingDelta(text=thinking))
        content = msg.get("content")
        if isinstance(content, str) and content:
            self._end_thinking(out)
            out.append(TextDelta(text=content))
        calls = msg.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                self._end_thinking(out)
                self._call(call, out)

    def _call(self, call: dict[str, Any], out: list[StreamEvent]) -> None:
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        name = fn.get("name")
        name = name if isinstance(name, str) else ""
        cid = call.get("id")
        cid = cid if isinstance(cid, str) and cid else new_id("call_")
        self._calls += 1
        args = fn.get("arguments")
        if isinstance(args, str):  # some models' templates give a JSON string
            try:
                args = _decode(args)
            except (msgspec.DecodeError, ValueError):
                args = {"input": args} if name in self._custom else args
        raw = custom_input(args) if name in self._custom else None
        if raw is not None:
            out.append(ToolCallStart(id=cid, name=name, kind="custom"))
            text = raw
        else:
            out.append(ToolCallStart(id=cid, name=name))
            text = args if isinstance(args, str) else arguments_from_object(args)
        if text:
            out.append(ToolCallDelta(id=cid, arguments=text))
        out.append(ToolCallEnd(id=cid))


def parse_response(body: Any, custom_tools: Collection[str] = ()) -> ChatResponse:
    """A non-stream answer: the same object as the last stream line, whole."""
    if not isinstance(body, dict):
        raise UpstreamError("upstream returned a malformed response body")
    if body.get("error") is not None:
        raise UpstreamError(_error_message(body["error"]))
    parser = StreamParser(custom_tools)
    c = Collector()
    events = parser.feed(None, {**body, "done": True})
    for ev in events:
        c.feed(ev)
    model = body.get("model")
    return c.response(new_id("ollama-"), model if isinstance(model, str) else "")


def parse_error(status: int, body: bytes) -> DragomanError:
    try:
        obj = _decode(body) if body else None
    except (msgspec.DecodeError, ValueError):
        obj = None
    if isinstance(obj, dict) and obj.get("error") is not None:
        message = _error_message(obj["error"])
    else:
        excerpt = " ".join(body[:200].decode("utf-8", "replace").split())
        message = f"upstream returned HTTP {status}" + (f": {excerpt}" if excerpt else "")
    return error_for_status(status, message)


DIALECT = UpstreamDialect(
    name=NAME,
    render_request=render_request,
    parse_response=parse_response,
    stream_parser=StreamParser,
    parse_error=parse_error,
)

__all__ = ["DIALECT", "NAME", "StreamParser", "parse_error", "parse_response",
           "render_request", "think_value"]
