"""The usage ledger's writer process (``python -m dragoman.sessions.ledger_writer PATH
BUSY_TIMEOUT INSERT_SQL PRIORITY``, PRIORITY ``idle`` or a nice value, or
``ledger_process.BOOT``, which imports less), started by the gateway (``ledger_process``): it owns a
connection of its own to the sessions database, reads batches from stdin, inserts each in
one transaction as the in-process writer does (``ledger_inserts``) and
answers each on stdout after its ``COMMIT``.

Why a process (bench/README.md, "The ledger writer in a process of its own"): in a thread,
binding a row's values holds the gateway's GIL, so the requests arriving meanwhile wait;
here the binding runs under this process's own GIL.

It ends at the end of its stdin: when the gateway closes it after its last batch, or when
the gateway dies (the kernel closes the pipe), so no writer outlives its gateway. SIGINT
and SIGTERM are ignored: a Ctrl-C or a SIGTERM to the whole process group reaches the
gateway too, whose graceful shutdown still sends its last batch here.
"""

from __future__ import annotations

import signal
import sys
from typing import BinaryIO

import msgspec

from .ledger_frames import HEADER, READY, frame
from .ledger_inserts import LedgerInserts, connect
from .ledger_priority import lower_priority
from .usage import FLAGS, NULLABLE

_NAN = float("nan")


def _read(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None  # short: the gateway closed the pipe


def _plain(rows: list[list[object]]) -> list[list[object]]:
    """``rows`` with values sqlite3 binds as they are: None as NaN (which SQLite binds as
    NULL, as it does None), a bool as 0 or 1 (as its registered adapter would). Each value
    sqlite3 has to adapt costs it a key tuple built, hashed and looked up, and the
    adapter's call: ~750 instructions, ~1.7k a row after this loop's own cost
    (bench/README.md, "A usage-ledger row for less")."""
    for row in rows:
        for i in NULLABLE:
            if row[i] is None:
                row[i] = _NAN
        for i in FLAGS:
            row[i] = 1 if row[i] else 0
    return rows


def serve(path: str, busy_timeout: float, insert_sql: str, stdin: BinaryIO,
          stdout: BinaryIO) -> None:
    inserts = LedgerInserts(lambda: connect(path, busy_timeout), insert_sql)
    # untyped: lists of msgpack's own values, nothing checked per value (a typed decoder
    # asked ``isinstance`` of each ``object``: ~1k instructions a row)
    decode = msgspec.msgpack.Decoder().decode
    inserts.open()
    stdout.write(frame(READY))
    stdout.flush()
    while (header := _read(stdin, HEADER.size)) is not None:
        body = _read(stdin, HEADER.unpack(header)[0])
        if body is None:
            break
        try:
            inserts.batch(_plain(decode(body)))
            answer: object = None
        except Exception as e:  # the gateway raises it (sqlite3's errors as themselves)
            answer = [type(e).__name__, str(e)]
        stdout.write(frame(answer))
        stdout.flush()
    inserts.close()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    path, busy_timeout, insert_sql, priority = argv
    lower_priority(priority)
    serve(path, float(busy_timeout), insert_sql, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])
