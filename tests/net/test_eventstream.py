"""The AWS event-stream decoder, byte for byte.

Frames are built from the spec by the test helpers in ``tests.fakes.bedrock`` (never by
dragoman); botocore's own decoder reads the same bytes as a cross-check of the helpers,
and one frame is a literal test vector (the empty message: prelude CRC 0x05c248eb,
message CRC 0x7d98c8ff).
"""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer

from dragoman.core import TransportError, UpstreamError
from dragoman.net.eventstream import (
    MAX_HEADERS_LENGTH,
    MAX_PAYLOAD_LENGTH,
    EventStreamDecoder,
    EventStreamMessage,
)
from tests.fakes.bedrock import es_frame, es_header, event, exception

EMPTY_MESSAGE = bytes.fromhex("00000010" "00000000" "05c248eb" "7d98c8ff")

UUID = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0").bytes
ALL_TYPES = (es_header("t", True, 0) + es_header("f", False, 1) + es_header("i8", -7, 2)
             + es_header("i16", -300, 3) + es_header("i32", 70000, 4)
             + es_header("i64", -(2 ** 40), 5) + es_header("raw", b"\x00\xff\x10", 6)
             + es_header("str", "héllo", 7) + es_header("ts", 1_700_000_000_123, 8)
             + es_header("id", UUID, 9))
ALL_VALUES = {"t": True, "f": False, "i8": -7, "i16": -300, "i32": 70000, "i64": -(2 ** 40),
              "raw": b"\x00\xff\x10", "str": "héllo", "ts": 1_700_000_000_123, "id": UUID}


def decode_all(data: bytes, cut: list[int] | None = None) -> list[EventStreamMessage]:
    d = EventStreamDecoder()
    out: list[EventStreamMessage] = []
    prev = 0
    for i in [*(cut or []), len(data)]:
        out += d.feed(data[prev:i])
        prev = i
    d.close()
    return out


def as_tuples(msgs: list[EventStreamMessage]) -> list[tuple[dict[str, object], bytes]]:
    return [(m.headers, m.payload) for m in msgs]


def botocore_tuples(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buf = EventStreamBuffer()
    buf.add_data(data)
    return [(m.headers, m.payload) for m in buf]


def test_empty_message_vector() -> None:
    assert es_frame(b"", b"") == EMPTY_MESSAGE  # the helper agrees with the vector
    (msg,) = decode_all(EMPTY_MESSAGE)
    assert msg.headers == {} and msg.payload == b""
    assert msg.message_type == "event"


def test_every_header_type() -> None:
    frame = es_frame(ALL_TYPES, b'{"x":1}')
    (msg,) = decode_all(frame)
    assert msg.headers == ALL_VALUES
    assert msg.payload == b'{"x":1}'
    # botocore reads the helper's bytes the same way (uuid and bytes as raw bytes)
    assert botocore_tuples(frame) == [(ALL_VALUES, b'{"x":1}')]


STREAM = (event("messageStart", {"role": "assistant"})
          + event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé"}})
          + es_frame(b"", b"")
          + exception("throttlingException", "slow down"))


def test_split_at_every_offset() -> None:
    want = as_tuples(decode_all(STREAM))
    assert len(want) == 4
    assert want == botocore_tuples(STREAM)
    assert want[0][0][":event-type"] == "messageStart"
    assert want[3][0][":message-type"] == "exception"
    for i in range(len(STREAM) + 1):
        assert as_tuples(decode_all(STREAM, [i])) == want, f"split at {i}"


def test_split_at_every_pair_of_offsets_and_byte_by_byte() -> None:
    frame = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}})
    want = as_tuples(decode_all(frame + frame))
    n = len(frame) + 5
    for i in range(n):
        for j in range(i, n):
            assert as_tuples(decode_all(frame + frame, [i, j])) == want
    assert as_tuples(decode_all(STREAM, list(range(len(STREAM))))) == \
        as_tuples(decode_all(STREAM))


def test_feed_returns_each_frame_as_soon_as_it_is_complete() -> None:
    d = EventStreamDecoder()
    a, b = es_frame(es_header("n", "a"), b"1"), es_frame(es_header("n", "b"), b"2")
    assert d.feed(a[:-1]) == []
    assert d.pending == len(a) - 1
    got = d.feed(a[-1:] + b[:3])
    assert [m.payload for m in got] == [b"1"]
    assert [m.payload for m in d.feed(b[3:])] == [b"2"]
    assert d.pending == 0
    d.close()


