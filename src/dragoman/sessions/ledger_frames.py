"""The frames between the gateway and its ledger writer process (``ledger_writer``): a
4-byte big-endian length, then a msgpack body. Gateway to writer: one batch, a list of
rows (each a list of ``usage.COLUMNS`` values). Writer to gateway: ``READY`` once its
connection is open, then per batch ``None`` once committed or ``[error class, message]``
when the batch failed (rolled back)."""

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
