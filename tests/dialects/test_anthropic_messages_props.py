"""Anthropic Messages dialect: hypothesis round trips and fuzzing."""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dragoman.core import (
    AgentToolResult,
    ChatRequest,
    ChatResponse,
    DragomanError,
    File,
    Finish,
    HostedTool,
    Image,
    InvalidRequest,
    Message,
    NotFound,
    Opaque,
    OpaqueItem,
    Overloaded,
    RateLimited,
    Reasoning,
    RedactedThinking,
    RedactedThinkingBlock,
    ResponseFormat,
    StepStart,
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
    ToolChoice,
    ToolResult,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    UsageUpdate,
    collect,
)
from dragoman.dialects.anthropic_messages import (
    StreamParser,
    StreamRenderer,
    parse_count_tokens_request,
    parse_error,
    parse_request,
    parse_response,
    render_request,
    render_response,
)
from dragoman.dialects.contract import RenderContext
from dragoman.dialects.framing import compact_json

from .anthropic_sse import split_frames, validate_stream

NAME = "anthropic_messages"
CTX = RenderContext(id="msg_0123456789abcdef01234567", model="claude-test", created=0)
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- leaf strategies ------------------------------------------------------------------------

text = st.text(max_size=20)
nonempty = st.text(min_size=1, max_size=20)
ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
cache = st.sampled_from([None, {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}])
b64 = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode())
json_scalar = st.none() | st.booleans() | st.integers(-10**6, 10**6) | text
json_value = st.recursive(json_scalar, lambda c: st.lists(c, max_size=3)
                          | st.dictionaries(text, c, max_size=3), max_leaves=8)
json_object = st.dictionaries(text, json_value, max_size=4)

texts = st.builds(Text, text=text, cache_control=cache)
images = st.one_of(
    st.builds(Image, mime=st.sampled_from(["image/png", "image/jpeg", "image/gif",
                                           "image/webp"]), data=b64, cache_control=cache),
    st.builds(Image, url=st.just("https://ex.com/").map(str) | nonempty.map(
        lambda s: f"https://ex.com/{s}"), cache_control=cache),
)
files = st.one_of(
    st.builds(File, mime=st.just("application/pdf"), data=b64,
              filename=st.none() | nonempty, cache_control=cache),
    st.builds(File, mime=st.just("text/plain"),
              data=text.map(lambda s: base64.b64encode(s.encode()).decode()),
              filename=st.none() | nonempty, cache_control=cache),
    st.builds(File, url=nonempty.map(lambda s: f"https://ex.com/{s}.pdf"),
              filename=st.none() | nonempty),
    st.builds(File, file_id=ident.map(lambda s: "file_" + s)),
)
search_result = st.builds(lambda s: Opaque(dialect=NAME, data={
    "type": "search_result", "source": s, "title": "t", "content": []}), text)
server_tool = st.builds(lambda i, q: Opaque(dialect=NAME, data={
    "type": "server_tool_use", "id": f"srvtoolu_{i}", "name": "web_search",
    "input": {"query": q}}), ident, text)
thinking = st.builds(Thinking, text=text, signature=nonempty, origin=st.just("anthropic"))
redacted = st.builds(RedactedThinking, data=nonempty, origin=st.just("anthropic"))
tool_calls = st.builds(ToolCall, id=ident.map(lambda s: "toolu_" + s), name=ident,
                       arguments=json_object.map(compact_json), cache_control=cache)
tool_results = st.builds(
    ToolResult, call_id=ident.map(lambda s: "toolu_" + s),
    content=st.lists(st.one_of(texts, images, files), max_size=3),
    is_error=st.booleans(), cache_control=cache)

user_msgs = st.builds(Message, role=st.just("user"), content=st.lists(
    st.one_of(texts, images, files, search_result), min_size=1, max_size=3))
assistant_msgs = st.builds(Message, role=st.just("assistant"), content=st.lists(
    st.one_of(texts, thinking, redacted, tool_calls, server_tool), min_size=1, max_size=4))
tool_msgs = st.builds(Message, role=st.just("tool"),
                      content=st.lists(tool_results, min_size=1, max_size=3))
system_msgs = st.builds(Message, role=st.just("system"), content=st.lists(
    st.builds(Text, text=nonempty, cache_control=cache), min_size=1, max_size=2))


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    first = draw(user_msgs)
    rest = draw(st.lists(st.one_of(user_msgs, assistant_msgs, tool_msgs, system_msgs),
                         max_size=6))
    out = [first]
    for m in rest:
        if m.role in ("assistant", "tool") and out[-1].role == m.role:
            continue  # canonical form: these would merge
        out.append(m)
    return out


tools = st.builds(Tool, name=ident, description=st.none() | text, parameters=json_object.map(
    lambda d: {"type": "object", "properties": d}), strict=st.none() | st.booleans(),
    cache_control=cache)


