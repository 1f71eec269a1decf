"""Gemini dialect: hypothesis round trips and fuzzing (parsers only ever fail with core
errors; what Gemini said survives a trip through the neutral model back to Gemini)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dragoman.core import (
    ChatRequest,
    DragomanError,
    Finish,
    InvalidRequest,
    Message,
    StreamError,
    StreamEvent,
    Text,
    ToolCall,
    ToolResult,
)
from dragoman.dialects.gemini import (
    SKIP_SIGNATURE,
    StreamParser,
    parse_error,
    parse_response,
    render_request,
)

SETTINGS = settings(max_examples=150, deadline=None)

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_value = st.recursive(json_leaf, lambda c: st.lists(c, max_size=4)
                          | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20)

# Google-shaped fragments, to get past the first checks more often than pure noise does
part_keys = st.sampled_from(["text", "thought", "thoughtSignature", "functionCall",
                             "inlineData", "executableCode", "id", "name", "args"])
gemini_like = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(
        st.sampled_from(["candidates", "content", "parts", "finishReason", "usageMetadata",
                         "promptFeedback", "blockReason", "error", "code", "status",
                         "details", "retryDelay", "@type", "responseId"]) | part_keys,
        c, max_size=5), max_leaves=25)


@SETTINGS
@given(st.integers(min_value=100, max_value=599), st.binary(max_size=300) | json_value.map(
    lambda v: json.dumps(v).encode()) | gemini_like.map(lambda v: json.dumps(v).encode()))
def test_parse_error_always_classifies(status: int, body: bytes) -> None:
    err = parse_error(status, body)
    assert isinstance(err, DragomanError)
    assert 400 <= err.status < 600


@SETTINGS
@given(st.lists(st.text(max_size=40) | json_value.map(json.dumps)
                | gemini_like.map(json.dumps), max_size=6))
def test_stream_parser_never_raises_and_ends_once(chunks: list[str]) -> None:
    parser = StreamParser()
    events: list[StreamEvent] = []
    for c in chunks:
        events += parser.feed(None, c)
    events += parser.close()
    terminal = [e for e in events if isinstance(e, (Finish, StreamError))]
    assert len(terminal) == 1 and terminal[0] is events[-1]


@SETTINGS
@given(json_value | gemini_like)
def test_parse_response_fails_only_with_core_errors(body: Any) -> None:
    with contextlib.suppress(DragomanError):
        parse_response(body)


# --- round trip: Gemini's own model turn comes back as Gemini sent it -------------------------

words = st.text(alphabet="abcdefgh xyz.", min_size=1, max_size=12)
signatures = st.text(alphabet="ABCDEFabcdef0123456789+/=", min_size=4, max_size=24)
args = st.dictionaries(st.sampled_from(["city", "n", "flag"]),
                       st.integers() | words | st.booleans(), max_size=3)


@st.composite
def model_parts(draw: st.DrawFn) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        if draw(st.booleans()):
            p: dict[str, Any] = {"text": draw(words)}
        else:
            fc: dict[str, Any] = {"name": draw(st.sampled_from(["f", "g"])), "args": draw(args)}
            if draw(st.booleans()):
                fc["id"] = f"fc-{len(parts)}"
            p = {"functionCall": fc}
        if draw(st.booleans()):
            p["thoughtSignature"] = draw(signatures)
        parts.append(p)
    return parts


def normalized(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a faithful replay looks like: adjacent unsigned-then-text parts merge (the
    neutral model has one text part per run), the first call of the turn is signed."""
    out: list[dict[str, Any]] = []
    for p in parts:
        p = json.loads(json.dumps(p))
        last = out[-1] if out else None
        if last is not None and "text" in p and "text" in last \
                and "thoughtSignature" not in p:
            last["text"] += p["text"]
            continue
        out.append(p)
    calls = [p for p in out if "functionCall" in p]
    if calls and "thoughtSignature" not in calls[0]:
        calls[0]["thoughtSignature"] = SKIP_SIGNATURE
    return out


@SETTINGS
@given(model_parts())
def test_model_turn_round_trip(parts: list[dict[str, Any]]) -> None:
    resp = parse_response({"candidates": [{"content": {"role": "model", "parts": parts},
                                           "finishReason": "STOP"}], "responseId": "rt"})
    calls = resp.tool_calls()
    msgs = [Message(role="user", content=[Text(text="go")]),
            Message(role="assistant", content=resp.content)]
    if calls:
        msgs.append(Message(role="tool", content=[
            ToolResult(call_id=c.id, content=[Text(text=f"r{i}")]) for i, c in enumerate(calls)]))
    body = render_request(ChatRequest(model="m", messages=msgs))
    assert body["contents"][1] == {"role": "model", "parts": normalized(parts)}
    if calls:
        responses = [p["functionResponse"] for p in body["contents"][2]["parts"]]
        sent = [p["functionCall"] for p in parts if "functionCall" in p]
        assert [r["name"] for r in responses] == [c["name"] for c in sent]
        assert [r.get("id") for r in responses] == [c.get("id") for c in sent]


@SETTINGS
@given(st.lists(st.sampled_from(["user", "assistant", "tool", "system"]), max_size=6),
       st.lists(st.sampled_from(["call_a", "call_b", "call_gemini_0123456789abcdef"]),
                max_size=6))
def test_render_fails_only_with_a_clear_400(roles: list[str], ids: list[str]) -> None:
    msgs: list[Message] = []
    for i, role in enumerate(roles):
        cid = ids[i % len(ids)] if ids else "call_x"
        if role == "assistant":
            msgs.append(Message(role="assistant", content=[
                ToolCall(id=cid, name="f", arguments="{")]))
        elif role == "tool":
            msgs.append(Message(role="tool", content=[ToolResult(call_id=cid)]))
        else:
            msgs.append(Message(role=role, content=[Text(text="t")]))  # type: ignore[arg-type]
    try:
        body = render_request(ChatRequest(model="m", messages=msgs))
    except InvalidRequest as e:
        assert "tool" in e.message.lower()
        return
    json.dumps(body)
    for c in body["contents"]:
        assert c["role"] in ("user", "model") and c["parts"]
