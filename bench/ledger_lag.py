"""What the usage ledger's writes do to the event loop (issue 17's p99): the gateway
in-process under uvicorn (uvloop, as ``dragoman serve`` runs it) with a SQLite session
store, pinned as bench/run.py pins it (this process on CPU 1, wrk and nginx on CPU 0), wrk
driving pass-through requests over one connection, and rounds rotating three modes in
the same process, so the shared machine's load hits them alike.

    .venv/bin/python bench/ledger_lag.py [--rounds 6] [--seconds 4] [--shield -15]

- ``off``: the usage listener detached (no records kept: what the memory store does);
- ``on``: the ledger written from a thread of the gateway (``ledger_writer: thread``),
  in slices of ``sqlite_ledger.SLICE`` rows, one thread hop each;
- ``process``: the default configuration, the ledger written by a child process
  (``ledger_process``; it inherits the gateway's CPU, one core for both), the child at
  nice 0; ``pnice``: the same, the child at nice 19; ``p10``: at nice 10
  (``sessions.ledger_priority: nice``); ``pidle``: another child, at ``SCHED_IDLE`` with
  the catch-up rule (``sessions.ledger_priority: idle``; ``catch_ups``: starved idle
  children replaced by one at nice 10 during the round);
- ``whole``: the same, but each batch (up to 500 rows) in one hop, as before the slices;
- ``idle``: as ``on``, but the writer thread at Linux's ``SCHED_IDLE`` (it runs only
  when the core has nothing else to run); ``nice``: the same at nice 19 (root: the
  writer is set back to normal priority for the other modes).

Meanwhile a pinger process on the load CPU sends a datagram with the monotonic clock every
millisecond to a socket in the gateway's loop: the delay until the loop reads it is what a
request arriving then waits before the loop looks at it (``lag_*``; ``in_write_*``: only the
datagrams that arrived during a ledger write). Every ledger write is timed (start, end,
rows). Prints each round, then the medians over rounds per mode. Compare modes within a
run; absolute numbers depend on what else the machine runs (``--shield`` raises this
process tree's CPU share, as root, for steadier numbers).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/profile.py would shadow the standard library's ``profile``.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.append(str(HERE))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import targets as tg  # noqa: E402
import uvloop  # noqa: E402
from load import parse  # noqa: E402
from procs import BENCH_KEY, free_port  # noqa: E402

from dragoman.config import build_gateway, parse_config  # noqa: E402
from dragoman.server.runner import serve, settle_heap  # noqa: E402
from dragoman.sessions import sqlite_ledger  # noqa: E402
from dragoman.sessions.ledger_process import ProcessLedger  # noqa: E402
from dragoman.sessions.sqlite import BUSY_TIMEOUT, LEDGER_NICE, SqliteStore  # noqa: E402

LAG_OVER_MS = 1.0
SLICE = sqlite_ledger.SLICE
#: Sends the monotonic clock to the gateway's loop every millisecond, from the load CPU.
PINGER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
port = int(sys.argv[1])
while True:
    s.sendto(str(time.monotonic_ns()).encode(), ("127.0.0.1", port))
    time.sleep(0.001)
"""
#: As bench/run.py pins them: wrk and nginx on CPU 0, the gateway (this process) on CPU 1.
LOAD_CPUS, TARGET_CPUS = "0", {1}


@dataclass
class Probe(asyncio.DatagramProtocol):
    lags: list[tuple[float, float]] = field(default_factory=list)  # (when, ms late)
    writes: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, rows)
    gcs: list[tuple[int, float]] = field(default_factory=list)  # (generation, ms)
    _gc_start: float = 0.0

    def gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_start = now
        else:
            self.gcs.append((info["generation"], (now - self._gc_start) * 1000))

    def datagram_received(self, data: bytes, addr: object) -> None:
        """A probe datagram, sent ``data`` (monotonic ns) by the pinger on the load CPU:
        how long the loop took to see it (what a request arriving then would wait)."""
        now = time.monotonic_ns()
        self.lags.append((time.perf_counter(), (now - int(data)) / 1e6))

    def timed(self, sink: Callable[[list[Any]], Awaitable[None]]
              ) -> Callable[[list[Any]], Awaitable[None]]:
        async def write(rows: list[Any]) -> None:
            t = time.perf_counter()
            try:
                await sink(rows)
            finally:
                self.writes.append((t, time.perf_counter(), len(rows)))
        return write

    def cut(self) -> Probe:
        """What was recorded since the last cut."""
        out = Probe(self.lags[:], self.writes[:], self.gcs[:])
        self.lags.clear()
        self.writes.clear()
        self.gcs.clear()
        return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _switches() -> int:
    """The loop thread's voluntary context switches so far: each wait for the GIL (or any
    other blocking call) is one."""
    with open(f"/proc/self/task/{threading.get_native_id()}/status") as f:
        return next(int(line.split()[1]) for line in f
                    if line.startswith("voluntary_ctxt_switches"))