@st.composite
def requests(draw: st.DrawFn) -> ChatRequest:
    tool_list = draw(st.none() | st.lists(tools, min_size=1, max_size=3,
                                          unique_by=lambda t: t.name))
    hosted = draw(st.none() | st.just([HostedTool(dialect=NAME, data={
        "type": "web_search_20250305", "name": "web_search", "max_uses": 3})]))
    choice: ToolChoice | None = None
    parallel: bool | None = None
    if tool_list or hosted:
        choice = draw(st.none() | st.sampled_from([
            ToolChoice(mode="auto"), ToolChoice(mode="none"), ToolChoice(mode="required"),
            ToolChoice(mode="tool", name="web_search")]))
        # (None + parallel False renders as {"type":"auto",…}: not an identity)
        if choice is not None and choice.mode != "none":
            parallel = draw(st.sampled_from([None, False, True]))
    mode: Literal["enabled", "adaptive", "disabled"] | None = draw(
        st.sampled_from([None, "enabled", "adaptive", "disabled"]))
    reasoning: Reasoning | None = None
    if mode is not None or draw(st.booleans()):
        reasoning = Reasoning(
            mode=mode,
            budget_tokens=draw(st.integers(1024, 40000)) if mode == "enabled" else None,
            effort=draw(st.sampled_from([None, "low", "medium", "high", "xhigh", "max"])),
            summary=(draw(st.sampled_from([None, "summarized", "omitted"]))
                     if mode in ("enabled", "adaptive") else None),
        )
        if reasoning.mode is None and reasoning.effort is None:
            reasoning = None
    user = draw(st.none() | text)
    return ChatRequest(
        model=draw(nonempty),
        messages=draw(conversations()),
        system=draw(st.none() | st.lists(st.builds(Text, text=nonempty, cache_control=cache),
                                         min_size=1, max_size=3)),
        tools=tool_list,
        hosted_tools=hosted,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        max_tokens=draw(st.integers(1, 200000)),
        temperature=draw(st.none() | st.floats(0, 1)),
        top_p=draw(st.none() | st.floats(0, 1)),
        top_k=draw(st.none() | st.integers(0, 500)),
        stop=draw(st.none() | st.lists(nonempty, min_size=1, max_size=3)),
        response_format=draw(st.none() | st.builds(
            ResponseFormat, type=st.just("json_schema"), schema=json_object)),
        reasoning=reasoning,
        stream=draw(st.booleans()),
        user=user,
        metadata={"user_id": user} if user is not None else None,
        dialect=NAME,
    )


@SETTINGS
@given(requests())
def test_request_round_trip(req: ChatRequest) -> None:
    body = json.loads(json.dumps(render_request(req, inline_system=True)))
    back = parse_request(body)
    assert back.extra is None
    assert back == req


# --- responses ------------------------------------------------------------------------------

usages = st.builds(
    lambda inp, cached, write, out, reasoning: Usage(
        input_tokens=inp + cached + write, cached_tokens=cached, cache_write_tokens=write,
        output_tokens=out + reasoning, reasoning_tokens=reasoning),
    st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**5),
    st.integers(0, 10**5), st.integers(0, 10**4))
stops = st.one_of(
    st.sampled_from([(StopReason.END_TURN, None), (StopReason.MAX_TOKENS, None),
                     (StopReason.TOOL_USE, None), (StopReason.REFUSAL, None)]),
    nonempty.map(lambda s: (StopReason.STOP_SEQUENCE, s)))
response_parts = st.one_of(
    st.builds(Text, text=text), thinking, redacted, server_tool,
    st.builds(ToolCall, id=ident.map(lambda s: "toolu_" + s), name=ident,
              arguments=json_object.map(compact_json)))


@SETTINGS
@given(st.lists(response_parts, max_size=6), stops, usages)
def test_response_round_trip(content: list[Any], stop: tuple[StopReason, str | None],
                             usage: Usage) -> None:
    resp = ChatResponse(id=CTX.id, model=CTX.model, content=content, stop_reason=stop[0],
                        stop_sequence=stop[1], usage=usage)
    body = json.loads(render_response(resp, CTX))
    assert parse_response(body) == resp


# --- streams --------------------------------------------------------------------------------


