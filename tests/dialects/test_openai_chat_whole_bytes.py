"""A whole Chat answer read from its bytes (``parse_response_bytes``: a typed decode for
the common shape, the general reading for any other) gives exactly what decoding it and
``parse_response`` give: for every answer shape (text, refusal, reasoning, tool calls,
citations, usage details, odd types and counts, errors, two choices) and JSON that does
not parse, which both refuse."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dragoman.core import DragomanError
from dragoman.dialects import openai_chat

USAGE: list[Any] = [
    {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
     "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
     "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0,
                                   "accepted_prediction_tokens": 0}},
    {"prompt_tokens": 3, "completion_tokens": 1,
     "prompt_tokens_details": {"cached_tokens": 1, "cache_write_tokens": 2}},
    {"prompt_tokens": -3, "completion_tokens": 1.7},
    {"prompt_tokens": True, "completion_tokens": None},
    {"prompt_tokens": 1, "prompt_tokens_details": None, "completion_tokens_details": "x"},
    {}, None, "many", [1],
]
MESSAGES: list[Any] = [
    {"role": "assistant", "content": "an answer"},
    {"role": "assistant", "content": "an answer", "refusal": None, "annotations": []},
    {"role": "assistant", "content": ""},
    {"role": "assistant", "content": None},
    {"role": "assistant", "content": 'é 😀 "quoted" \\ text'},
    {"role": "assistant", "content": [{"type": "text", "text": "parts"}]},
    {"role": "assistant", "content": None, "refusal": "no"},
    {"role": "assistant", "content": "so", "reasoning_content": "hm"},
    {"role": "assistant", "content": "so", "reasoning": ""},
    {"role": "assistant", "content": "see", "annotations": [{"type": "url_citation",
     "url_citation": {"url": "https://x.example", "start_index": 0, "end_index": 3,
                      "title": "X"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    {"role": "assistant", "content": None,
     "function_call": {"name": "f", "arguments": "{}"}},
    {"role": "assistant", "content": "x", "audio": None, "vendor_field": 1},
    None, "text", [],
]
FINISH: list[Any] = ["stop", "length", "tool_calls", "content_filter", None, "odd", 3]


def _answer(message: Any, finish: Any, usage: Any, **top: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "m", "system_fingerprint": "fp", "service_tier": "default",
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": usage, **top}


def _same(raw: bytes) -> None:
    try:
        want: Any = openai_chat.parse_response(msgspec.json.decode(raw))
    except (DragomanError, msgspec.DecodeError) as e:
        want = type(e), str(e)
    try:
        got: Any = openai_chat.parse_response_bytes(raw)
    except (DragomanError, msgspec.DecodeError) as e:
        got = type(e), str(e)
    if isinstance(want, tuple) or isinstance(got, tuple):
        assert got == want
    else:
        assert _without_fresh_ids(got, raw) == _without_fresh_ids(want, raw)


def _without_fresh_ids(resp: Any, raw: bytes) -> Any:
    """(a tool call without an id gets a fresh one on each reading)"""
    out = msgspec.to_builtins(resp)
    for part in out.get("content", []):
        if "id" in part and part["id"].encode() not in raw:
            part["id"] = "fresh"
    return out


@given(st.sampled_from(MESSAGES), st.sampled_from(FINISH), st.sampled_from(USAGE))
def test_every_answer_shape_reads_the_same(message: Any, finish: Any, usage: Any) -> None:
    _same(json.dumps(_answer(message, finish, usage)).encode())


@pytest.mark.parametrize("body", [
    # the envelope: ids, times and models of other types, errors, choices
    _answer(MESSAGES[0], "stop", USAGE[0], id=None, created=True, model=3),
    _answer(MESSAGES[0], "stop", USAGE[0], created=1.5),
    _answer(MESSAGES[0], "stop", USAGE[0], error={"message": "ignored: choices came"}),
    {"error": {"message": "overloaded", "type": "server_error"}},
    {"error": "a bare string"},
    {"choices": [{"index": 1, "message": {"content": "second"}},
                 {"index": 0, "message": {"content": "first"}}]},
    {"choices": [{"message": {"content": "no index"}}]},
    {"choices": [{"index": 2, "message": {"content": "no first"}}]},
    {"choices": ["x", {"index": 0, "message": {"content": "after junk"}}]},
    {"choices": "x"}, {"choices": []}, {"choices": None}, {},
    [1], "just a string", 3,
])
def test_odd_answers_read_the_same(body: Any) -> None:
    _same(json.dumps(body).encode())


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"choices": [', b"\xff\xfe"])
def test_json_that_does_not_parse_is_refused_by_both(raw: bytes) -> None:
    _same(raw)
    with pytest.raises(msgspec.DecodeError):
        openai_chat.parse_response_bytes(raw)


def test_the_common_answer_takes_the_typed_decode() -> None:
    """(so that the test above compares two readings, not one with itself)"""
    from dragoman.dialects.openai_chat import parse

    raw = json.dumps(_answer(MESSAGES[1], "stop", USAGE[1])).encode()
    resp = parse._typed(parse._decode_typed(raw))
    assert resp is not None and resp.text() == "an answer"
    assert resp.usage.cached_tokens == 4 and resp.usage.reasoning_tokens == 2
