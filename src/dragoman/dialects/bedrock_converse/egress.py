"""Neutral → Bedrock Converse request body (``POST /model/{modelId}/converse[-stream]``).

The model id travels in the URL and the stream choice in the path, so neither is in the
body. Rules the service enforces with a 400, and how this renderer meets them:

* roles strictly alternate and the first message is ``user``: system text is hoisted to
  ``system``, tool results become ``toolResult`` blocks of a user turn (placed before any
  text of that turn), and consecutive same-role turns are merged;
* ``toolConfig`` must be present whenever the history holds ``toolUse``/``toolResult``:
  kept even for ``tool_choice: none`` (Converse has no "none"), and synthesised from the
  history's tool names when the request declares no tools;
* blank text blocks are refused: empty texts are dropped, an empty tool result says so;
* images are bytes (base64 in JSON) with a ``format``; http(s) URLs must have been fetched
  by the provider first (``s3://`` URLs go as ``s3Location``).

Reasoning signatures are provider-bound: only Bedrock-made ``reasoningContent`` is replayed.
"""

from __future__ import annotations

import re
from typing import Any

from ...core import (
    CacheControl,
    ChatRequest,
    File,
    Image,
    InvalidRequest,
    Message,
    Opaque,
    Part,
    RedactedThinking,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolResult,
)
from ..data_urls import split_data_url
from ..effort import budget_for_effort
from ..tool_args import CUSTOM_TOOL_SCHEMA, custom_tool_description, object_from_arguments
from .wire import NAME, ORIGIN

DEFAULT_MAX_TOKENS = 4096
"""``maxTokens`` derived when thinking is on and the request set no cap (the budget must
stay below it)."""

DERIVED_MAX_TOKENS_CAP = 32000

EMPTY_TOOL_RESULT = "(no output)"
"""Converse refuses blank text blocks, so a tool that returned nothing says so."""

_CACHE_POINT: dict[str, Any] = {"cachePoint": {"type": "default"}}

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                 "image/gif": "gif", "image/webp": "webp"}
_IMAGE_MAGIC = (("iVBORw0KGgo", "png"), ("/9j/", "jpeg"), ("R0lGOD", "gif"), ("UklGR", "webp"))
_IMAGE_EXTENSIONS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif",
                     "webp": "webp"}

DOCUMENT_FORMATS = {
    "application/pdf": "pdf", "text/csv": "csv", "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html", "text/plain": "txt", "text/markdown": "md",
}
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")
_SPACES = re.compile(r"\s+")


