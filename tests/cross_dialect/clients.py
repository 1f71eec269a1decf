"""Drive the gateway with the official SDKs, one adapter per ingress dialect, and read back
what the fake upstream received in a dialect-neutral view.

``call(client, ingress, model, mode, ...)`` sends one turn and returns a ``Turn`` (what
the client saw); ``mode`` is ``json`` (non-streamed), ``stream`` (raw SSE events, whose
framing rules are checked event by event) or ``helper`` (the SDK's stream helper and its
final object). ``upstream_view(rec)`` reduces a recorded upstream request to
``(system text, [(role, [item, ...]), ...])`` so one expectation fits all three vendors.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.upstream import Recorded

CLIENT_KEY = "sk-client-key-not-for-upstream"

INGRESS = ("chat", "responses", "messages")
UPSTREAMS = ("chat-up", "resp-up", "claude-up")
MODES = ("json", "stream", "helper")

UPSTREAM_MODEL = {"chat-up": "gpt-fake-chat", "resp-up": "gpt-fake-resp",
                  "claude-up": "claude-fake-up"}
UPSTREAM_PATH = {"chat-up": "/v1/chat/completions", "resp-up": "/v1/responses",
                 "claude-up": "/v1/messages"}

SYSTEM = "You are a terse assistant."

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"]}
TIME_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
TOOL_RESULTS = ("18C, sunny", "12:00")


def known_bug(request: pytest.FixtureRequest, reason: str) -> None:
    request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def prompt(scenario: str) -> tuple[str, str]:
    """A user message selecting ``scenario`` and a unique marker to find the upstream
    request(s) it caused."""
    nonce = f"n-{uuid.uuid4().hex[:16]}"
    return f"scenario:{scenario} please answer ({nonce})", nonce


@dataclass
class Turn:
    """What a client saw, in dialect-neutral terms (plus the SDK object in ``raw``)."""

    text: str = ""
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    thinking: str | None = None
    signature: str | None = None
    stop: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    raw: Any = None
    history: list[Any] = field(default_factory=list)
    """The assistant output in the client's own dialect, ready to replay next turn."""


# --- OpenAI Chat Completions --------------------------------------------------------------


CHAT_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                      "parameters": WEATHER_SCHEMA}},
    {"type": "function", "function": {"name": "get_time", "description": "Local time",
                                      "parameters": TIME_SCHEMA}},
]


def _chat_usage(u: Any) -> dict[str, int]:
    if u is None:
        return {}
    cached = (u.prompt_tokens_details.cached_tokens or 0) if u.prompt_tokens_details else 0
    return {"input": u.prompt_tokens, "output": u.completion_tokens, "cached": cached,
            "total": u.total_tokens}


def _chat_turn_from_message(msg: Any, finish: str | None, usage: Any) -> Turn:
    extra = msg.model_extra or {}
    calls = [(c.id, c.function.name, json.loads(c.function.arguments))
             for c in msg.tool_calls or []]
    hist: dict[str, Any] = {"role": "assistant", "content": msg.content}
    if msg.tool_calls:
        hist["tool_calls"] = [{"id": c.id, "type": "function",
                               "function": {"name": c.function.name,
                                            "arguments": c.function.arguments}}
                              for c in msg.tool_calls]
    return Turn(text=msg.content or "", calls=calls, stop=finish, usage=_chat_usage(usage),
                thinking=extra.get("reasoning_content"), history=[hist])


def chat_call(oai: openai.OpenAI, model: str, messages: list[dict[str, Any]], mode: str,
              **kw: Any) -> Turn:
    if mode == "json":
        r = oai.chat.completions.create(model=model, messages=messages, **kw)  # type: ignore[arg-type]
        t = _chat_turn_from_message(r.choices[0].message, r.choices[0].finish_reason, r.usage)
        t.raw = r
        return t
    if mode == "helper":
        with oai.chat.completions.stream(model=model, messages=messages,  # type: ignore[arg-type]
                                         stream_options={"include_usage": True}, **kw) as s:
            final = s.get_final_completion()
        t = _chat_turn_from_message(final.choices[0].message, final.choices[0].finish_reason,
                                    final.usage)
        t.raw = final
        return t
    chunks = list(oai.chat.completions.create(
        model=model, messages=messages, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}, **kw))
    return chat_turn_from_chunks(chunks)


