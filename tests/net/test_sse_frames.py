"""The SSE decoder's fast paths (one-line ``data:`` frames, ``event:`` + ``data:`` frames)
give exactly what the line-by-line grammar gives, however the bytes are cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dragoman.net import SseDecoder

LINES = st.sampled_from([
    b"data: {\"a\":1}", b"data:x", b"data", b"data: ", b"event: message_start", b"event:e",
    b"event", b": keep-alive", b"id: 7", b"retry: 10", b"data: \xc3\xa9t\xc3\xa9", b"",
    b"data: [DONE]", b"other: y",
])
ENDS = st.sampled_from([b"\n", b"\r\n", b"\r"])


def reference(stream: bytes) -> list[tuple[str | None, str]]:
    """The WHATWG grammar, one line at a time over the whole stream (what the decoder did
    before it worked frame by frame)."""
    out: list[tuple[str | None, str]] = []
    event: str | None = None
    data: list[str] = []
    text = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = text.split(b"\n")
    if not text.endswith(b"\n"):
        lines.append(b"")  # end of stream ends the last line and the last event
    for line in lines:
        if not line:
            if data or event is not None:
                out.append((event, "\n".join(data)))
            event, data = None, []
            continue
        if line.startswith(b":"):
            continue
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if data or event is not None:
        out.append((event, "\n".join(data)))
    return out


@given(st.lists(st.tuples(LINES, ENDS), max_size=20),
       st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_frames_match_the_line_grammar(lines: list[tuple[bytes, bytes]],
                                       cuts: list[int]) -> None:
    stream = b"".join(line + end for line, end in lines)
    d = SseDecoder()
    out = []
    prev = 0
    for c in sorted(min(c, len(stream)) for c in cuts):
        out += d.feed(stream[prev:c])
        prev = c
    out += d.feed(stream[prev:])
    out += d.close()
    assert out == reference(stream)


def test_common_shapes_are_delivered_when_their_blank_line_arrives() -> None:
    d = SseDecoder()
    assert d.feed(b'data: {"a":1}\n') == []
    assert d.feed(b"\nevent: ping\ndata: x\n") == [(None, '{"a":1}')]
    assert d.feed(b"\n") == [("ping", "x")]
    assert d.feed(b"event: e\ndata: a\ndata: b\n\n") == [("e", "a\nb")]