@st.composite
def event_streams(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    n_calls = 0
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "thinking", "redacted", "tool", "custom",
                                     "opaque", "usage", "agent"]))
        if kind == "text":
            events += [TextDelta(text=t) for t in draw(st.lists(nonempty, min_size=1,
                                                                max_size=3))]
        elif kind == "thinking":
            deltas = [ThinkingDelta(text=t) for t in draw(st.lists(nonempty, max_size=3))]
            events += deltas
            if draw(st.booleans()):
                events.append(ThinkingEnd(signature=draw(nonempty), origin="anthropic"))
            elif len(deltas) > 0 and draw(st.booleans()):
                events.append(ThinkingEnd())  # (an empty unsigned block is not shown)
        elif kind == "redacted":
            events.append(RedactedThinkingBlock(data=draw(nonempty), origin="anthropic"))
        elif kind in ("tool", "custom"):
            n_calls += 1
            cid = f"toolu_{n_calls}"
            custom = kind == "custom"
            events.append(ToolCallStart(id=cid, name="apply_patch" if custom else draw(ident),
                                        kind="custom" if custom else "function"))
            if custom:
                pieces = draw(st.lists(nonempty, max_size=3))
            else:  # the SDK's accumulator insists on JSON objects: split one at random
                # (a tool_use input is always an object: no deltas reads back as "{}")
                args = compact_json(draw(json_object))
                cuts = sorted(draw(st.lists(st.integers(0, len(args)), max_size=3)))
                bounds = [0, *cuts, len(args)]
                pieces = [args[a:b] for a, b in itertools.pairwise(bounds)
                          if args[a:b]]
            events += [ToolCallDelta(id=cid, arguments=a) for a in pieces]
            if draw(st.booleans()):
                events.append(ToolCallEnd(id=cid))
        elif kind == "opaque":
            events.append(OpaqueItem(part=draw(server_tool)))
        elif kind == "usage":
            events.append(UsageUpdate(usage=draw(usages)))
        else:
            events += [StepStart(index=1), AgentToolResult(id="a", name="b", result="r")]
    terminal = draw(st.one_of(
        stops.map(lambda s: Finish(stop_reason=s[0], stop_sequence=s[1])),
        st.sampled_from([Overloaded("Overloaded"), RateLimited("slow"), UpstreamError("x"),
                         UpstreamTimeout("late"), NotFound("gone"), InvalidRequest("bad")])
        .map(lambda e: StreamError(error=e)),
    ))
    events.append(terminal)
    return events


def _collect_or_error(events: list[StreamEvent]) -> Any:
    try:
        return collect(events, CTX.id, CTX.model)
    except DragomanError as e:
        return (e.kind, e.message)


@SETTINGS
@given(event_streams())
def test_stream_round_trip(events: list[StreamEvent]) -> None:
    r = StreamRenderer(CTX)
    raw = r.start() + b"".join(r.feed(ev) for ev in events)
    validate_stream(raw)
    p = StreamParser(custom_tools={"apply_patch"})
    parsed: list[StreamEvent] = []
    for name, data in split_frames(raw):
        parsed += p.feed(name, data)
    parsed += p.close()
    assert _collect_or_error(parsed) == _collect_or_error(events)


# --- fuzzing --------------------------------------------------------------------------------

any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20)

VALID: dict[str, Any] = {
    "model": "m", "max_tokens": 100, "system": [{"type": "text", "text": "s",
                                                 "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "doc"}, "title": "t"}]},
        {"role": "system", "content": "note"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": False,
             "content": [{"type": "text", "text": "r"}]}, {"type": "text", "text": "go"}]},
    ],
    "tools": [{"name": "f", "input_schema": {"type": "object"}},
              {"type": "web_search_20250305", "name": "web_search"}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {}}},
    "metadata": {"user_id": "u"}, "stop_sequences": ["x"], "temperature": 1, "stream": True,
}


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(VALID)


@st.composite
def mutated_bodies(draw: st.DrawFn) -> Any:
    body = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        cur: Any = body
        try:
            for k in path[:-1]:
                cur = cur[k]
            cur[path[-1]] = draw(any_json)
        except (KeyError, IndexError, TypeError):
            pass
    return body


def test_valid_fuzz_base_parses() -> None:
    parse_request(VALID)


@settings(max_examples=200, deadline=None)
@given(st.one_of(any_json, mutated_bodies()))
def test_parse_request_raises_only_invalid_request(body: Any) -> None:
    for parse in (parse_request, parse_count_tokens_request):
        try:
            parse(body)
        except InvalidRequest as e:
            assert e.message
        # any other exception fails the test


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.none() | st.sampled_from(
    ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
     "message_delta", "message_stop", "error", "ping"]),
    st.one_of(any_json.map(json.dumps), st.text(max_size=20))), max_size=12))
def test_stream_parser_raises_only_dragoman_errors(frames: list[tuple[str | None, str]]
                                                   ) -> None:
    # (a named event with corrupt data is an UpstreamError: the answer lost a piece)
    p = StreamParser(custom_tools={"f"})
    with contextlib.suppress(DragomanError):
        for name, data in frames:
            p.feed(name, data)
        p.close()


@settings(max_examples=150, deadline=None)
@given(st.one_of(any_json, mutated_bodies()))
def test_parse_response_raises_only_dragoman_errors(body: Any) -> None:
    with contextlib.suppress(DragomanError):
        parse_response(body)


@settings(max_examples=100, deadline=None)
@given(st.integers(100, 599), st.one_of(st.binary(max_size=64),
                                        any_json.map(lambda v: json.dumps(v).encode())))
def test_parse_error_always_classifies(status: int, body: bytes) -> None:
    assert isinstance(parse_error(status, body), DragomanError)


@pytest.mark.parametrize("frames", [b"", b"event: ping\ndata: {}\n\n"])
def test_split_frames_helper(frames: bytes) -> None:
    split_frames(frames)
