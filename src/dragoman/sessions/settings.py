"""Session store settings: backend, location, pool, retention."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Backend = Literal["sqlite", "postgres", "memory"]

DEFAULT_TTL = 30 * 86400.0  # OpenAI keeps stored responses for 30 days
DEFAULT_LOCK_WAIT = 5.0

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")


def parse_duration(value: str | float | int) -> float:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"45s"``, ``"2w"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 7d, 12h, 30m or a number of seconds")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    m = _DURATION.fullmatch(value)
    if m is None:
        raise ValueError(f"invalid duration {value[:40]!r}: use e.g. 7d, 12h, 30m, 45s")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def default_sqlite_path() -> Path:
    """``$XDG_DATA_HOME/dragoman/sessions.db`` (``~/.local/share/dragoman/…`` when unset):
    per user, outside any checkout, the same wherever ``dragoman serve`` is started."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".local", "share")
    return Path(base) / "dragoman" / "sessions.db"


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``ttl``: seconds after which stored responses and idle threads are gone (None:
    keep forever). ``lock_wait``: how long a turn on a history-holding thread waits for
    the previous one before answering 409. ``record_threads``: record thread-keyed turns
    of plain provider models (history-holding targets always record). ``usage_ledger``:
    keep a usage row per request (with admin keys or a durable backend; off: none)."""

    backend: Backend = "memory"
    path: str | None = None
    dsn: str | None = None
    pool_size: int | None = None
    ttl: float | None = DEFAULT_TTL
    lock_wait: float = DEFAULT_LOCK_WAIT
    record_threads: bool = True
    usage_ledger: bool = True
    #: SQLite: who writes the usage ledger, a child process (``ledger_process``) or a
    #: thread of the gateway (``sqlite_ledger``)
    ledger_writer: Literal["process", "thread"] = "process"
    #: the writer process's priority: ``idle`` (``SCHED_IDLE``; a starved one is replaced by
    #: one at nice 10 while batches wait) or ``nice`` (nice 10); bench/README.md, "The
    #: ledger writer at idle priority"
    ledger_priority: Literal["idle", "nice"] = "idle"

    def __repr__(self) -> str:  # the DSN may hold a password
        return (f"StoreSettings(backend={self.backend!r}, path={self.path!r}, "
                f"dsn={'***' if self.dsn else None}, ttl={self.ttl!r})")

    def sqlite_path(self) -> Path:
        return Path(self.path).expanduser() if self.path else default_sqlite_path()
