"""Unit tests of the pieces the server is built from: the SSE decoder, the echo script,
the collector."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dragoman.core import (
    ChatRequest,
    Finish,
    InvalidRequest,
    Message,
    StopReason,
    Text,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    UsageUpdate,
    collect,
    events_of,
)
from dragoman.net import SseDecoder
from dragoman.providers.echo import EchoProvider, parse_script

FRAMES = (b"event: message_start\ndata: {\"a\":1}\n\n: comment\n\n"
          b"data: line one\ndata: line two\n\nevent: x\r\ndata: \xc3\xa9t\xc3\xa9\r\n\r\n"
          b"data: [DONE]\n\n")
EXPECTED = [("message_start", '{"a":1}'), (None, "line one\nline two"), ("x", "été"),
            (None, "[DONE]")]


def test_sse_whole() -> None:
    assert SseDecoder().feed(FRAMES) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(FRAMES)), max_size=12))
def test_sse_split_anywhere(cuts: list[int]) -> None:
    d = SseDecoder()
    out = []
    prev = 0
    for c in sorted(cuts):
        out += d.feed(FRAMES[prev:c])
        prev = c
    out += d.feed(FRAMES[prev:])
    out += d.close()
    assert out == EXPECTED


def test_sse_close_delivers_unterminated_event() -> None:
    d = SseDecoder()
    assert d.feed(b"data: tail") == []
    assert d.close() == [(None, "tail")]


def _req(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=[Text(text=text)])], **kw)  # type: ignore[arg-type]


def test_echo_script_directives() -> None:
    s = parse_script(_req('hello\n::tool a {"x":1}\n::custom patch *** Begin\n::think hmm\n::delay 5'))
    assert s.text == ["hello"]
    assert s.tools == [("function", "a", '{"x":1}'), ("custom", "patch", "*** Begin")]
    assert s.thinking == ["hmm"] and s.delay_ms == 5.0
    for bad in ("::tool a {nope", "::error not_a_kind", "::bogus", "::stop sideways"):
        with pytest.raises(InvalidRequest):
            parse_script(_req(bad))


def test_echo_reports_tool_results() -> None:
    req = ChatRequest(model="m", messages=[Message(role="tool", content=[
        ToolResult(call_id="c1", content=[Text(text="42")]),
        ToolResult(call_id="c2", content=[Text(text="boom")], is_error=True)])])
    assert parse_script(req).text == ["Tool c1 result: 42", "Tool c2 error: boom"]


async def test_echo_max_tokens_truncates() -> None:
    resp = await EchoProvider().complete(_req("one two three four", max_tokens=2))
    assert resp.text() == "one two " and resp.stop_reason is StopReason.MAX_TOKENS


async def test_echo_thinking_and_tools() -> None:
    resp = await EchoProvider().complete(_req('::think why not\n::tool t {"k":true}'))
    kinds = [type(p).__name__ for p in resp.content]
    assert kinds == ["Thinking", "ToolCall"]
    assert resp.content[0].signature  # type: ignore[union-attr]
    assert resp.stop_reason is StopReason.TOOL_USE


def test_collect_and_events_of_are_inverse() -> None:
    events = [ThinkingDelta(text="a"), ThinkingEnd(signature="sig", origin="anthropic"),
              TextDelta(text="Hel"), TextDelta(text="lo"),
              ToolCallStart(id="c", name="f"), ToolCallDelta(id="c", arguments='{"a"'),
              ToolCallDelta(id="c", arguments=":1}"), ToolCallEnd(id="c"),
              UsageUpdate(usage=Usage(input_tokens=3, output_tokens=4)),
              Finish(stop_reason=StopReason.TOOL_USE)]
    resp = collect(events, "id", "m")
    assert resp.text() == "Hello" and resp.tool_calls()[0].arguments == '{"a":1}'
    assert collect(events_of(resp), "id", "m") == resp


def test_ndjson_split_anywhere() -> None:
    from dragoman.core import UpstreamError
    from dragoman.net import NdjsonDecoder

    data = b'{"a":1}\n\n{"b":"\xc3\xa9"}\r\n{"c":[1,2]}'
    for cut in range(len(data) + 1):
        d = NdjsonDecoder()
        got = d.feed(data[:cut]) + d.feed(data[cut:]) + d.close()
        assert got == [{"a": 1}, {"b": "é"}, {"c": [1, 2]}]
    with pytest.raises(UpstreamError):
        NdjsonDecoder().feed(b"{nope\n")