def _shield(nice: int) -> None:
    """Raise this process tree's share of the CPUs over the other sessions on a shared
    machine (root; Linux groups each session's processes, ``sched_autogroup``, and nice
    values only count inside a group): the nice value of every group in the tree."""
    me = os.getpid()
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    for pid in parents:
        p = pid
        while p not in (0, 1, me) and p in parents:
            p = parents[p]
        if p == me or pid == me:
            with contextlib.suppress(OSError):  # (gone meanwhile)
                Path(f"/proc/{pid}/autogroup").write_text(str(nice))


#: The ledger writer's scheduling per mode, (policy, nice); normal priority in the others.
PRIORITY = {"idle": (os.SCHED_IDLE, 0), "nice": (os.SCHED_OTHER, 19)}


def _set_writer_priority(mode: str) -> None:
    policy, nice = PRIORITY.get(mode, (os.SCHED_OTHER, 0))
    for t in threading.enumerate():
        if t.name.startswith("dragoman-ledger_") and t.native_id is not None:
            os.sched_setscheduler(t.native_id, policy, os.sched_param(0))
            os.setpriority(os.PRIO_PROCESS, t.native_id, nice)


#: the process modes' child at a nice value (root, set on the live child)
PROCESS_NICE = {"process": 0, "pnice": 19, "p10": 10}


def _use_writer(store: SqliteStore, writers: dict[str, Any], mode: str) -> None:
    """The thread or a process writes (``writers``: made at the start)."""
    store._ledger = writers["pidle" if mode == "pidle" else
                            "process" if mode in PROCESS_NICE else "thread"]
    pid = writers["process"].pid
    if pid is not None:
        os.setpriority(os.PRIO_PROCESS, pid, PROCESS_NICE.get(mode, 0))


def _in_write(t: float, writes: list[tuple[float, float, int]]) -> bool:
    return any(a - 0.001 <= t <= b + 0.001 for a, b, _ in writes)


