"""OpenAI Chat dialect: property tests (round trips through both directions, and a fuzz
test proving that any JSON input gives a ChatRequest or an InvalidRequest, nothing else)."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dragoman.core import (
    ChatRequest,
    ChatResponse,
    File,
    Finish,
    HostedTool,
    Image,
    InvalidRequest,
    Message,
    Opaque,
    Part,
    Reasoning,
    RedactedThinking,
    ResponseFormat,
    StopReason,
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
    Usage,
    UsageUpdate,
    collect,
)
from dragoman.core.events import OpaqueItem, RedactedThinkingBlock
from dragoman.dialects.contract import RenderContext
from dragoman.dialects.openai_chat import (
    StreamParser,
    StreamRenderer,
    parse_request,
    parse_response,
    render_request,
    render_response,
)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def wire(obj: Any) -> Any:
    """Through real JSON bytes, as on the wire."""
    return json.loads(msgspec.json.encode(obj))


# --- strategies -----------------------------------------------------------------------------

text = st.text(min_size=1, max_size=20)
maybe_text = st.none() | text
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_object = st.dictionaries(st.text(max_size=8), json_value, max_size=4)
b64 = st.binary(min_size=1, max_size=30).map(lambda b: base64.b64encode(b).decode())
detail = st.none() | st.sampled_from(["auto", "low", "high"])

image = st.one_of(
    st.builds(
        Image,
        mime=st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
        data=b64,
        detail=detail,
    ),
    st.builds(
        Image, url=st.sampled_from(["https://example.com/a.png", "http://x/y?z=1"]), detail=detail
    ),
)
file = st.one_of(
    st.builds(File, mime=st.just("application/pdf"), data=b64, filename=maybe_text),
    st.builds(File, file_id=text, filename=maybe_text),
    st.builds(File, data=b64),
)
texts = st.lists(st.builds(Text, text=text), min_size=1, max_size=3)


@st.composite
def conversation(draw: st.DrawFn) -> list[Message]:
    msgs: list[Message] = []
    ids = iter(draw(st.lists(text, min_size=12, max_size=12, unique=True)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["system", "developer", "user", "exchange"]))
        name = draw(maybe_text)
        if kind in ("system", "developer"):
            msgs.append(Message(role=kind, content=list(draw(texts)), name=name))  # type: ignore[arg-type]
            continue
        user_parts: list[Part] = draw(
            st.lists(st.one_of(st.builds(Text, text=text), image, file), min_size=1, max_size=4)
        )
        msgs.append(Message(role="user", content=user_parts, name=name))
        if kind != "exchange":
            continue
        content: list[Part] = list(draw(st.lists(st.builds(Text, text=text), max_size=2)))
        calls = [
            ToolCall(
                id=next(ids),
                name=draw(text),
                arguments=draw(st.text(max_size=20)),
                kind=draw(st.sampled_from(["function", "custom"])),
            )
            for _ in range(draw(st.integers(0, 3)))
        ]
        msgs.append(Message(role="assistant", content=content + calls, name=draw(maybe_text)))
        if calls:
            msgs.append(
                Message(
                    role="tool",
                    content=[
                        ToolResult(call_id=c.id, kind=c.kind, content=list(draw(texts)))
                        for c in calls
                    ],
                )
            )
    return msgs


@st.composite
def tools_and_choice(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(text, min_size=1, max_size=4, unique=True))
    tools = []
    for n in names:
        if draw(st.booleans()):
            tools.append(
                Tool(
                    name=n,
                    description=draw(maybe_text),
                    parameters=draw(st.none() | json_object),
                    strict=draw(st.none() | st.booleans()),
                )
            )
        else:
            tools.append(
                Tool(
                    name=n,
                    kind="custom",
                    description=draw(maybe_text),
                    format=draw(st.none() | st.just({"type": "text"})),
                )
            )
    choice = draw(
        st.one_of(
            st.none(),
            st.sampled_from(["auto", "none", "required"]).map(lambda m: ToolChoice(mode=m)),  # type: ignore[arg-type]
            st.sampled_from(names).map(lambda n: ToolChoice(mode="tool", name=n)),
            st.builds(
                ToolChoice,
                mode=st.sampled_from(["auto", "required"]),
                allowed=st.lists(st.sampled_from(names), min_size=1, max_size=3),
            ),
        )
    )
    hosted = draw(
        st.none()
        | st.just([HostedTool(dialect="openai_chat", data={"type": "web_search_preview"})])
    )
    return {
        "tools": tools,
        "tool_choice": choice,
        "hosted_tools": hosted,
        "parallel_tool_calls": draw(st.none() | st.booleans()),
    }


response_format = st.one_of(
    st.none(),
    st.sampled_from(["text", "json_object"]).map(lambda t: ResponseFormat(type=t)),  # type: ignore[arg-type]
    st.builds(
        ResponseFormat,
        type=st.just("json_schema"),
        name=text,
        schema=st.none() | json_object,
        strict=st.none() | st.booleans(),
        description=maybe_text,
    ),
)
finite = st.floats(0, 2, allow_nan=False)


@st.composite
def chat_requests(draw: st.DrawFn) -> ChatRequest:
    stream = draw(st.booleans())
    tool_fields = draw(st.none() | tools_and_choice())
    extra = draw(
        st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "presence_penalty": finite,
                "logprobs": st.booleans(),
                "service_tier": text,
                "store": st.booleans(),
            },
        ).filter(bool)
    )
    return ChatRequest(
        model=draw(text),
        messages=draw(conversation()),
        **(tool_fields or {}),
        max_tokens=draw(st.none() | st.integers(1, 10**6)),
        temperature=draw(st.none() | finite),
        top_p=draw(st.none() | finite),
        stop=draw(st.none() | st.lists(text, min_size=1, max_size=4)),
        seed=draw(st.none() | st.integers(-(2**31), 2**31)),
        response_format=draw(response_format),
        reasoning=draw(
            st.none()
            | st.builds(
                Reasoning,
                effort=st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh"]),
            )
        ),
        stream=stream,
        include_usage=stream,  # a streaming upstream request always asks for usage
        metadata=draw(st.none() | st.dictionaries(text, text, max_size=3)),
        user=draw(maybe_text),
        dialect="openai_chat",
        extra=extra,
    )


# --- (1) request: neutral → render_request → parse_request ----------------------------------


@SETTINGS
@given(chat_requests())
def test_request_round_trip(req: ChatRequest) -> None:
    back = parse_request(wire(render_request(req)))
    assert back == req


# --- (2) response: neutral → render_response → parse_response -------------------------------


@st.composite
def chat_responses(draw: st.DrawFn) -> ChatResponse:
    content: list[Part] = []
    if draw(st.booleans()):
        content.append(Thinking(text=draw(text)))
    has_text = draw(st.booleans())
    if has_text:
        content.append(Text(text=draw(text)))
    ids = draw(st.lists(text, max_size=3, unique=True))
    content += [
        ToolCall(
            id=i,
            name=draw(text),
            arguments=draw(st.text(max_size=30)),
            kind=draw(st.sampled_from(["function", "custom"])),
        )
        for i in ids
    ]
    reasons = [StopReason.MAX_TOKENS, StopReason.CONTENT_FILTER]
    if ids:
        reasons.append(StopReason.TOOL_USE)
    else:
        reasons.append(StopReason.END_TURN)
        if has_text:
            reasons.append(StopReason.REFUSAL)
    counts = st.integers(0, 10**7)
    return ChatResponse(
        id="chatcmpl-fixed",
        model="gpt-test",
        content=content,
        stop_reason=draw(st.sampled_from(reasons)),
        usage=Usage(
            input_tokens=draw(counts),
            output_tokens=draw(counts),
            cached_tokens=draw(counts),
            cache_write_tokens=draw(counts),
            reasoning_tokens=draw(counts),
        ),
        created=draw(st.integers(0, 2**40)),
    )


@SETTINGS
@given(chat_responses())
def test_response_round_trip(resp: ChatResponse) -> None:
    ctx = RenderContext(id=resp.id, model=resp.model, created=resp.created)
    assert parse_response(json.loads(render_response(resp, ctx))) == resp


# --- (3) stream: events → StreamRenderer → SSE frames → StreamParser → collect --------------


@st.composite
def event_streams(draw: st.DrawFn) -> tuple[list[StreamEvent], Usage]:
    def pieces(s: str) -> list[str]:
        cuts = sorted(draw(st.lists(st.integers(1, max(len(s) - 1, 1)), max_size=3, unique=True)))
        out, prev = [], 0
        for c in [*cuts, len(s)]:
            if c > prev:
                out.append(s[prev:c])
                prev = c
        return out

    events: list[StreamEvent] = []
    ids = iter(draw(st.lists(text, min_size=6, max_size=6, unique=True)))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "thinking", "call", "redacted", "opaque"]))
        if kind == "text":
            events += [TextDelta(text=p) for p in pieces(draw(text))]
        elif kind == "thinking":
            events += [ThinkingDelta(text=p) for p in pieces(draw(text))]
            events.append(ThinkingEnd(signature=draw(maybe_text), origin="anthropic"))
        elif kind == "call":
            cid = next(ids, None)
            if cid is None:
                continue
            events.append(
                ToolCallStart(
                    id=cid, name=draw(text), kind=draw(st.sampled_from(["function", "custom"]))
                )
            )
            args = draw(st.text(max_size=30))
            if args:
                events += [ToolCallDelta(id=cid, arguments=p) for p in pieces(args)]
            events.append(ToolCallEnd(id=cid))
        elif kind == "redacted":
            events.append(RedactedThinkingBlock(data="x", origin="anthropic"))
        else:
            events.append(OpaqueItem(part=Opaque(dialect="anthropic_messages", data={"t": 1})))
    usage = Usage(
        input_tokens=draw(st.integers(0, 10**6)),
        output_tokens=draw(st.integers(0, 10**6)),
        cached_tokens=draw(st.integers(0, 100)),
        reasoning_tokens=draw(st.integers(0, 100)),
    )
    events.append(UsageUpdate(usage=usage))
    events.append(Finish(stop_reason=draw(st.sampled_from(list(StopReason)))))
    return events, usage


def _chat_view(resp: ChatResponse, with_usage: bool) -> ChatResponse:
    """What survives Chat: no signatures, redacted thinking or foreign items; adjacent text
    (and reasoning) runs merge; stop reasons fold onto finish_reason's five values."""
    content: list[Part] = []
    for p in resp.content:
        if isinstance(p, (RedactedThinking, Opaque)):
            continue
        if isinstance(p, Thinking):
            p = Thinking(text=p.text)
        if content and type(content[-1]) is type(p) and isinstance(p, (Text, Thinking)):
            prev = content[-1]
            assert isinstance(prev, (Text, Thinking))
            content[-1] = type(p)(text=prev.text + p.text)
        else:
            content.append(p)
    reason = {
        StopReason.MAX_STEPS: StopReason.MAX_TOKENS,
        StopReason.STOP_SEQUENCE: StopReason.END_TURN,
        StopReason.REFUSAL: StopReason.END_TURN,
        StopReason.ERROR: StopReason.END_TURN,
    }.get(resp.stop_reason, resp.stop_reason)
    if reason is StopReason.END_TURN and any(isinstance(p, ToolCall) for p in content):
        reason = StopReason.TOOL_USE
    return ChatResponse(
        id=resp.id,
        model=resp.model,
        content=content,
        stop_reason=reason,
        usage=resp.usage if with_usage else Usage(),
    )