def chat_turn_from_chunks(chunks: list[Any]) -> Turn:
    """Accumulate raw chunks, checking the framing rules of openai-chat.md."""
    assert chunks, "empty stream"
    assert chunks[0].choices and chunks[0].choices[0].delta.role == "assistant", \
        "the first chunk must carry role=assistant"
    t = Turn(raw=chunks)
    reasoning = ""
    calls: dict[int, list[Any]] = {}
    usage_at: list[int] = []
    for i, c in enumerate(chunks):
        if c.usage is not None:
            usage_at.append(i)
            t.usage = _chat_usage(c.usage)
        for ch in c.choices:
            d = ch.delta
            if i > 0:
                assert d.role is None, "role only on the first delta"
            t.text += d.content or ""
            rc = (d.model_extra or {}).get("reasoning_content")
            if rc:
                reasoning += rc
            for tc in d.tool_calls or []:
                assert tc.index is not None
                if tc.index not in calls:
                    assert tc.id and tc.function and tc.function.name, \
                        f"first fragment of tool call {tc.index} lacks id/name: {tc}"
                    calls[tc.index] = [tc.id, tc.function.name, tc.function.arguments or ""]
                else:
                    assert tc.id is None and (tc.function is None or tc.function.name is None), \
                        f"id/name repeated on a later fragment of tool call {tc.index}: {tc}"
                    calls[tc.index][2] += (tc.function.arguments if tc.function else "") or ""
            if ch.finish_reason is not None:
                assert t.stop is None, "finish_reason twice"
                t.stop = ch.finish_reason
    if usage_at:
        last = chunks[usage_at[-1]]
        assert usage_at[-1] == len(chunks) - 1 and last.choices == [], \
            "the usage chunk (choices=[]) must come last"
    t.thinking = reasoning or None
    t.calls = [(cid, name, json.loads(args)) for cid, name, args in
               (calls[k] for k in sorted(calls))]
    hist: dict[str, Any] = {"role": "assistant", "content": t.text or None}
    if calls:
        hist["tool_calls"] = [{"id": cid, "type": "function",
                               "function": {"name": name, "arguments": args}}
                              for cid, name, args in (calls[k] for k in sorted(calls))]
    t.history = [hist]
    return t


# --- OpenAI Responses ---------------------------------------------------------------------


RESP_TOOLS = [
    {"type": "function", "name": "get_weather", "description": "Weather now",
     "parameters": WEATHER_SCHEMA, "strict": False},
    {"type": "function", "name": "get_time", "description": "Local time",
     "parameters": TIME_SCHEMA, "strict": False},
]


def _resp_turn(r: Any) -> Turn:
    t = Turn(raw=r, stop=r.status)
    for item in r.output:
        if item.type == "message":
            t.text += "".join(c.text for c in item.content if c.type == "output_text")
        elif item.type == "function_call":
            t.calls.append((item.call_id, item.name, json.loads(item.arguments)))
        elif item.type == "reasoning":
            t.thinking = "".join(s.text for s in item.summary or [])
            t.signature = item.encrypted_content
    u = r.usage
    if u is not None:
        t.usage = {"input": u.input_tokens, "output": u.output_tokens,
                   "cached": u.input_tokens_details.cached_tokens if u.input_tokens_details
                   else 0, "total": u.total_tokens}
    t.history = [item.model_dump(exclude_none=True) for item in r.output]
    return t


def responses_call(oai: openai.OpenAI, model: str, input: Any, mode: str, **kw: Any) -> Turn:
    if mode == "json":
        return _resp_turn(oai.responses.create(model=model, input=input, **kw))
    if mode == "helper":
        with oai.responses.stream(model=model, input=input, **kw) as s:
            final = s.get_final_response()
        return _resp_turn(final)
    events = list(oai.responses.create(model=model, input=input, stream=True, **kw))
    return responses_turn_from_events(events)


