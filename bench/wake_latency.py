"""How long a sleeping task waits to run again when it wakes while a writer-like child
shares its core (issue 17: the ledger writer child at nice 10 or at ``SCHED_IDLE``, on the
gateway's pinned core), measured without the gateway: the kernel's part alone.

    .venv/bin/python bench/wake_latency.py [--shield -15] [--rounds 6]

This process (the "loop") is pinned to CPU 1 with a child: it sleeps 1 ms, does a little
work, and records how late each wake-up was; the child either does nothing (``none``),
or runs bursts (``--burst`` ms of CPU every ``--period`` ms, a ledger batch: 500 rows are
~5 ms, five a second at one connection) or spins without pause, at nice 10 (``10``) or at
``SCHED_IDLE`` (``idle``). Modes alternate in rounds (A B C, C B A, …); medians over rounds
of each round's p50 / p99 / max lateness. ``--shield`` as in ``ledger_lag.py`` (root: this
process tree's scheduling groups at that nice value, for steadier numbers on a shared
machine).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.append(str(HERE))

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

CPU = 1
#: The child: its priority, then bursts of ``busy`` seconds ``gap`` seconds apart.
CHILD = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
if sys.argv[2] == "idle":
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
else:
    os.nice(int(sys.argv[2]))
busy, gap = float(sys.argv[3]), float(sys.argv[4])
while True:
    t = time.perf_counter()
    while time.perf_counter() - t < busy:
        pass
    if gap:
        time.sleep(gap)
"""


def _round(mode: str, busy: float, gap: float, wakes: int) -> tuple[float, float, float]:
    """(p50, p99, max) ms late of ``wakes`` 1 ms sleeps with the child in ``mode``."""
    child = None
    if mode != "none":
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(CPU), mode, str(busy),
                                  str(gap)])
        time.sleep(0.2)
    late = []
    try:
        for _ in range(wakes):
            t = time.perf_counter()
            time.sleep(0.001)
            late.append((time.perf_counter() - t - 0.001) * 1000)
            sum(range(2000))  # a little work, as a request's
    finally:
        if child is not None:
            child.kill()
            child.wait()
    late.sort()
    return late[len(late) // 2], late[int(len(late) * 0.99)], late[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--wakes", type=int, default=1500, help="wake-ups per round and mode")
    ap.add_argument("--burst", type=float, default=5.0, help="the child's burst, ms of CPU")
    ap.add_argument("--period", type=float, default=200.0, help="one burst every this many "
                    "ms (0: the child spins without pause)")
    ap.add_argument("--shield", type=int, metavar="NICE")
    args = ap.parse_args()
    os.sched_setaffinity(0, {CPU})
    if args.shield is not None:
        from ledger_lag import _shield
        _shield(args.shield)
    busy = args.burst / 1000 if args.period else 3600.0
    gap = max(0.0, args.period - args.burst) / 1000
    modes = ["none", "10", "idle"]
    got: dict[str, list[tuple[float, float, float]]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode in modes if r % 2 == 0 else modes[::-1]:
            got[mode].append(_round(mode, busy, gap, args.wakes))
    print(f"child: {args.burst} ms bursts every {args.period} ms" if args.period else
          "child: spinning")
    print("mode    p50 ms   p99 ms   max ms  (medians over rounds)")
    for mode, rs in got.items():
        print(f"{mode:5} " + " ".join(f"{statistics.median(x[i] for x in rs):8.3f}"
                                      for i in range(3)))


if __name__ == "__main__":
    main()
