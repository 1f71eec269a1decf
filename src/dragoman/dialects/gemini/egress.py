"""Neutral → upstream: a ``generateContent`` request body (Gemini API and Vertex AI).

Layout decisions (docs/translation.md, "Gemini"):

* every system/developer text (request-level first, then system messages in order) becomes
  ``systemInstruction``; roles are ``user`` / ``model``, tool results are
  ``functionResponse`` parts of a ``user`` turn, and consecutive turns of one role merge;
* a Gemini ``thoughtSignature`` lives in the neutral model as a ``Thinking`` part
  (``origin="gemini"``) placed right before the part that carried it, and goes back on
  that part; thought text is not sent back (Gemini does not read it);
* the first ``functionCall`` of a model turn that has no signature gets Google's
  documented ``skip_thought_signature_validator`` (Gemini 3 refuses such history else);
* ids dragoman synthesized for calls Gemini sent without one are not sent back; results
  find their call's name by id, else by position among the previous turn's calls.

URL media: ``gs://`` and any other URL still present become ``fileData``; the provider
inlines the URLs Gemini should not fetch itself before rendering.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from ...core import (
    ChatRequest,
    File,
    Image,
    InvalidRequest,
    Message,
    Opaque,
    Part,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolResult,
)
from ..data_urls import split_data_url
from ..effort import budget_for_effort
from ..tool_args import CUSTOM_TOOL_SCHEMA, custom_tool_description, object_from_arguments
from .wire import NAME, ORIGIN, SKIP_SIGNATURE, is_synthesized

_MAGIC = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"),
          ("UklGR", "image/webp"), ("JVBERi0", "application/pdf"))


def render_request(req: ChatRequest) -> dict[str, Any]:
    """The ``generateContent`` / ``streamGenerateContent`` body (the model and the stream
    flag travel in the URL, not the body)."""
    system: list[dict[str, Any]] = [{"text": t.text} for t in req.system or () if t.text]
    body: dict[str, Any] = {"contents": _render_contents(req.messages, system)}
    if system:
        body["systemInstruction"] = {"parts": system}

    tools, tool_config = _render_tools(req)
    if tools:
        body["tools"] = tools
        if tool_config is not None:
            body["toolConfig"] = tool_config

    gen = _generation_config(req)
    if gen:
        body["generationConfig"] = gen
    return body


# --- generation config ------------------------------------------------------------------


def _generation_config(req: ChatRequest) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    if req.max_tokens is not None:
        gen["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        gen["temperature"] = req.temperature
    if req.top_p is not None:
        gen["topP"] = req.top_p
    if req.top_k is not None:
        gen["topK"] = req.top_k
    if req.stop:
        gen["stopSequences"] = list(req.stop)
    if req.seed is not None:
        gen["seed"] = req.seed
    rf = req.response_format
    if rf is not None and rf.type != "text":
        gen["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema is not None:
            gen["responseJsonSchema"] = rf.schema
    thinking = _thinking_config(req)
    if thinking is not None:
        gen["thinkingConfig"] = thinking
    return gen


def _thinking_config(req: ChatRequest) -> dict[str, Any] | None:
    """Reasoning → ``thinkingConfig``: a budget (effort levels via the shared table,
    mapping.md §5), ``-1`` (dynamic) for adaptive, ``0`` for off. Thoughts are asked for
    whenever thinking is on, so clients see the summaries."""
    r = req.reasoning
    if r is None:
        return None
    if r.mode == "disabled" or r.effort == "none":
        return {"thinkingBudget": 0}
    budget: int | None = r.budget_tokens
    if budget is None and r.effort is not None:
        budget = budget_for_effort(r.effort, req.max_tokens)
    if budget is None:
        if r.mode is None and r.effort is None:
            # Only a summary setting: keep the model's own thinking, show its thoughts.
            return {"includeThoughts": True} if r.summary not in (None, "none") else None
        budget = -1  # adaptive, or an effort too large for max_tokens: let the model decide
    return {"thinkingBudget": budget, "includeThoughts": True}


# --- tools --------------------------------------------------------------------------------


def _render_tools(req: ChatRequest) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    tc = req.tool_choice
    allowed = tc.allowed if tc is not None else None
    decls: list[dict[str, Any]] = []
    for t in req.tools or ():
        if allowed is not None and tc is not None and tc.mode != "required" \
                and t.name not in allowed:
            continue  # ``allowedFunctionNames`` only works with ANY: narrow the list instead
        decls.append(_declaration(t))
    if not decls:
        return [], None
    config: dict[str, Any] | None = None
    if tc is not None:
        if tc.mode == "none":
            config = {"mode": "NONE"}
        elif tc.mode == "tool" and tc.name is not None:
            config = {"mode": "ANY", "allowedFunctionNames": [tc.name]}
        elif tc.mode == "required":
            config = {"mode": "ANY"}
            if allowed is not None:
                config["allowedFunctionNames"] = list(allowed)
        else:
            config = {"mode": "AUTO"}
    tool_config = {"functionCallingConfig": config} if config is not None else None
    return [{"functionDeclarations": decls}], tool_config


def _declaration(t: Tool) -> dict[str, Any]:
    d: dict[str, Any] = {"name": t.name}
    if t.kind == "custom":
        desc = custom_tool_description(t)
        if desc:
            d["description"] = desc
        d["parametersJsonSchema"] = CUSTOM_TOOL_SCHEMA
        return d
    if t.description:
        d["description"] = t.description
    if t.parameters is not None:
        d["parametersJsonSchema"] = t.parameters
    return d


# --- contents -----------------------------------------------------------------------------


class _Contents:
    """Builds ``contents``: merges consecutive turns of one role, remembers every call's
    name by id (a ``functionResponse`` must name its function) and the latest model turn's
    calls (for results whose id is unknown: matched by position)."""

    __slots__ = ("last_calls", "names", "out")

    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self.names: dict[str, str] = {}
        self.last_calls: list[ToolCall] = []

    def push(self, role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self.out and self.out[-1]["role"] == role:
            self.out[-1]["parts"].extend(parts)
        else:
            self.out.append({"role": role, "parts": parts})


def _render_contents(messages: list[Message], system: list[dict[str, Any]]) -> list[Any]:
    c = _Contents()
    for m in messages:
        if m.is_system:
            system.extend({"text": p.text} for p in m.content if isinstance(p, Text) and p.text)
        elif m.role == "assistant":
            c.push("model", _model_parts(m.content, c))
        else:
            c.push("user", _user_parts(m.content, c))
    return c.out


def _model_parts(content: list[Part], c: _Contents) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    pending: str | None = None  # a signature waiting for the part it belongs to
    first_call: dict[str, Any] | None = None
    calls: list[ToolCall] = []
    for p in content:
        if isinstance(p, Thinking):
            if p.origin == ORIGIN and p.signature:
                pending = p.signature
            continue  # thought text is not sent back; other families' proofs never
        out: dict[str, Any] | None
        if isinstance(p, Text):
            out = {"text": p.text} if p.text else None
        elif isinstance(p, ToolCall):
            call: dict[str, Any] = {
                "name": p.name, "args": object_from_arguments(p.arguments, p.kind == "custom")}
            if not is_synthesized(p.id):
                call["id"] = p.id
            out = {"functionCall": call}
            c.names[p.id] = p.name
            calls.append(p)
        elif isinstance(p, Opaque):
            out = dict(p.data) if p.dialect == NAME else None
        else:
            out = None  # images, files, results have no place in a model turn
        if out is None:
            continue
        if pending is not None:
            out["thoughtSignature"] = pending
            pending = None
        if first_call is None and "functionCall" in out:
            first_call = out
        parts.append(out)
    if pending is not None:
        # A trailing signature (Gemini sends it on the final, often empty, text part):
        # back on the last part that has none. Empty text parts are refused by Vertex.
        for out in reversed(parts):
            if "thoughtSignature" not in out:
                out["thoughtSignature"] = pending
                break
    if first_call is not None and "thoughtSignature" not in first_call:
        first_call["thoughtSignature"] = SKIP_SIGNATURE
    if calls:
        c.last_calls = calls
    return parts


def _user_parts(content: list[Part], c: _Contents) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []  # images returned by tools follow the responses
    parts: list[dict[str, Any]] = []
    n_result = 0
    for p in content:
        if isinstance(p, ToolResult):
            results.append(_function_response(p, n_result, c))
            n_result += 1
            for x in p.content:
                if isinstance(x, (Image, File)):
                    media.append(_media_part(x))
        elif isinstance(p, Text):
            if p.text:
                parts.append({"text": p.text})
        elif isinstance(p, (Image, File)):
            parts.append(_media_part(p))
        elif isinstance(p, Opaque) and p.dialect == NAME:
            parts.append(dict(p.data))
    return [*results, *media, *parts]


def _function_response(r: ToolResult, position: int, c: _Contents) -> dict[str, Any]:
    name = c.names.get(r.call_id)
    if name is None and position < len(c.last_calls):
        name = c.last_calls[position].name
    if name is None:
        raise InvalidRequest(
            f"Tool result '{r.call_id[:64]}' answers no tool call of the conversation: "
            "Gemini needs the called function's name.", param="messages")
    response = {"error" if r.is_error else "output": r.text()}
    fr: dict[str, Any] = {"name": name, "response": response}
    if not is_synthesized(r.call_id):
        fr["id"] = r.call_id
    return {"functionResponse": fr}


def _guess_mime(data: str, default: str) -> str:
    for prefix, mime in _MAGIC:
        if data.startswith(prefix):
            return mime
    return default


def _media_part(p: Image | File) -> dict[str, Any]:
    default = "image/png" if isinstance(p, Image) else "application/pdf"
    if p.data is not None:
        return {"inlineData": {"mimeType": p.mime or _guess_mime(p.data, default),
                               "data": p.data}}
    url = p.url
    if url is None:
        fid = p.file_id if isinstance(p, File) else None
        if fid is not None and fid.startswith(("https://", "gs://")):
            url = fid
        else:
            raise InvalidRequest("A file id of another provider cannot be sent to Gemini; "
                                 "send the document inline or by URL.", param="messages")
    inline = split_data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": p.mime or inline[0], "data": inline[1]}}
    mime = p.mime or mimetypes.guess_type(url.split("?", 1)[0])[0] or default
    return {"fileData": {"mimeType": mime, "fileUri": url}}
