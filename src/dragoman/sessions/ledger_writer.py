"""The usage ledger's writer process (``python -m dragoman.sessions.ledger_writer PATH
BUSY_TIMEOUT INSERT_SQL PRIORITY``, PRIORITY ``idle`` or a nice value, or
``ledger_process.BOOT``, which imports less), started by the gateway (``ledger_process``):
it owns a connection of its own to the sessions database, reads batches from stdin,
stages each as one row (``ledger_staging``: its frame as received, not decoded) and
answers each on stdout after that ``COMMIT``. Between batches it folds the staged ones
into ``usage_ledger``: when none has come for ``QUIET`` seconds or after each batch under
light traffic (``LedgerStage.light``), chunk by chunk, a new batch staged between two
chunks; and a chunk after each batch while more than ``FOLD_BOUND`` rows are staged.

Why a process (bench/README.md, "The ledger writer in a process of its own"): in a thread,
binding a row's values holds the gateway's GIL, so the requests arriving meanwhile wait;
here the binding runs under this process's own GIL. Why staged (bench/README.md, "The
ledger's batches staged, folded when quiet"): the row inserts, even here, ran on the
gateway's core at the moments requests arrived.

It ends at the end of its stdin: when the gateway closes it after its last batch, or when
the gateway dies (the kernel closes the pipe), so no writer outlives its gateway. SIGINT
and SIGTERM are ignored: a Ctrl-C or a SIGTERM to the whole process group reaches the
gateway too, whose graceful shutdown still sends its last batch here.
"""

from __future__ import annotations

import io
import select
import signal
import sqlite3
import sys
from typing import BinaryIO

import msgspec

from .ledger_frames import HEADER, READY, frame
from .ledger_inserts import connect
from .ledger_priority import lower_priority
from .ledger_staging import FOLD_BOUND, FOLD_CHUNK, QUIET, LedgerStage, log


class Input:
    """The gateway's frames on an unbuffered stream (what is in the pipe is all there is,
    so ``waits`` can tell whether a batch waits); any stream without a file descriptor
    (bench/ledger_rows.py's buffer) always has one waiting."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (OSError, AttributeError, io.UnsupportedOperation):
            self._fd = None

    def waits(self, timeout: float) -> bool:
        """Whether a frame (or the end of the stream) is there, within ``timeout``."""
        return self._fd is None or bool(select.select([self._fd], [], [], timeout)[0])

    def read(self, n: int) -> bytes | None:
        """``n`` bytes; None at the end (the gateway closed the pipe)."""
        data = self._stream.read(n)
        while data and len(data) < n:  # (a pipe hands over what it holds)
            more = self._stream.read(n - len(data))
            if not more:
                return None
            data += more
        return data if len(data) == n else None


def _folded(stage: LedgerStage, waiting: Input, bound: bool) -> None:
    """Fold chunk by chunk until nothing is staged (or, with ``bound``, no more than
    ``FOLD_BOUND`` rows, a chunk at least) or a batch waits."""
    try:
        if bound:
            stage.fold(FOLD_CHUNK)
        while stage.staged > (FOLD_BOUND if bound else 0) and not waiting.waits(0):
            stage.fold(FOLD_CHUNK)
    except sqlite3.Error as e:  # (the store busy past the timeout, the disk full…)
        log.error("folding the staged usage-ledger batches failed (%s: %s); they stay "
                  "staged, for the next fold or read", type(e).__name__, e)
        stage.staged = 0  # not again before the next batch


def serve(path: str, busy_timeout: float, insert_sql: str, stdin: BinaryIO,
          stdout: BinaryIO) -> None:
    stage = LedgerStage(lambda: connect(path, busy_timeout), insert_sql)
    decode = msgspec.msgpack.Decoder().decode  # (``[key, parts]``: ledger_frames)
    stage.open()
    stdout.write(frame(READY))
    stdout.flush()
    waiting = Input(stdin)
    while True:
        if stage.staged and not waiting.waits(QUIET):  # quiet (leftovers too): fold
            _folded(stage, waiting, bound=False)
            continue
        header = waiting.read(HEADER.size)
        body = waiting.read(HEADER.unpack(header)[0]) if header is not None else None
        if body is None:
            break
        try:
            key, parts = decode(body)
            stage.stage(key, parts)
            answer: object = None
        except Exception as e:  # the gateway raises it (sqlite3's errors as themselves)
            answer = [type(e).__name__, str(e)]
        stdout.write(frame(answer))
        stdout.flush()
        if stage.staged > FOLD_BOUND:
            _folded(stage, waiting, bound=True)
        elif stage.light:  # light traffic: no pause to wait for
            _folded(stage, waiting, bound=False)
    stage.close()


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    path, busy_timeout, insert_sql, priority = argv
    lower_priority(priority)
    # unbuffered: a batch in Python's buffer would be one ``select`` does not see
    with open(sys.stdin.fileno(), "rb", buffering=0, closefd=False) as stdin:
        serve(path, float(busy_timeout), insert_sql, stdin, sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])
