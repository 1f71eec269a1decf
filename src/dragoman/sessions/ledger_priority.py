"""The ledger writer process's priority, set by the writer itself (``ledger_writer``), as
the first thing its bootstrap does (``ledger_process.BOOT``): its start-up (~80 ms of
imports, mostly msgspec's) then already runs below the gateway it shares a core with.
Imports nothing but ``os``."""

from __future__ import annotations

import os


def lower_priority(priority: str) -> None:
    """``idle``: Linux's ``SCHED_IDLE`` (a waking loop preempts this process at once; it
    may starve, and the gateway replaces a starved one: ``ledger_process``); otherwise
    that nice value. Either is for good: an unprivileged process cannot raise it again."""
    if priority == "idle":
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return
        except (AttributeError, OSError):  # not Linux, or refused: the lowest nice value
            priority = "19"
    if int(priority):
        os.nice(int(priority))
