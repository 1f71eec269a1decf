"""A batch of usage-ledger rows encoded for staging (``ledger_staging``) on the event
loop without holding it: a slice of ``SLICE_ROWS`` rows at a time, the loop turning
between two slices, into parts of at most ``PART_ROWS`` rows.

Why slices (bench/README.md, "One ledger batch a second"): a batch encoded at once held a
loaded gateway's loop 0.2-0.4 ms per 500 rows, a delay for the request that arrived
meanwhile, once per batch; a second's batch (up to 5,000 rows) would hold it ten times
longer. Why parts: the SQLite store sends one
batch a second (``SqliteStore.ledger_batch_rows``: one ``COMMIT`` and one fsync a second
instead of one per 500 rows), and each part is staged as a row of its own, so the fold
still moves ``FOLD_CHUNK`` rows per transaction, not a whole second's batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec

from .ledger_frames import Part, part
from .ledger_staging import FOLD_CHUNK
from .usage import UsageValues

#: rows per part: one staged row, one fold transaction
PART_ROWS = FOLD_CHUNK
#: the most rows of a batch the SQLite store takes (``SqliteStore.ledger_batch_rows``):
#: one batch a second up to 5,000 requests a second per worker
BATCH_ROWS = 5000
#: rows encoded between two turns of the loop (~11 µs of msgpack on the bench machine with
#: warm caches; a 500-row batch whole held a loaded gateway's loop 0.2-0.4 ms)
SLICE_ROWS = 100

_encode = msgspec.msgpack.Encoder().encode


def _array_header(n: int) -> bytes:
    """msgpack's header of an ``n``-element array (``n`` < 65,536): one byte below 16."""
    return bytes((0x90 | n,)) if n < 16 else b"\xdc" + n.to_bytes(2, "big")


async def encode_parts(rows: Sequence[UsageValues]) -> list[Part]:
    """``rows`` as parts of at most ``PART_ROWS`` rows, each decoding to its rows as
    ``part`` would encode them; the loop turns after each slice of ``SLICE_ROWS``."""
    parts: list[Part] = []
    for start in range(0, len(rows), PART_ROWS):
        chunk = rows[start:start + PART_ROWS]
        if len(chunk) <= SLICE_ROWS:  # (one slice: encoded as it is, no copy)
            parts.append(part(chunk))
            await asyncio.sleep(0)
            continue
        # the slices' arrays without their own headers, behind the part's header
        body = bytearray(_array_header(len(chunk)))
        for i in range(0, len(chunk), SLICE_ROWS):
            piece = chunk[i:i + SLICE_ROWS]
            body += memoryview(_encode(piece))[len(_array_header(len(piece))):]
            await asyncio.sleep(0)
        parts.append((len(chunk), bytes(body)))
    return parts
