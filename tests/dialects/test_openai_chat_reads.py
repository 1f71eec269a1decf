"""A read of Chat chunks taken at once (``SseDecoder.data_frames`` → ``feed_data``, runs of
text deltas → ``feed_texts``) gives exactly what a frame at a time gives: the same events
for every chunk shape (text, role, finish, usage, tool calls, refusals, reasoning, two
choices, error, malformed, empty, ``[DONE]`` anywhere), however the bytes are cut, and
the same frames for every text."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dragoman.core import StreamEvent, TextDelta
from dragoman.dialects import openai_chat
from dragoman.dialects.contract import RenderContext
from dragoman.net import SseDecoder
from dragoman.providers.upstream_call import EventReader


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                       "model": "m", "choices": choices, **extra})


DATA = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "word "}),
    _chunk({"content": 'a "quoted", \\ é 😀 "," text'}),
    _chunk({"content": None}),
    _chunk({}, "stop"),
    _chunk({}, "length"),
    _chunk(None, usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}),
    _chunk({"content": "u"}, usage={"prompt_tokens": 1, "completion_tokens": 1}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "f", "arguments": ""}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":1}'}}]}),
    _chunk({"refusal": "no"}),
    _chunk({"reasoning_content": "hm"}),
    json.dumps({"choices": [{"index": 0, "delta": {"content": "first"}},
                            {"index": 1, "delta": {"content": "second"}}]}),
    json.dumps({"choices": [{"index": 1, "delta": {"content": "other"}}]}),
    json.dumps({"error": {"message": "overloaded", "type": "server_error"}}),
    "{not json",
    "",
    "[DONE]",
]
FRAMES = st.sampled_from([f"data: {d}\n\n".encode() for d in DATA]
                         + [b": keep-alive\n\n", b'data: {"choices":[]}\r\n\r\n'])


def _events(stream: bytes, cuts: list[int], at_once: bool) -> str:
    parser = openai_chat.DIALECT.stream_parser()
    reader = EventReader(SseDecoder(), parser)
    if not at_once:
        reader._data = None  # a frame at a time, as before
    out: list[StreamEvent] = []
    prev = 0
    for c in [*sorted(min(c, len(stream)) for c in cuts), len(stream)]:
        reader.feed(stream[prev:c], out)
        prev = c
    reader.end(out)
    # (errors compare by identity: their repr says what they are; a call without an id
    # gets a random one)
    return re.sub(r"call_[0-9a-f]{24}", "call_new", repr(out))


@given(st.lists(FRAMES, max_size=16), st.lists(st.integers(0, 3000), max_size=5))
def test_a_read_at_once_gives_the_events_of_a_frame_at_a_time(
        frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frames)
    assert _events(stream, cuts, True) == _events(stream, cuts, False)


def test_a_chat_reader_takes_reads_at_once() -> None:
    # (so the property above compares the two ways, not one way with itself)
    parser = openai_chat.DIALECT.stream_parser()
    assert EventReader(SseDecoder(), parser)._data is not None


def _renderer() -> Any:
    req = openai_chat.DIALECT.parse_request({
        "model": "m", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}]})
    return openai_chat.DIALECT.stream_renderer(
        RenderContext(id="chatcmpl-x", model="m", created=1, request=req))


TEXTS = st.lists(st.one_of(st.sampled_from(["", ",", '","', '"', "\\", '\\","', "é", "\n"]),
                           st.text()), max_size=8)


@given(st.lists(TEXTS, max_size=5))
def test_a_run_of_text_deltas_gives_the_frames_of_one_at_a_time(runs: list[list[str]]) -> None:
    at_once, one_by_one = _renderer(), _renderer()
    for texts in runs:
        deltas = [TextDelta(text=t) for t in texts]
        assert at_once.feed_texts(deltas) == b"".join(map(one_by_one.feed, deltas))