def render_request(req: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {}
    system: list[dict[str, Any]] = []
    for t in req.system or ():
        _add_text(system, t.text, t.cache_control)
    messages = _render_messages(req.messages, system)
    body["messages"] = messages
    if system:
        body["system"] = system

    thinking, max_tokens = _render_reasoning(req)
    inference: dict[str, Any] = {}
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if req.temperature is not None:
        inference["temperature"] = req.temperature
    if req.top_p is not None:
        inference["topP"] = req.top_p
    if req.stop:
        inference["stopSequences"] = list(req.stop)
    if inference:
        body["inferenceConfig"] = inference

    tool_config = _render_tool_config(req, messages)
    if tool_config is not None:
        body["toolConfig"] = tool_config

    additional: dict[str, Any] = {}
    if thinking is not None:
        additional["thinking"] = thinking
    if req.top_k is not None:
        additional["top_k"] = req.top_k
    if additional:
        body["additionalModelRequestFields"] = additional
    return body


# --- reasoning -------------------------------------------------------------------------------


def _render_reasoning(req: ChatRequest) -> tuple[dict[str, Any] | None, int | None]:
    """(``additionalModelRequestFields.thinking``, maxTokens). Claude-on-Bedrock thinking:
    the budget follows the shared effort table and stays >= 1024 and < maxTokens."""
    max_tokens = req.max_tokens
    r = req.reasoning
    if r is None or r.mode == "disabled" or r.effort == "none":
        return None, max_tokens
    if r.mode == "adaptive":
        return {"type": "adaptive"}, max_tokens
    budget = r.budget_tokens
    if budget is None:
        budget = budget_for_effort(r.effort or "medium", max_tokens)
    if budget is None:
        return None, max_tokens
    if max_tokens is None:
        max_tokens = max(DEFAULT_MAX_TOKENS,
                         min(budget + DEFAULT_MAX_TOKENS, DERIVED_MAX_TOKENS_CAP))
        budget = min(budget, max_tokens - 1024)
    elif budget >= max_tokens:
        budget = max_tokens - 1
    if budget < 1024:
        return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


# --- messages --------------------------------------------------------------------------------


def _add_text(out: list[dict[str, Any]], text: str, cache: CacheControl | None) -> None:
    if text.strip():
        out.append({"text": text})
    if cache is not None and out:
        out.append(_CACHE_POINT)


def _add(out: list[dict[str, Any]], block: dict[str, Any] | None,
         cache: CacheControl | None) -> None:
    if block is not None:
        out.append(block)
        if cache is not None:
            out.append(_CACHE_POINT)


def _render_messages(messages: list[Message],
                     system: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        blocks: list[dict[str, Any]] = []
        if m.is_system:
            for p in m.content:
                if isinstance(p, Text):
                    _add_text(system, p.text, p.cache_control)
            continue
        role = "assistant" if m.role == "assistant" else "user"
        for p in m.content:
            if role == "assistant":
                _assistant_part(blocks, p)
            else:
                _user_part(blocks, p)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for msg in out:
        content = msg["content"]
        if msg["role"] == "user" and any("toolResult" in b for b in content) \
                and "toolResult" not in content[0]:
            # Results answer the previous assistant turn: they lead the user turn.
            msg["content"] = [b for b in content if "toolResult" in b] + \
                             [b for b in content if "toolResult" not in b]
    if not out:
        raise InvalidRequest("Bedrock needs at least one user message.", param="messages")
    if out[0]["role"] != "user":
        raise InvalidRequest("Bedrock requires the conversation to start with a user "
                             "message.", param="messages")
    return out


def _user_part(out: list[dict[str, Any]], p: Part) -> None:
    if isinstance(p, Text):
        _add_text(out, p.text, p.cache_control)
    elif isinstance(p, Image):
        _add(out, {"image": _image(p)}, p.cache_control)
    elif isinstance(p, File):
        _add(out, {"document": _document(p, len(out))}, p.cache_control)
    elif isinstance(p, ToolResult):
        _add(out, _tool_result(p), p.cache_control)
    elif isinstance(p, Opaque) and p.dialect == NAME:
        out.append(p.data)


def _assistant_part(out: list[dict[str, Any]], p: Part) -> None:
    if isinstance(p, Text):
        _add_text(out, p.text, p.cache_control)
    elif isinstance(p, ToolCall):
        _add(out, {"toolUse": {"toolUseId": p.id, "name": p.name,
                               "input": object_from_arguments(p.arguments,
                                                              p.kind == "custom")}},
             p.cache_control)
    elif isinstance(p, Thinking):
        if p.origin == ORIGIN and p.signature is not None:
            out.append({"reasoningContent": {"reasoningText": {"text": p.text,
                                                               "signature": p.signature}}})
    elif isinstance(p, RedactedThinking):
        if p.origin == ORIGIN:
            out.append({"reasoningContent": {"redactedContent": p.data}})
    elif isinstance(p, Opaque) and p.dialect == NAME:
        out.append(p.data)


def _tool_result(r: ToolResult) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for p in r.content:
        if isinstance(p, Text):
            _add_text(content, p.text, None)
        elif isinstance(p, Image):
            content.append({"image": _image(p)})
        elif isinstance(p, File):
            content.append({"document": _document(p, len(content))})
    if not content:
        content.append({"text": EMPTY_TOOL_RESULT})
    return {"toolResult": {"toolUseId": r.call_id, "content": content,
                           "status": "error" if r.is_error else "success"}}


# --- media -----------------------------------------------------------------------------------


def image_format(mime: str | None, data: str | None = None) -> str:
    """The Converse ``format`` for an image MIME type (or, without one, its magic bytes)."""
    if mime:
        fmt = IMAGE_FORMATS.get(mime.split(";", 1)[0].strip().lower())
        if fmt is None:
            raise InvalidRequest(f"Bedrock accepts png, jpeg, gif and webp images, not "
                                 f"{mime[:60]}.")
        return fmt
    for prefix, fmt in _IMAGE_MAGIC:
        if data is not None and data.startswith(prefix):
            return fmt
    raise InvalidRequest("The image type is unknown: give a png, jpeg, gif or webp image.")


def _image(p: Image) -> dict[str, Any]:
    if p.data is not None:
        return {"format": image_format(p.mime, p.data), "source": {"bytes": p.data}}
    url = p.url or ""
    inline = split_data_url(url)
    if inline is not None:
        return {"format": image_format(inline[0], inline[1]), "source": {"bytes": inline[1]}}
    if url.startswith("s3://"):
        ext = url.rsplit(".", 1)[-1].lower()
        fmt = IMAGE_FORMATS.get(p.mime or "") or _IMAGE_EXTENSIONS.get(ext)
        if fmt is None:
            raise InvalidRequest("The format of an s3:// image must be known: give its mime "
                                 "type or a .png/.jpeg/.gif/.webp name.")
        return {"format": fmt, "source": {"s3Location": {"uri": url}}}
    raise InvalidRequest("Bedrock takes images as inline data; this image URL was not "
                         "fetched.", param="messages")


def _document(p: File, index: int) -> dict[str, Any]:
    if p.data is not None:
        mime, data = p.mime, p.data
    else:
        inline = split_data_url(p.url or "") if p.url else None
        if inline is None:
            raise InvalidRequest("Bedrock takes documents as inline data (or s3:// URLs).",
                                 param="messages")
        mime, data = inline
    fmt = DOCUMENT_FORMATS.get((mime or "application/pdf").split(";", 1)[0].lower())
    if fmt is None:
        raise InvalidRequest(f"Bedrock does not accept documents of type {mime!s:.60}.")
    return {"format": fmt, "name": _document_name(p.filename, index),
            "source": {"bytes": data}}


def _document_name(filename: str | None, index: int) -> str:
    """Converse document names allow letters, digits, single spaces, ``-()[]``."""
    stem = (filename or "").rsplit(".", 1)[0]
    name = _SPACES.sub(" ", _DOC_NAME_BAD.sub("-", stem)).strip()
    return name[:200] or f"document-{index + 1}"


# --- tools -----------------------------------------------------------------------------------


def _tool_spec(t: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": t.name}
    if t.kind == "custom":
        desc = custom_tool_description(t)
        schema: dict[str, Any] = CUSTOM_TOOL_SCHEMA
    else:
        desc = t.description
        schema = t.parameters if t.parameters is not None else {"type": "object",
                                                                "properties": {}}
    if desc:
        spec["description"] = desc
    spec["inputSchema"] = {"json": schema}
    return {"toolSpec": spec}


def _history_tool_names(messages: list[dict[str, Any]]) -> tuple[bool, list[str]]:
    """(history has toolUse/toolResult blocks, names of the tools it called)."""
    has, names = False, []
    for m in messages:
        for b in m["content"]:
            if "toolUse" in b:
                has = True
                if b["toolUse"]["name"] not in names:
                    names.append(b["toolUse"]["name"])
            elif "toolResult" in b:
                has = True
    return has, names


def _render_tool_config(req: ChatRequest,
                        messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    tc = req.tool_choice
    none = tc is not None and tc.mode == "none"
    allowed = tc.allowed if tc is not None else None
    has_blocks, called = _history_tool_names(messages)
    if none and not has_blocks:
        return None  # Converse has no "none": withholding the tools says it
    tools: list[dict[str, Any]] = []
    for t in req.tools or ():
        if allowed is not None and t.name not in allowed:
            continue
        tools.append(_tool_spec(t))
        if t.cache_control is not None:
            tools.append(_CACHE_POINT)
    if not tools:
        if not has_blocks:
            return None
        # The history must be accompanied by a toolConfig: declare what it called.
        tools = [{"toolSpec": {"name": n, "description": "A tool used earlier in this "
                                                         "conversation.",
                               "inputSchema": {"json": {"type": "object"}}}}
                 for n in called or ["unused_tool"]]
    config: dict[str, Any] = {"tools": tools}
    if tc is not None and not none:
        if tc.mode == "tool" and tc.name is not None:
            config["toolChoice"] = {"tool": {"name": tc.name}}
        elif tc.mode == "required":
            config["toolChoice"] = {"any": {}}
        else:
            config["toolChoice"] = {"auto": {}}
    return config