async def _wrk(url: str, body: Path, seconds: int, connections: int = 1) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        "taskset", "-c", LOAD_CPUS, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        "--latency",
        "-s", str(HERE / "post.lua"), url,
        env={**os.environ, "BODY_FILE": str(body)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    r = parse(out.decode())
    if r.errors:
        raise RuntimeError(f"wrk: {r.errors} errors")
    return {"rps": r.rps, "p50": r.p50_ms, "p99": r.p99_ms}


async def _main(args: argparse.Namespace, ups: tg.Upstreams, tmp: Path) -> None:
    cfg = {"server": {"api_keys": [BENCH_KEY]},
           "sessions": {"backend": "sqlite", "path": str(tmp / "sessions.db")},
           "models": [{"name": tg.STATIC_MODEL, "provider": "openai",
                       "model": tg.STATIC_MODEL, "passthrough": True,
                       "base_url": f"{ups.nginx_base}/v1", "api_key": "sk-up"}]}
    gw = build_gateway(parse_config(cfg))
    ops = gw.ops
    ops.ledger.interval = args.interval
    ops.ledger.max_batch = args.max_batch
    store = ops.ledger._sink.__self__  # type: ignore[attr-defined]
    assert isinstance(store, SqliteStore)
    await store.open()
    assert isinstance(store._ledger, ProcessLedger)
    store._ledger.idle = False  # (a nice value set per mode; pidle's child is another)
    writers = {"process": store._ledger,
               "thread": sqlite_ledger.SqliteLedger(store._connect, store._ledger._args[2]),
               "pidle": ProcessLedger(store.path, BUSY_TIMEOUT, store._ledger._args[2],
                                      lambda: writers["thread"], nice=LEDGER_NICE, idle=True)}
    for w in (writers["process"], writers["pidle"]):
        await w.append([])  # the child started (an empty batch: nothing written)
    probe = Probe()
    ops.ledger._sink = probe.timed(ops.ledger._sink)  # type: ignore[assignment]
    listener = gw.usage.listeners[0]
    app = gw.app()
    settle_heap()
    port = free_port()
    server = asyncio.ensure_future(serve(app, port=port))
    body = tmp / "body.json"
    body.write_text(json.dumps(tg.chat_body(tg.STATIC_MODEL)))
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    for _ in range(200):
        try:
            await _wrk(url, body, 1)
            break
        except RuntimeError:
            await asyncio.sleep(0.1)
    gc.callbacks.append(probe.gc_callback)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: probe,
                                                       local_addr=("127.0.0.1", 0))
    probe_port = transport.get_extra_info("sockname")[1]
    pinger = await asyncio.create_subprocess_exec(
        "taskset", "-c", LOAD_CPUS, sys.executable, "-c", PINGER, str(probe_port))
    results: dict[str, list[dict[str, float]]] = {m: [] for m in args.modes}
    modes = args.modes
    for i in range(args.rounds * len(modes)):
        named = modes[(i + (i // len(modes))) % len(modes)]  # rotating: no order bias
        # (``pidle@0.2``: written every 0.2 s; ``pidle:100``: at most 100 rows a batch)
        named_mode, _, max_batch = named.partition(":")
        mode, _, interval = named_mode.partition("@")
        gw.usage.listeners[:] = [] if mode == "off" else [listener]
        sqlite_ledger.SLICE = 1 << 30 if mode == "whole" else SLICE
        await ops.ledger.flush()
        ops.ledger.interval = float(interval or args.interval)
        ops.ledger.max_batch = int(max_batch or args.max_batch)
        _use_writer(store, writers, mode)
        _set_writer_priority(mode)
        await asyncio.sleep(0.5)
        probe.cut()
        catch_ups = writers["pidle"].catch_ups
        switches = _switches()
        w = await _wrk(url, body, args.seconds, args.connections)
        pending = ops.ledger.pending  # (rows the writer has not taken yet)
        switches = _switches() - switches
        got = probe.cut()
        lags = [ms for _, ms in got.lags]
        in_write = [ms for t, ms in got.lags if _in_write(t, got.writes)]
        late = [(t, ms) for t, ms in got.lags if ms > LAG_OVER_MS]
        w.update(switches_per_req=switches / max(1.0, w["rps"] * args.seconds),
                 lag_p50=_pct(lags, 0.5), lag_p90=_pct(lags, 0.9), lag_p99=_pct(lags, 0.99),
                 lag_p999=_pct(lags, 0.999),
                 lag_max=max(lags, default=0.0), in_write_p50=_pct(in_write, 0.5),
                 in_write_p90=_pct(in_write, 0.9),
                 late=len(late), late_in_write=sum(_in_write(t, got.writes) for t, _ in late),
                 writes=len(got.writes),
                 write_ms=sum((b - a) * 1000 for a, b, _ in got.writes) / max(1, len(got.writes)),
                 rows=sum(n for *_, n in got.writes),
                 gc_ms=sum(ms for _, ms in got.gcs),
                 gc_max=max((ms for _, ms in got.gcs), default=0.0),
                 gc2=sum(g == 2 for g, _ in got.gcs), pending=pending,
                 catch_ups=writers["pidle"].catch_ups - catch_ups)
        results[named].append(w)
        print(f"round {i // len(modes) + 1} {named:3}: " + " ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in w.items()),
            flush=True)
    pinger.kill()
    await pinger.wait()
    transport.close()
    gc.callbacks.remove(probe.gc_callback)
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await server
    for w in writers.values():
        await w.aclose()
    print()
    keys = ["rps", "p50", "p99", "lag_p50", "lag_p90", "lag_p99", "lag_p999", "lag_max", "late",
            "late_in_write", "in_write_p50", "in_write_p90", "write_ms", "rows", "pending",
            "catch_ups"]
    print("median over rounds  " + "  ".join(f"{k:>9}" for k in keys))
    for mode, rs in results.items():
        print(f"{mode:19} " + "  ".join(
            f"{statistics.median(r[k] for r in rs):9.2f}" for k in keys))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--connections", type=int, default=1, help="wrk's connections (64: "
                    "a saturated worker, where the idle-priority writer starves)")
    ap.add_argument("--interval", type=float, default=1.0,
                    help="the ledger writer's interval (seconds)")
    ap.add_argument("--max-batch", type=int, default=500,
                    help="the ledger writer's largest batch (rows)")
    ap.add_argument("--modes", type=lambda s: s.split(","), default=["off", "on", "process"],
                    help="which of off,on,process,pnice,p10,pidle,whole,idle,nice to run (one "
                    "alone: for a profiler attached); MODE@SECONDS, MODE:ROWS: with that "
                    "--interval, --max-batch")
    ap.add_argument("--shield", type=int, metavar="NICE",
                    help="as root on a shared machine: set this process tree's scheduling "
                         "groups to this nice value (e.g. -15) for steadier numbers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with tg.upstreams(tmp, LOAD_CPUS) as ups:
            os.sched_setaffinity(0, TARGET_CPUS)
            if args.shield is not None:
                _shield(args.shield)
            uvloop.run(_main(args, ups, tmp))


if __name__ == "__main__":
    main()
