"""Same-dialect forwarding (each dialect's ``forward`` rules, relayed by ``net.sse``'s
``SseRelay``), byte for byte: whatever way the upstream's bytes are split, the client gets
exactly those bytes (minus only a withheld usage chunk), usage is read from the
usage-bearing frames, and a stream without its terminal event is ended with the
dialect's own error frames."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dragoman.core import ChatRequest, Message, Text, TransportError
from dragoman.dialects import anthropic_messages, openai_chat, openai_responses
from dragoman.dialects.contract import Forward, ForwardStream
from dragoman.net.sse import SseRelay
from tests.fakes.cut_upstream import USAGE, chat_frames, messages_frames, responses_frames

CHAT, RESP, MSG = openai_chat.NAME, openai_responses.NAME, anthropic_messages.NAME
FORWARDS: dict[str, Forward] = {
    d.name: d.forward for d in (openai_chat.DIALECT, openai_responses.DIALECT,
                                anthropic_messages.DIALECT) if d.forward is not None}
STREAMS = {CHAT: chat_frames, RESP: responses_frames, MSG: messages_frames}


def run(dialect: str, blob: bytes, cuts: list[int], withhold: bool = False
        ) -> tuple[bytes, SseRelay, ForwardStream]:
    """The stream relayed in the pieces ``cuts`` makes, by the relay of ``net.sse`` with
    the dialect's forwarding rules watching."""
    watch = FORWARDS[dialect].stream(withhold)
    relay = SseRelay(watch)
    out = b""
    prev = 0
    for c in [*sorted(set(cuts)), len(blob)]:
        out += relay.feed(blob[prev:c])
        prev = c
    out += relay.end()
    return out, relay, watch


def whole(dialect: str) -> bytes:
    head, rest = STREAMS[dialect]()
    return b"".join(head + rest)


@settings(max_examples=60, deadline=None)
@given(dialect=st.sampled_from([CHAT, RESP, MSG]), crlf=st.booleans(),
       cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
def test_bytes_pass_unchanged_whatever_the_split(dialect: str, crlf: bool,
                                                 cuts: list[int]) -> None:
    blob = whole(dialect)
    if crlf:
        blob = blob.replace(b"\n", b"\r\n")
    out, relay, watch = run(dialect, blob, [c % (len(blob) + 1) for c in cuts])
    assert out == blob
    assert relay.terminal
    assert watch.usage is not None
    assert (watch.usage.input_tokens, watch.usage.output_tokens) == (USAGE["in"], USAGE["out"])


def test_withheld_chat_usage_chunk() -> None:
    blob = whole(CHAT)
    out, _, watch = run(CHAT, blob, [50, 51, 300], withhold=True)
    frames = [f for f in out.split(b"\n\n") if f]
    assert frames[-1] == b"data: [DONE]"
    assert all(b'"usage":{' not in f for f in frames)
    assert out == blob.replace(frames_with_usage(blob), b"")
    assert watch.usage is not None and watch.usage.output_tokens == USAGE["out"]


def frames_with_usage(blob: bytes) -> bytes:
    return next(f + b"\n\n" for f in blob.split(b"\n\n") if b'"usage":{' in f)


def test_anthropic_usage_merges_start_and_delta() -> None:
    _, _, watch = run(MSG, whole(MSG), [])
    assert watch.usage is not None
    # message_start's input, message_delta's cumulative output
    assert (watch.usage.input_tokens, watch.usage.output_tokens) == (USAGE["in"], USAGE["out"])


def sse_events(raw: bytes) -> list[tuple[str | None, object]]:
    out: list[tuple[str | None, object]] = []
    for frame in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        event, data = None, []
        for line in frame.split(b"\n"):
            if line.startswith(b"event: "):
                event = line[7:].decode()
            elif line.startswith(b"data: "):
                data.append(line[6:].decode())
        if data:
            text = "\n".join(data)
            out.append((event, text if text == "[DONE]" else json.loads(text)))
    return out


def test_missing_terminal_gets_the_dialects_error() -> None:
    for dialect, check in ((CHAT, _chat_failed), (RESP, _responses_failed),
                           (MSG, _messages_failed)):
        head, _ = STREAMS[dialect]()
        blob = b"".join(head)
        out, relay, _ = run(dialect, blob, [len(blob) // 2])
        assert out.startswith(blob)
        assert not relay.terminal
        check(sse_events(out[len(blob):]), sse_events(blob))


def test_transport_failure_drops_the_half_frame() -> None:
    head, _ = STREAMS[RESP]()
    blob = b"".join(head)
    relay = SseRelay(FORWARDS[RESP].stream(False))
    out = relay.feed(blob + b"event: response.output_text.delta\ndata: {\"type\":")
    assert out == blob
    tail = relay.fail(TransportError("upstream stream broke"))
    _responses_failed(sse_events(tail), sse_events(blob))


def _chat_failed(events: list[tuple[str | None, object]], before: object) -> None:
    assert events[-1] == (None, "[DONE]")
    err = events[0][1]
    assert isinstance(err, dict) and err["error"]["message"]


def _messages_failed(events: list[tuple[str | None, object]], before: object) -> None:
    assert len(events) == 1
    name, data = events[0]
    assert name == "error" and isinstance(data, dict)
    assert data["type"] == "error" and data["error"]["type"]


def _responses_failed(events: list[tuple[str | None, object]],
                      before: list[tuple[str | None, object]]) -> None:
    assert len(events) == 1
    name, data = events[0]
    assert name == "response.failed" and isinstance(data, dict)
    last_seq = before[-1][1]["sequence_number"]  # type: ignore[index]
    assert data["sequence_number"] == last_seq + 1
    resp = data["response"]
    assert resp["id"] == "resp_cut01" and resp["status"] == "failed"
    assert resp["error"]["message"] and resp["error"]["code"]


def test_anthropic_system_message_inside_messages_is_not_forwarded_as_is() -> None:
    forward = FORWARDS[MSG]
    req = ChatRequest(model="m", messages=[Message(role="system", content=[Text(text="s")]),
                                           Message(role="user", content=[Text(text="u")])])
    assert forward.request({"model": "m", "messages": []}, req, "up") is None
    req.messages = req.messages[1:]
    planned = forward.request({"model": "m", "max_tokens": 5}, req, "up")
    assert planned == ({"model": "up", "max_tokens": 5}, False)


def test_chat_stream_asks_for_usage_only_when_the_client_did_not() -> None:
    forward = FORWARDS[CHAT]
    req = ChatRequest(model="m")
    body = {"model": "m", "stream": True, "stream_options": {"foo": 1}}
    up, withhold = forward.request(body, req, "up") or ({}, False)
    assert up["stream_options"] == {"foo": 1, "include_usage": True} and withhold
    assert body["stream_options"] == {"foo": 1}  # the client's body is not modified
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    up, withhold = forward.request(body, req, "up") or ({}, True)
    assert up["stream_options"] == {"include_usage": True} and not withhold
    up, withhold = forward.request({"model": "m"}, req, "up") or ({}, True)
    assert up == {"model": "up"} and not withhold