@SETTINGS
@given(event_streams(), st.booleans())
def test_stream_round_trip(stream: tuple[list[StreamEvent], Usage], include_usage: bool) -> None:
    events, _ = stream
    ctx = RenderContext(
        id="chatcmpl-s",
        model="gpt-test",
        created=5,
        request=ChatRequest(model="gpt-test", stream=True, include_usage=include_usage),
    )
    renderer = StreamRenderer(ctx)
    raw = renderer.start() + b"".join(renderer.feed(ev) for ev in events)
    parser = StreamParser()
    parsed: list[StreamEvent] = []
    for frame in raw.split(b"\n\n"):
        if frame:
            assert frame.startswith(b"data: ")
            parsed += parser.feed(None, frame[6:].decode())
    parsed += parser.close()
    assert isinstance(parsed[-1], Finish)
    got = collect(parsed, "chatcmpl-s", "gpt-test")
    assert got == _chat_view(collect(events, "chatcmpl-s", "gpt-test"), include_usage)


# --- (4) fuzz: any JSON → ChatRequest or InvalidRequest -------------------------------------


def _parse_or_invalid(body: Any) -> None:
    try:
        req = parse_request(body)
    except InvalidRequest as e:
        assert e.message and e.status == 400
        return
    assert isinstance(req, ChatRequest) and req.dialect == "openai_chat"
    msgspec.json.encode(req)  # a parsed request is always serialisable (sessions store)