def check_responses_events(events: list[Any]) -> None:
    """The framing rules of openai-responses.md."""
    assert [e.sequence_number for e in events] == list(range(len(events))), \
        "sequence_number must count from 0 by 1"
    assert events[0].type == "response.created", events[0].type
    terminal = [e for e in events
                if e.type in ("response.completed", "response.failed", "response.incomplete")]
    assert len(terminal) == 1 and terminal[0] is events[-1], "exactly one terminal event, last"
    added = {e.output_index for e in events if e.type == "response.output_item.added"}
    done = {e.output_index for e in events if e.type == "response.output_item.done"}
    if events[-1].type == "response.completed":
        assert added == done == set(range(len(added))), (added, done)


def responses_turn_from_events(events: list[Any]) -> Turn:
    check_responses_events(events)
    final = events[-1].response
    t = _resp_turn(final)
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == t.text, "deltas and the completed response disagree"
    done_calls = [(e.item.call_id, e.item.name, json.loads(e.item.arguments)) for e in events
                  if e.type == "response.output_item.done" and e.item.type == "function_call"]
    assert done_calls == t.calls, "output_item.done items and the completed response disagree"
    t.raw = events
    return t


# --- Anthropic Messages -------------------------------------------------------------------


MSG_TOOLS = [
    {"name": "get_weather", "description": "Weather now", "input_schema": WEATHER_SCHEMA},
    {"name": "get_time", "description": "Local time", "input_schema": TIME_SCHEMA},
]


def _msg_turn(m: Any) -> Turn:
    t = Turn(raw=m, stop=m.stop_reason)
    for b in m.content:
        if b.type == "text":
            t.text += b.text
        elif b.type == "tool_use":
            t.calls.append((b.id, b.name, b.input))
        elif b.type == "thinking":
            t.thinking = (t.thinking or "") + b.thinking
            t.signature = b.signature
    u = m.usage
    cached = u.cache_read_input_tokens or 0
    written = u.cache_creation_input_tokens or 0
    t.usage = {"input": u.input_tokens + cached + written, "output": u.output_tokens,
               "cached": cached, "raw_input": u.input_tokens}
    t.history = [{"role": "assistant",
                  "content": [b.model_dump(exclude_none=True) for b in m.content]}]
    return t


def messages_call(ant: anthropic.Anthropic, model: str, messages: list[dict[str, Any]],
                  mode: str, max_tokens: int = 1000, **kw: Any) -> Turn:
    if mode == "json":
        return _msg_turn(ant.messages.create(model=model, messages=messages,  # type: ignore[arg-type]
                                             max_tokens=max_tokens, **kw))
    if mode == "helper":
        with ant.messages.stream(model=model, messages=messages,  # type: ignore[arg-type]
                                 max_tokens=max_tokens, **kw) as s:
            final = s.get_final_message()
        return _msg_turn(final)
    events = list(ant.messages.create(model=model, messages=messages,  # type: ignore[arg-type]
                                      max_tokens=max_tokens, stream=True, **kw))
    return messages_turn_from_events(events)


