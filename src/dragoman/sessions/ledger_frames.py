"""The frames between the gateway and its ledger writer process (``ledger_writer``): a
4-byte big-endian length, then a msgpack body. Gateway to writer: one batch,
``[key, parts]`` (``batch_frame``): its key (``ledger_staging.BatchKeys``) and its
**parts**, each ``[rows, frame]``: a row count and those rows as msgpack bytes (a list of
rows, each a list of ``usage.COLUMNS`` values), which the writer stages as they are,
without decoding them, one staged row per part (``ledger_parts`` says why a batch has
parts). Writer to gateway: ``READY`` once its connection is open, then per batch ``None``
once committed (staged) or ``[error class, message]`` when the batch failed (rolled
back)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import msgspec

HEADER = struct.Struct(">I")

#: the writer's first frame: its connection to the database is open
READY = "ready"

#: one part of a batch: its row count and its rows, msgpack
Part = tuple[int, bytes]

_encode = msgspec.msgpack.Encoder().encode


def frame(body: object) -> bytes:
    data = _encode(body)
    return HEADER.pack(len(data)) + data


def part(rows: Sequence[object]) -> Part:
    """``rows`` as one part, encoded at once (``ledger_parts.encode_parts`` encodes a
    gateway's batch a slice at a time)."""
    return len(rows), _encode(rows)


def batch_frame(key: str, parts: Sequence[Part]) -> bytes:
    """One batch for the writer (its parts' bytes copied once more into the frame)."""
    return frame([key, parts])
