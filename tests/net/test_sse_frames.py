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


def _by_data_frames(stream: bytes, cuts: list[int]) -> list[tuple[str | None, str]]:
    """What a reader gets that asks ``data_frames`` first and ``feed``s a read it
    declines (the translating reader's order)."""
    d = SseDecoder()
    out: list[tuple[str | None, str]] = []
    prev = 0
    for c in [*sorted(min(c, len(stream)) for c in cuts), len(stream)]:
        read = stream[prev:c]
        prev = c
        datas = d.data_frames(read)
        if datas is None:
            out += d.feed(read)
        else:
            out += [(None, data.decode("utf-8", "replace")) for data in datas]
    out += d.close()
    return out


@given(st.lists(st.tuples(LINES, ENDS), max_size=20),
       st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_data_frames_match_the_line_grammar(lines: list[tuple[bytes, bytes]],
                                            cuts: list[int]) -> None:
    stream = b"".join(line + end for line, end in lines)
    assert _by_data_frames(stream, cuts) == reference(stream)


DATA_ONLY = st.lists(st.sampled_from([
    b'data: {"a":1}\n\n', b"data: \n\n", b"data: [DONE]\n\n", b"data: data: x\n\n",
    b"data: \xc3\xa9t\xc3\xa9\n\n", b"data: \xff\n\n"]), max_size=12)


@given(DATA_ONLY, st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_data_only_streams_are_split_in_one_go(frames: list[bytes], cuts: list[int]) -> None:
    # Every read of a stream of one-line data frames is taken whole (none declined)
    stream = b"".join(frames)
    d = SseDecoder()
    got: list[bytes] = []
    prev = 0
    for c in [*sorted(min(c, len(stream)) for c in cuts), len(stream)]:
        datas = d.data_frames(stream[prev:c])
        prev = c
        assert datas is not None
        got += datas
    assert got == [f[6:-2] for f in frames]


def test_data_frames_declines_other_shapes_without_consuming() -> None:
    d = SseDecoder()
    assert d.data_frames(b'data: {"a":1}\n\ndata: {"b"') == [b'{"a":1}']
    # the rest of the held frame, then a frame with an event line: declined, kept
    assert d.data_frames(b':2}\n\nevent: e\ndata: x\n\n') is None
    assert d.feed(b':2}\n\nevent: e\ndata: x\n\n') == [(None, '{"b":2}'), ("e", "x")]
    assert d.data_frames(b"data: y\r\n\r\n") is None  # CR line ends
    assert d.data_frames(b"data: z\n") == []  # nothing complete yet: held
    assert d.data_frames(b"\n") == [b"z"]
