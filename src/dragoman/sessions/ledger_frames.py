"""The frames between the gateway and its ledger writer process (``ledger_writer``): a
4-byte big-endian length, then a msgpack body. Gateway to writer: one batch,
``[key, rows, frame]`` (``batch_frame``): its key (``ledger_staging.BatchKeys``), its row
count, and its rows as msgpack bytes (a list of rows, each a list of ``usage.COLUMNS``
values), which the writer stages as they are, without decoding them. Writer to gateway:
``READY`` once its connection is open, then per batch ``None`` once committed (staged) or
``[error class, message]`` when the batch failed (rolled back)."""

from __future__ import annotations

import struct

import msgspec

HEADER = struct.Struct(">I")

#: the writer's first frame: its connection to the database is open
READY = "ready"

_encode = msgspec.msgpack.Encoder().encode


def frame(body: object) -> bytes:
    data = _encode(body)
    return HEADER.pack(len(data)) + data


def rows_frame(rows: object) -> bytes:
    """A batch's rows as they are staged (msgpack, no header)."""
    return _encode(rows)


def batch_frame(key: str, rows: list[tuple[object, ...]]) -> bytes:
    """One batch for the writer: its rows encoded once, then wrapped (a copy of bytes)."""
    return frame([key, len(rows), _encode(rows)])