def messages_turn_from_events(events: list[Any]) -> Turn:
    """Accumulate raw events, checking the grammar of anthropic-messages.md."""
    assert events[0].type == "message_start", events[0].type
    assert events[-1].type == "message_stop", events[-1].type
    t = Turn(raw=events)
    usage = events[0].message.usage
    start_input = usage.input_tokens
    cached = usage.cache_read_input_tokens or 0
    output = usage.output_tokens
    blocks: list[dict[str, Any]] = []
    open_index: int | None = None
    partial: dict[int, str] = {}
    for e in events[1:-1]:
        if e.type == "content_block_start":
            assert open_index is None, "a block opened while another is open"
            assert e.index == len(blocks), f"block index {e.index}, expected {len(blocks)}"
            open_index = e.index
            blocks.append(e.content_block.model_dump(exclude_none=True))
            if e.content_block.type == "tool_use":
                assert e.content_block.input == {}, "tool_use starts with input {}"
                partial[e.index] = ""
        elif e.type == "content_block_delta":
            assert e.index == open_index, "delta for a block that is not open"
            d, b = e.delta, blocks[e.index]
            if d.type == "text_delta":
                b["text"] += d.text
            elif d.type == "thinking_delta":
                b["thinking"] += d.thinking
            elif d.type == "signature_delta":
                b["signature"] = d.signature
            elif d.type == "input_json_delta":
                partial[e.index] += d.partial_json
        elif e.type == "content_block_stop":
            assert e.index == open_index, "stop for a block that is not open"
            if e.index in partial:
                blocks[e.index]["input"] = json.loads(partial[e.index] or "{}")
            open_index = None
        elif e.type == "message_delta":
            assert open_index is None, "message_delta while a block is open"
            t.stop = e.delta.stop_reason
            # cumulative: overwrite, never add
            output = e.usage.output_tokens
            if e.usage.input_tokens is not None:
                start_input = e.usage.input_tokens
            if e.usage.cache_read_input_tokens is not None:
                cached = e.usage.cache_read_input_tokens
    for b in blocks:
        if b["type"] == "text":
            t.text += b["text"]
        elif b["type"] == "tool_use":
            t.calls.append((b["id"], b["name"], b["input"]))
        elif b["type"] == "thinking":
            t.thinking = (t.thinking or "") + b["thinking"]
            t.signature = b.get("signature")
    t.usage = {"input": start_input + cached, "output": output, "cached": cached,
               "raw_input": start_input}
    t.history = [{"role": "assistant", "content": blocks}]
    return t


# --- one entry point for the three ingress dialects ---------------------------------------


def call(oai: openai.OpenAI, ant: anthropic.Anthropic, ingress: str, model: str, mode: str,
         user: str, *, system: str | None = SYSTEM, tools: bool = False,
         history: list[Any] | None = None, **kw: Any) -> Turn:
    """One turn: ``history`` (already in the ingress dialect) then the ``user`` text (or,
    when ``user`` is empty, nothing more: the history ends with tool results)."""
    history = list(history or [])
    if ingress == "chat":
        msgs = [{"role": "system", "content": system}] if system else []
        msgs += history
        if user:
            msgs.append({"role": "user", "content": user})
        if tools:
            kw["tools"] = CHAT_TOOLS
        return chat_call(oai, model, msgs, mode, **kw)
    if ingress == "responses":
        items = [*history]
        if user:
            items.append({"role": "user", "content": user})
        if system:
            kw["instructions"] = system
        if tools:
            kw["tools"] = RESP_TOOLS
        return responses_call(oai, model, items, mode, **kw)
    msgs = [*history]
    if user:
        msgs.append({"role": "user", "content": user})
    if system:
        kw["system"] = system
    if tools:
        kw["tools"] = MSG_TOOLS
    return messages_call(ant, model, msgs, mode, **kw)


def tool_results(ingress: str, calls: list[tuple[str, str, Any]]) -> list[Any]:
    """The client's answer to ``calls`` (get_weather → 18C, get_time → 12:00)."""
    answers = {"get_weather": TOOL_RESULTS[0], "get_time": TOOL_RESULTS[1]}
    if ingress == "chat":
        return [{"role": "tool", "tool_call_id": cid, "content": answers[name]}
                for cid, name, _ in calls]
    if ingress == "responses":
        return [{"type": "function_call_output", "call_id": cid, "output": answers[name]}
                for cid, name, _ in calls]
    return [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": cid, "content": answers[name]}
        for cid, name, _ in calls]}]


# --- what the upstream received, dialect-neutral --------------------------------------------


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content
                   if isinstance(p, dict) and p.get("type") in ("text", "input_text",
                                                                 "output_text"))


def _merge(turns: list[tuple[str, list[Any]]]) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    for role, items in turns:
        if out and out[-1][0] == role:
            out[-1][1].extend(items)
        else:
            out.append((role, list(items)))
    return out