@settings(max_examples=200, deadline=None)
@given(json_value)
def test_fuzz_any_json(body: Any) -> None:
    _parse_or_invalid(body)


part_types = st.sampled_from(["text", "image_url", "file", "input_audio", "refusal", "x"])
near_part = st.fixed_dictionaries(
    {"type": part_types},
    optional={
        "text": json_value,
        "refusal": json_value,
        "image_url": json_value
        | st.fixed_dictionaries(
            {
                "url": st.sampled_from(
                    [
                        "https://a/b.png",
                        "data:image/png;base64,AAAA",
                        "data:x",
                        "data:;base64,@@",
                        "",
                    ]
                )
                | json_value
            },
            optional={"detail": json_value},
        ),
        "file": json_value
        | st.fixed_dictionaries(
            {},
            optional={
                "file_data": st.sampled_from(
                    ["data:application/pdf;base64,JVBE", "raw", "data:bad"]
                )
                | json_value,
                "file_id": json_value,
                "filename": json_value,
            },
        ),
    },
)
near_call = st.fixed_dictionaries(
    {},
    optional={
        "id": json_value | text,
        "type": st.sampled_from(["function", "custom", "x"]) | json_value,
        "function": json_value
        | st.fixed_dictionaries({}, optional={"name": json_value | text, "arguments": json_value}),
        "custom": json_value
        | st.fixed_dictionaries({}, optional={"name": json_value | text, "input": json_value}),
    },
)
near_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"])
        | json_value
    },
    optional={
        "content": json_value | text | st.lists(near_part | json_value, max_size=3),
        "name": json_value | text,
        "tool_call_id": json_value | text,
        "tool_calls": json_value | st.lists(near_call | json_value, max_size=3),
        "function_call": json_value
        | st.fixed_dictionaries({}, optional={"name": json_value | text, "arguments": json_value}),
        "refusal": json_value,
        "reasoning_content": json_value,
    },
)
near_tool = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["function", "custom", "web_search"]) | json_value,
        "function": json_value
        | st.fixed_dictionaries(
            {},
            optional={
                "name": json_value | text,
                "parameters": json_value,
                "strict": json_value,
                "description": json_value,
            },
        ),
        "custom": json_value
        | st.fixed_dictionaries({}, optional={"name": json_value | text, "format": json_value}),
    },
)
near_choice = (
    json_value
    | st.sampled_from(["auto", "none", "required"])
    | st.fixed_dictionaries(
        {"type": st.sampled_from(["function", "custom", "allowed_tools"]) | json_value},
        optional={
            "function": json_value,
            "custom": json_value,
            "name": json_value,
            "allowed_tools": json_value
            | st.fixed_dictionaries(
                {},
                optional={
                    "mode": st.sampled_from(["auto", "required"]) | json_value,
                    "tools": json_value | st.lists(json_value | near_tool, max_size=2),
                },
            ),
        },
    )
)
near_request = st.fixed_dictionaries(
    {"model": text | json_value, "messages": st.lists(near_message | json_value, max_size=4)},
    optional={
        "stream": json_value,
        "stream_options": json_value,
        "max_tokens": json_value,
        "max_completion_tokens": json_value,
        "n": json_value,
        "stop": json_value,
        "temperature": json_value,
        "top_p": json_value,
        "seed": json_value,
        "user": json_value,
        "metadata": json_value,
        "reasoning_effort": json_value,
        "parallel_tool_calls": json_value,
        "response_format": json_value
        | st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "json_object", "json_schema"]) | json_value},
            optional={"json_schema": json_value},
        ),
        "tools": json_value | st.lists(near_tool | json_value, max_size=3),
        "functions": json_value,
        "function_call": json_value,
        "tool_choice": near_choice,
        "whatever": json_value,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_request)
def test_fuzz_near_valid_requests(body: dict[str, Any]) -> None:
    _parse_or_invalid(body)


def test_parsed_request_survives_the_sessions_codec() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ],
            },
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "custom", "custom": {"name": "p", "input": "i"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "r"},
        ],
    }
    req = parse_request(body)
    assert msgspec.json.decode(msgspec.json.encode(req), type=ChatRequest) == req
