"""Neutral messages and response content → Responses items.

Three audiences: an upstream request (``input`` items, no ids, stateless replay rules), the
``GET /v1/responses/{id}/input_items`` listing (ids and statuses, as the API lists them) and
a response's ``output`` (``output_items``).

Ids of a response's items are not drawn at random but derived from the response id, the
list (``output`` or ``input``) and the position (``item_id``): the stream, the stored
response's ``GET`` and its ``input_items`` listing name every item alike, after a restart
and on every host, with nothing stored besides the response id. The stream renderer and
``output_items`` therefore give an item the same position: a text run is broken by
anything the stream closes it for, and an empty text (the stream renders none) makes no
item.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ...core import (
    ChatResponse,
    File,
    Image,
    Message,
    Opaque,
    Part,
    StopReason,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
    new_id,
)
from .wire import NAME, ORIGIN, custom_input, render_part


def item_id(prefix: str, response_id: str, where: str, index: int) -> str:
    """The id of item ``index`` of response ``response_id``'s ``where`` list (``output``,
    ``input``): ``prefix`` (``msg_``, ``fc_``…) and 32 hex digits of a digest of the three,
    so the two lists never share an id."""
    key = f"{response_id}\x00{where}\x00{index}".encode()
    return prefix + hashlib.blake2b(key, digest_size=16).hexdigest()


def call_item(c: ToolCall, item_id: str | None, ns: str | None, *, status: bool) -> dict[str, Any]:
    if c.kind == "custom":
        d: dict[str, Any] = {"type": "custom_tool_call"}
        if item_id is not None:
            d["id"] = item_id
        d["call_id"] = c.id
        d["name"] = c.name
        d["input"] = c.arguments
        if status:
            d["status"] = "completed"
    else:
        d = {"type": "function_call"}
        if item_id is not None:
            d["id"] = item_id
        d["call_id"] = c.id
        d["name"] = c.name
        d["arguments"] = c.arguments
        if status:
            d["status"] = "completed"
    if ns is not None:
        d["namespace"] = ns
    return d


def reasoning_item(t: Thinking, item_id: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {"type": "reasoning"}
    if item_id is not None:
        d["id"] = item_id
    d["summary"] = [{"type": "summary_text", "text": t.text}] if t.text else []
    if t.signature is not None and t.origin == ORIGIN:
        d["encrypted_content"] = t.signature
    return d


def _result_item(r: ToolResult, listing: bool) -> dict[str, Any]:
    typ = "custom_tool_call_output" if r.kind == "custom" else "function_call_output"
    d: dict[str, Any] = {"type": typ}
    if listing:
        d["id"] = new_id("fco_" if r.kind == "function" else "ctco_")
    d["call_id"] = r.call_id
    prefix = "Error: " if r.is_error else ""
    if all(isinstance(p, Text) for p in r.content) and len(r.content) <= 1:
        d["output"] = prefix + (r.content[0].text if r.content else "")  # type: ignore[union-attr]
    else:
        parts: list[dict[str, Any]] = []
        if prefix:
            parts.append({"type": "input_text", "text": prefix.strip()})
        for p in r.content:
            rp = render_part(p, False, listing)
            if rp is not None:
                parts.append(rp)
        d["output"] = parts
    if listing:
        d["status"] = "completed"
    return d


def _message_item(role: str, parts: list[dict[str, Any]], listing: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"type": "message"}
    if listing:
        d["id"] = new_id("msg_")
    d["role"] = role
    d["content"] = parts
    if listing:
        d["status"] = "completed"
    return d


def _opaque(data: dict[str, Any], listing: bool) -> dict[str, Any]:
    if listing:
        return data if "id" in data else {**data, "id": new_id("item_")}
    # a stateless upstream rejects ids of items it never stored (except references)
    if "id" in data and data.get("type") != "item_reference":
        return {k: v for k, v in data.items() if k != "id"}
    return data


def input_items(messages: list[Message], ns: dict[str, str], *,
                listing: bool = False) -> list[dict[str, Any]]:
    """The ``input`` list for ``messages``. Upstream form (``listing`` False): no ids,
    reasoning only with an OpenAI ``encrypted_content``, foreign Opaque parts dropped."""
    out: list[dict[str, Any]] = []
    for m in messages:
        assistant = m.role == "assistant"
        role = "assistant" if assistant else ("user" if m.role == "tool" else m.role)
        pending: list[dict[str, Any]] = []

        def flush(pending: list[dict[str, Any]] = pending, role: str = role) -> None:
            if pending:
                out.append(_message_item(role, pending.copy(), listing))
                pending.clear()

        for p in m.content:
            if isinstance(p, (Text, Image, File)):
                rp = render_part(p, assistant, listing)
                if rp is not None:
                    pending.append(rp)
            elif isinstance(p, ToolCall):
                flush()
                out.append(call_item(p, new_id("fc_" if p.kind == "function" else "ctc_")
                                     if listing else None, ns.get(p.name), status=listing))
            elif isinstance(p, ToolResult):
                flush()
                out.append(_result_item(p, listing))
            elif isinstance(p, Thinking):
                if not listing and (p.origin != ORIGIN or p.signature is None):
                    continue  # provider-bound: replay only OpenAI's own encrypted reasoning
                flush()
                rid = (p.id or new_id("rs_")) if listing else None
                out.append(reasoning_item(p, rid))
            elif isinstance(p, Opaque) and p.dialect == NAME:
                if assistant or p.data.get("type") not in ("input_image", "input_file"):
                    flush()
                    out.append(_opaque(p.data, listing))
                else:
                    pending.append(p.data)
        if not assistant and not pending and not m.content and m.role != "tool":
            out.append(_message_item(role, [], listing))
        flush()
    return out


def output_items(content: list[Part], ns: dict[str, str], response_id: str,
                 custom: frozenset[str] = frozenset(),
                 stop: StopReason = StopReason.END_TURN) -> list[dict[str, Any]]:
    """A response's ``output``: consecutive texts share one message item; a function call
    to one of the client's custom tools (an upstream emulated it) becomes a custom call.
    Item ids come from ``item_id`` (as ``StreamRenderer`` names them)."""
    out: list[dict[str, Any]] = []
    msg: list[dict[str, Any]] | None = None
    refusal = stop == StopReason.REFUSAL
    for p in content:
        if isinstance(p, Text):
            if not p.text:
                continue
            if msg is None:
                msg = []
                out.append({"type": "message", "id": item_id("msg_", response_id, "output",
                                                             len(out)),
                            "role": "assistant", "status": "completed", "content": msg})
            msg.append({"type": "refusal", "refusal": p.text} if refusal else
                       {"type": "output_text", "text": p.text, "annotations": [],
                        "logprobs": []})
            continue
        msg = None  # whatever comes between two texts ends the first one's message
        if isinstance(p, Thinking):
            item = reasoning_item(p, item_id("rs_", response_id, "output", len(out)))
            item["status"] = "completed"
            out.append(item)
        elif isinstance(p, ToolCall):
            if p.kind == "function" and p.name in custom:
                p = ToolCall(id=p.id, name=p.name, arguments=custom_input(p.arguments),
                             kind="custom")
            prefix = "fc_" if p.kind == "function" else "ctc_"
            out.append(call_item(p, item_id(prefix, response_id, "output", len(out)),
                                 ns.get(p.name), status=True))
        elif isinstance(p, Opaque) and p.dialect == NAME:
            out.append(p.data)
        # redacted thinking, foreign opaque items: no meaning here
    return out


def response_output(resp: ChatResponse, response_id: str, ns: dict[str, str],
                    custom: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    return output_items(resp.content, ns, response_id, custom, resp.stop_reason)


def listed_input_items(messages: list[Message], response_id: str) -> list[dict[str, Any]]:
    """The ``input_items`` listing of response ``response_id``: ids from ``item_id``, each
    with its type's own prefix (``msg_``, ``fc_``…), stable for ``after`` paging."""
    items = input_items(messages, {}, listing=True)
    for i, it in enumerate(items):
        prefix = str(it.get("id") or "item_").partition("_")[0]
        it["id"] = item_id(prefix + "_", response_id, "input", i)
    return items