def upstream_view(rec: Recorded) -> tuple[str, list[tuple[str, list[Any]]]]:
    """``(system text, turns)``; items are ``("text", s)``, ``("call", id, name, args)``,
    ``("result", id, text)``, ``("thinking", text, signature)``."""
    b = rec.body
    turns: list[tuple[str, list[Any]]] = []
    system: list[str] = []
    if rec.api == "anthropic":
        s = b.get("system")
        if s:
            system.append(s if isinstance(s, str) else "\n\n".join(x["text"] for x in s))
        for m in b["messages"]:
            blocks = m["content"] if isinstance(m["content"], list) else \
                [{"type": "text", "text": m["content"]}]
            items: list[Any] = []
            for blk in blocks:
                ty = blk["type"]
                if ty == "text":
                    items.append(("text", blk["text"]))
                elif ty == "tool_use":
                    items.append(("call", blk["id"], blk["name"], blk["input"]))
                elif ty == "tool_result":
                    items.append(("result", blk["tool_use_id"], _text(blk.get("content"))))
                elif ty == "thinking":
                    items.append(("thinking", blk["thinking"], blk.get("signature")))
                else:
                    items.append((ty,))
            role = "tool" if items and all(i[0] == "result" for i in items) else m["role"]
            turns.append((role, items))
    elif rec.api == "chat":
        for m in b["messages"]:
            role = m["role"]
            if role in ("system", "developer"):
                assert not turns, "system message after the conversation started"
                c = m["content"]
                system.append(c if isinstance(c, str) else "\n\n".join(
                    p["text"] for p in c if p.get("type") == "text"))
            elif role == "tool":
                turns.append(("tool", [("result", m["tool_call_id"], _text(m["content"]))]))
            else:
                items = [("text", _text(m.get("content")))] if _text(m.get("content")) else []
                for tc in m.get("tool_calls") or []:
                    if tc.get("type") == "custom":
                        items.append(("call", tc["id"], tc["custom"]["name"],
                                      {"input": tc["custom"]["input"]}))
                    else:
                        items.append(("call", tc["id"], tc["function"]["name"],
                                      json.loads(tc["function"]["arguments"])))
                turns.append((role, items))
    else:
        if b.get("instructions"):
            system.append(b["instructions"])
        inp = b["input"]
        if isinstance(inp, str):
            inp = [{"role": "user", "content": inp}]
        for it in inp:
            ty = it.get("type", "message")
            if ty == "message":
                if it["role"] in ("system", "developer"):
                    system.append(_text(it["content"]))
                else:
                    turns.append((it["role"], [("text", _text(it["content"]))]))
            elif ty == "function_call":
                turns.append(("assistant", [("call", it["call_id"], it["name"],
                                             json.loads(it["arguments"]))]))
            elif ty == "custom_tool_call":
                turns.append(("assistant", [("call", it["call_id"], it["name"],
                                             {"input": it["input"]})]))
            elif ty in ("function_call_output", "custom_tool_call_output"):
                out = it["output"]
                turns.append(("tool", [("result", it["call_id"],
                                         out if isinstance(out, str) else _text(out))]))
            elif ty == "reasoning":
                turns.append(("assistant", [("thinking",
                                             "".join(s["text"] for s in it.get("summary", [])),
                                             it.get("encrypted_content"))]))
            else:
                turns.append(("?", [(ty,)]))
    return "\n\n".join(system), _merge(turns)


def upstream_tools(rec: Recorded) -> dict[str, Any]:
    """Tool name → JSON schema, as the upstream received them."""
    tools = rec.body.get("tools") or []
    if rec.api == "anthropic":
        return {t["name"]: t.get("input_schema") for t in tools}
    if rec.api == "chat":
        return {t["function"]["name"]: t["function"].get("parameters") for t in tools
                if t.get("type") == "function"}
    return {t["name"]: t.get("parameters") for t in tools if t.get("type") == "function"}


def upstream_max_tokens(rec: Recorded) -> int | None:
    b = rec.body
    if rec.api == "anthropic":
        return b.get("max_tokens")
    if rec.api == "chat":
        return b.get("max_completion_tokens") or b.get("max_tokens")
    return b.get("max_output_tokens")