def test_bad_prelude_crc_fails_as_soon_as_the_prelude_is_in() -> None:
    frame = es_frame(es_header("a", "b"), b"payload", bad_prelude_crc=True)
    d = EventStreamDecoder()
    assert d.feed(frame[:11]) == []
    with pytest.raises(UpstreamError, match="prelude CRC"):
        d.feed(frame[11:12])  # 12 bytes: never waits for a length it cannot trust
    with pytest.raises(UpstreamError):
        d.feed(b"")  # poisoned: no resynchronisation on garbage


def test_bad_message_crc() -> None:
    good = es_frame(b"", b"ok")
    bad = es_frame(es_header("a", "b"), b"payload", bad_message_crc=True)
    d = EventStreamDecoder()
    # the good frame before the corruption is delivered; the corruption right after it
    (msg,) = d.feed(good + bad)
    assert msg.payload == b"ok"
    for then in (d.check, lambda: d.feed(good), d.close):
        with pytest.raises(UpstreamError, match="message CRC"):
            then()
    d = EventStreamDecoder()
    with pytest.raises(UpstreamError, match="message CRC"):
        d.feed(bad)
    # a flipped payload byte is caught the same way
    flipped = bytearray(es_frame(b"", b"payload"))
    flipped[14] ^= 1
    with pytest.raises(UpstreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(flipped))


def _prelude(total: int, hlen: int) -> bytes:
    head = struct.pack(">II", total, hlen)
    return head + struct.pack(">I", zlib.crc32(head))


@pytest.mark.parametrize(("total", "hlen", "why"), [
    (16 + MAX_HEADERS_LENGTH + 1, MAX_HEADERS_LENGTH + 1, "headers of"),
    (16 + MAX_PAYLOAD_LENGTH + 1, 0, "payload of"),
    (15, 0, "shorter"),
    (20, 10, "shorter"),
])
def test_limits_and_impossible_lengths_fail_at_the_prelude(total: int, hlen: int,
                                                           why: str) -> None:
    with pytest.raises(UpstreamError, match=why):
        EventStreamDecoder().feed(_prelude(total, hlen))


def test_largest_payload_allowed_is_accepted_at_the_prelude() -> None:
    d = EventStreamDecoder()
    assert d.feed(_prelude(16 + MAX_PAYLOAD_LENGTH, 0)) == []  # waits for the bytes


def test_truncated_frame_at_end_of_stream() -> None:
    frame = event("messageStop", {"stopReason": "end_turn"})
    d = EventStreamDecoder()
    assert d.feed(frame[:-3]) == []
    with pytest.raises(TransportError, match="middle of a frame"):
        d.close()
    EventStreamDecoder().close()  # nothing pending: a clean end


@pytest.mark.parametrize(("headers", "why"), [
    (b"\x01a\x0a", "unknown header type 10"),
    (b"\x05ab", "truncated header"),
    (b"\x01a\x07\x00\x05ab", "truncated header value"),
    (b"\x01a\x04\x00\x00", "truncated header value"),
    (es_header("a", "x") + es_header("a", "y"), "duplicate header"),
    (b"\x01a\x07\x00\x02\xff\xfe", "not UTF-8"),
    (b"\x02\xff\xfe\x00", "not UTF-8"),
])
def test_malformed_headers(headers: bytes, why: str) -> None:
    with pytest.raises(UpstreamError, match=why):
        EventStreamDecoder().feed(es_frame(headers, b""))


def test_string_header_accessor_and_repr_hide_the_payload() -> None:
    (msg,) = decode_all(exception("validationException", "secret-ish text"))
    assert msg.message_type == "exception"
    assert msg.header(":exception-type") == "validationException"
    assert msg.header(":missing") is None
    assert "secret-ish" not in repr(msg)


def test_repeated_header_blocks_decode_to_their_own_headers() -> None:
    # The decoder parses each distinct header block once; past its memory of 32 blocks it
    # still parses the rest.
    kinds = [f"kind{i}" for i in range(40)]
    frames = [event(k, {"n": i}) for i, k in enumerate(kinds * 2)]
    msgs = decode_all(b"".join(frames))
    assert [m.header(":event-type") for m in msgs] == kinds * 2
    assert [m.payload.startswith(b'{"n":%d' % i) for i, m in enumerate(msgs)] == [True] * 80
