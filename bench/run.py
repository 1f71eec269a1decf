"""The benchmark harness: scenarios a-f against dragoman, the ceilings and LiteLLM.

    .venv/bin/python bench/run.py [--quick] [--scenarios abcdefs] [--workers N]
                                  [--targets ceiling_asgi,...] [--out FILE]

Scenarios (bench/README.md says what each measures and why):
  a  sequential non-stream requests (wrk -c1): latency added over the direct call
  b  saturation: req/s with 64 connections
  c  streaming: added time to first token, and chunk pacing kept (no coalescing)
  d  1,000 concurrent streams: errors and peak RSS of the target
  e  soak: 100k requests (10k with --quick), RSS at start and end
  f  in-process micro-benchmarks of every dialect translation (bench/micro.py)
  s  streams at saturation: nginx's 30-chunk stream, streams/s with 64 connections and
     p50 with one (wrk): translated streaming against the bare aiohttp relay
  r  alternating rounds (bench/alternate.py): every chosen target started at once, then
     short a+b runs in turns (A B, B A, …), medians and per-round ratios to the first
     target with a confidence interval: decides a few-percent difference (issue 17);
     --round-stream runs s's stream in the rounds instead (issue 18)

nginx (fixed bodies) and bench/paced_sse.py are the upstreams; the load generator, the
upstreams and this process are pinned to CPU 0, each target to CPU 1, one target at a
time. Prints the tables and writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "src"))

import alternate  # noqa: E402
import micro  # noqa: E402
import report  # noqa: E402
import targets as tg  # noqa: E402
from load import wrk  # noqa: E402
from procs import RssSampler, cpu_by_process, cpu_seconds, raise_fd_limit, rss_mb  # noqa: E402
from streams import herd, pacing, sequential_requests, sequential_streams  # noqa: E402

#: c: streams with no delay between chunks, one right after the other: time to first token
#: with every process awake (a paced stream's first token comes after the CPUs idled).
WARM_PACE = (5, 0)

ALL_TARGETS = ["ceiling_asgi", "ceiling_aiohttp", "dragoman_pass", "dragoman_translated",
               "litellm"]
#: Not run by default: pass-through without metrics or ledger (``bare``), with the metrics
#: only, the ledger only (SQLite) and both (``on``), for issue 17's comparison
#: (``--scenarios r``; bench/README.md, "Metrics and the usage ledger"); ``control`` is
#: ``bare`` again, an A/A comparison that shows what the harness can resolve that day; the
#: other ``targets.OPS`` variants; ``then``, the pass-through of another checkout
#: (``--then``: the gateway of the day a budget was set).
OPS_TARGETS = [f"dragoman_pass_{ops}" for ops in tg.OPS] + ["dragoman_pass_then"]


@dataclass
class Plan:
    """How much of each scenario to run (--quick shrinks all of it)."""

    quick: bool
    scenarios: str
    seconds: int  # a and b, per run
    soak_requests: int
    soak_cap_s: int  # the soak stops here even if the count is not reached (LiteLLM)
    stream_pace: tuple[int, int]  # c: (chunks, delay ms)
    streams: int  # c: sequential paced streams per target
    warm_streams: int  # c: back-to-back streams with no pacing (time to first token)
    herd: int  # d: concurrent streams
    herd_pace: tuple[int, int]
    herd_timeout_s: int
    load_cpus: str
    target_cpus: str
    workers: int
    rounds: int  # r: measured rounds (after warm_rounds dropped ones)
    warm_rounds: int
    round_seconds: int  # r: each wrk run of a round
    round_stream: bool  # r: nginx's 30-chunk stream (scenario s's workload), not one answer
    round_settle: float = 0.0  # r: seconds idle after each target's runs
    round_restart: int = 0  # r: targets restarted after this many rounds (0: never)

    @staticmethod
    def model(pace: tuple[int, int]) -> str:
        return f"paced-{pace[0]}x{pace[1]}"

    @property
    def paces(self) -> list[str]:
        return [self.model(WARM_PACE), self.model(self.stream_pace), self.model(self.herd_pace)]


def plan_from(args: argparse.Namespace) -> Plan:
    quick = args.quick
    return Plan(
        quick=quick,
        scenarios=args.scenarios,
        seconds=args.seconds or (1 if quick else 5),
        soak_requests=args.soak_requests or (10_000 if quick else 100_000),
        soak_cap_s=3 if quick else 120,
        stream_pace=(20, 10),
        streams=5 if quick else 40,
        warm_streams=40 if quick else 300,
        herd=args.herd or (100 if quick else 1000),
        herd_pace=(10, 50) if quick else (20, 100),
        herd_timeout_s=60 if quick else 180,
        load_cpus=args.load_cpus,
        target_cpus=args.target_cpus,
        workers=args.workers,
        rounds=args.rounds or (3 if quick else 8),
        warm_rounds=args.warm_rounds,
        round_seconds=args.round_seconds or (1 if quick else 3),
        round_stream=args.round_stream,
        round_settle=args.round_settle, round_restart=args.round_restart,
    )


class Bench:
    def __init__(self, plan: Plan, tmp: Path) -> None:
        self.plan = plan
        self.tmp = tmp

    def _body_file(self, target: tg.Target, stream: bool) -> Path:
        f = self.tmp / f"body-{target.key}{'-stream' if stream else ''}.json"
        body = tg.chat_body(target.model(tg.STREAM_MODEL if stream else tg.STATIC_MODEL))
        if stream:
            body["stream"] = True
        f.write_text(json.dumps(body))
        return f

    def _url(self, target: tg.Target, stream: bool) -> str:
        port, path = target.endpoint(stream=False, whole_stream=stream)
        return f"http://127.0.0.1:{port}{path}"

    def _wrk(self, target: tg.Target, conns: int, seconds: float,
             max_requests: int | None = None, stream: bool = False,
             quantiles: bool = False) -> dict[str, Any]:
        """One wrk run, plus the target's CPU time per request: on a shared machine that
        moves much less than req/s (another process on the core lowers req/s, not the
        work each request takes). ``stream``: nginx's STREAM_CHUNKS-chunk stream (s).
        ``quantiles``: with the latency grid (scenario r pools it: bench/pooled.py)."""
        cpu0 = cpu_seconds(target.pid) if target.pid is not None else None
        got = wrk(self._url(target, stream), self._body_file(target, stream), conns=conns,
                  seconds=seconds, cpus=self.plan.load_cpus, max_requests=max_requests)
        out = got.as_dict()
        if quantiles:
            out["quantiles"] = got.quantiles
        if cpu0 is not None and target.pid is not None and out["requests"]:
            used = cpu_seconds(target.pid) - cpu0
            out["cpu_us_per_req"] = round(1e6 * used / out["requests"], 1)
        return out

    def _streams(self, target: tg.Target, n: int, pace: tuple[int, int]) -> list[Any]:
        port, path = target.endpoint(stream=True)
        body = tg.chat_body(target.model(self.plan.model(pace)))
        return sequential_streams(port, path, body, n)

    def warm_up(self, target: tg.Target) -> None:
        """First requests import, fill pools and caches: keep them out of the numbers."""
        if self.plan.quick:
            port, path = target.endpoint(stream=False)
            sequential_requests(port, path, tg.chat_body(target.model(tg.STATIC_MODEL)), 30)
        else:
            self._wrk(target, 8, 2)
        if any(s in self.plan.scenarios for s in "cd"):
            self._streams(target, 3, WARM_PACE)
        if "s" in self.plan.scenarios:
            self._wrk(target, 8, 1, stream=True)

    def alternate(self, factories: list[Callable[[], AbstractContextManager[tg.Target]]],
                  direct: tg.Target) -> dict[str, Any]:
        """Scenario r: the targets (all running) in alternating rounds."""
        p = self.plan
        stream = p.round_stream

        @contextlib.contextmanager
        def start() -> Iterator[list[tg.Target]]:
            with contextlib.ExitStack() as running:
                targets = [running.enter_context(f()) for f in factories]
                for t in targets:
                    self.warm_up(t)
                    if stream:  # (warm_up streams only when scenario s is planned)
                        self._wrk(t, 8, 1, stream=True)
                yield targets

        return alternate.run(start, direct,
                             lambda t, conns, secs: self._wrk(t, conns, secs, stream=stream,
                                                             quantiles=True),
                             rounds=p.rounds, warmup=p.warm_rounds, seconds=p.round_seconds,
                             settle=p.round_settle, restart_every=p.round_restart)

    def measure(self, target: tg.Target) -> dict[str, Any]:
        p, out = self.plan, {"name": target.name, **target.info}
        sc = p.scenarios
        pid = target.pid
        if target.kind != "direct":
            self.warm_up(target)
        if "a" in sc:
            out["a"] = self._wrk(target, 1, p.seconds)
        if "b" in sc and target.kind != "direct":
            out["b"] = self._wrk(target, 64, p.seconds)
        if "s" in sc:
            out["s"] = {"chunks": tg.STREAM_CHUNKS,
                        "one": self._wrk(target, 1, p.seconds, stream=True)}
            if target.kind != "direct":
                out["s"]["sat"] = self._wrk(target, 64, p.seconds, stream=True)
        if "e" in sc and pid is not None:
            start = rss_mb(pid)
            with RssSampler(pid, 0.5) as sampler:
                soak = self._wrk(target, 32, p.soak_cap_s, max_requests=p.soak_requests)
            end = rss_mb(pid)
            out["e"] = {**soak, "target_requests": p.soak_requests,
                        "rss_start_mb": round(start, 1), "rss_end_mb": round(end, 1),
                        "rss_peak_mb": round(sampler.peak, 1),
                        "drift_pct": round(100 * (end - start) / start, 2)}
        if "c" in sc:
            warm = pacing(self._streams(target, p.warm_streams, WARM_PACE), 0)
            paced = pacing(self._streams(target, p.streams, p.stream_pace), p.stream_pace[1])
            c = {"ttft_p50_ms": warm["ttft_p50_ms"], "ttft_p90_ms": warm["ttft_p90_ms"],
                 "warm_streams": warm["streams"], "warm_pace": p.model(WARM_PACE),
                 "ttft_after_idle_p50_ms": paced.pop("ttft_p50_ms"),
                 "ttft_after_idle_p90_ms": paced.pop("ttft_p90_ms"),
                 **paced, "pace": p.model(p.stream_pace)}
            out["c"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in c.items()}
        if "d" in sc and pid is not None:
            port, path = target.endpoint(stream=True)
            body = tg.chat_body(target.model(p.model(p.herd_pace)))
            idle = rss_mb(pid)
            with RssSampler(pid) as sampler:
                h = herd(port, path, body, p.herd, p.herd_pace[0], p.herd_timeout_s)
            out["d"] = {"streams": h.streams, "ok": h.ok, "errors": h.error_count,
                        "error_kinds": h.errors, "wall_s": round(h.wall_s, 2),
                        "ttft_p50_ms": round(h.ttft_p50_ms, 1),
                        "ttft_max_ms": round(h.ttft_max_ms, 1),
                        "rss_idle_mb": round(idle, 1), "rss_peak_mb": round(sampler.peak, 1),
                        "pace": p.model(p.herd_pace)}
        if pid is not None:
            # CPU seconds per process: with --workers N, every worker should have served.
            out["cpu_s_by_process"] = list(cpu_by_process(pid).values())
        return out


def _target_factories(plan: Plan, ups: tg.Upstreams, tmp: Path, server: str,
                      then: Path | None = None
                      ) -> dict[str, Callable[[], AbstractContextManager[tg.Target]]]:
    c, w, paces = plan.target_cpus, plan.workers, plan.paces
    return {
        "ceiling_asgi": lambda: tg.ceiling_asgi(ups, tmp, c, w),
        "ceiling_aiohttp": lambda: tg.ceiling_aiohttp(ups, tmp, c, w),
        "dragoman_pass": lambda: tg.dragoman(ups, tmp, c, w, "pass", paces, server),
        "dragoman_translated": lambda: tg.dragoman(ups, tmp, c, w, "translated", paces,
                                                   server),
        "litellm": lambda: tg.litellm(ups, tmp, c, w, paces),
        **{f"dragoman_pass_{ops}": functools.partial(tg.dragoman, ups, tmp, c, w, "pass",
                                                     paces, server, ops=ops)
           for ops in tg.OPS},
        "dragoman_pass_then": lambda: tg.dragoman(ups, tmp, c, w, "pass", paces, server,
                                                  src=_then_src(then)),
    }


def _commit_of(checkout: str) -> str:
    """The commit a ``--then`` checkout is at (kept in the results' meta)."""
    got = subprocess.run(["git", "-C", checkout, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)
    return got.stdout.strip() or checkout


def _then_src(then: Path | None) -> Path:
    if then is None:
        raise SystemExit("dragoman_pass_then needs --then CHECKOUT (e.g. a git worktree of "
                         "the commit to compare with)")
    return then / "src"


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "python": platform.python_version(),
            "kernel": platform.release(), "loadavg_before": list(os.getloadavg())}


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("dragoman", "uvicorn", "uvloop", "httptools", "aiohttp", "msgspec", "granian"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


@contextlib.contextmanager
def _pinned(cpus: str) -> Iterator[None]:
    """This process (the stream clients, the micro-benchmarks) runs beside the load
    generator, never on the target's CPU."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def main() -> None:
    ap = argparse.ArgumentParser(description="dragoman benchmark harness (bench/README.md)")
    ap.add_argument("--quick", action="store_true",
                    help="a short smoke run of every scenario (well under a minute of load)")
    ap.add_argument("--scenarios", default="abcdefs", help="subset of abcdefsr (r: not "
                    "by default)")
    ap.add_argument("--targets", default=",".join(ALL_TARGETS),
                    help=f"comma-separated subset of {','.join(ALL_TARGETS + OPS_TARGETS)}")
    ap.add_argument("--workers", type=int, default=1,
                    help="worker processes of every target (dragoman serve --workers N)")
    ap.add_argument("--server", default="uvicorn", choices=["uvicorn", "granian"],
                    help="ASGI server dragoman runs under")
    ap.add_argument("--seconds", type=int, help="length of each a/b run (default 5, quick 1)")
    ap.add_argument("--rounds", type=int, help="r: measured rounds (default 8, quick 3)")
    ap.add_argument("--warm-rounds", type=int, default=1, help="r: rounds dropped first")
    ap.add_argument("--round-seconds", type=int,
                    help="r: length of each wrk run of a round (default 3, quick 1)")
    ap.add_argument("--round-settle", type=float, default=0.0,
                    help="r: seconds idle after each target's runs, so that work a target "
                         "defers to a pause (the SQLite ledger's fold) is not done during "
                         "the next target's runs on the same core")
    ap.add_argument("--round-restart", type=int, default=0, metavar="N",
                    help="r: stop and start every target again after each N measured "
                         "rounds, so the rounds sample the processes too (two processes "
                         "of the same code differ by a few percent for their whole life)")
    ap.add_argument("--round-stream", action="store_true",
                    help="r: the rounds relay scenario s's 30-chunk stream (streams/s, "
                         "p50 at one connection) instead of one whole answer")
    ap.add_argument("--soak-requests", type=int, help="e: requests (default 100k, quick 10k)")
    ap.add_argument("--herd", type=int, help="d: concurrent streams (default 1000)")
    ap.add_argument("--load-cpus", default="0", help="CPUs of load generator and upstreams")
    ap.add_argument("--target-cpus", default="1", help="CPUs of the target under test")
    ap.add_argument("--then", metavar="CHECKOUT", help="target dragoman_pass_then: the "
                    "pass-through served from this checkout's src/, configured as bare (an "
                    "earlier commit in a git worktree: issue 17's budget is against the "
                    "gateway of the day it was filed)")
    ap.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    ap.add_argument("--render", metavar="JSON", help="print the tables of a results file, "
                    "run nothing")
    args = ap.parse_args()
    if args.render:
        print(report.render(json.loads(Path(args.render).read_text())))
        return

    chosen = [t for t in args.targets.split(",") if t]
    unknown = set(chosen) - set(ALL_TARGETS) - set(OPS_TARGETS)
    if unknown or not set(args.scenarios) <= set("abcdefsr"):
        ap.error(f"unknown target(s) {sorted(unknown)} or scenario(s) in {args.scenarios!r}")
    for tool in ("nginx", "wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install nginx-light wrk util-linux)")
    plan = plan_from(args)
    raise_fd_limit()
    started = time.monotonic()
    result: dict[str, Any] = {
        "meta": {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                 "quick": args.quick, "workers": args.workers, "server": args.server,
                 "scenarios": args.scenarios, "load_cpus": plan.load_cpus,
                 "target_cpus": plan.target_cpus, "machine": machine(),
                 "versions": versions(),
                 "plan": {"seconds": plan.seconds, "soak_requests": plan.soak_requests,
                          "soak_cap_s": plan.soak_cap_s, "streams": plan.streams,
                          "stream_pace": plan.model(plan.stream_pace), "herd": plan.herd,
                          "herd_pace": plan.model(plan.herd_pace),
                          "rounds": plan.rounds, "warm_rounds": plan.warm_rounds,
                          "round_seconds": plan.round_seconds,
                          "round_stream": plan.round_stream,
                          "round_settle": plan.round_settle,
                          "round_restart": plan.round_restart},
                 "then": _commit_of(args.then) if args.then else None},
        "targets": {},
    }
    tmp = Path(tempfile.mkdtemp(prefix="dragoman-bench-"))
    try:
        with _pinned(plan.load_cpus):
            if set(plan.scenarios) - {"f"}:
                with tg.upstreams(tmp, plan.load_cpus) as ups:
                    bench = Bench(plan, tmp)
                    factories = _target_factories(plan, ups, tmp, args.server,
                                                  Path(args.then) if args.then else None)
                    if set(plan.scenarios) - {"f", "r"}:
                        _run_one(result, "direct",
                                 lambda: contextlib.nullcontext(tg.direct(ups)), bench)
                        for key in chosen:
                            _run_one(result, key, factories[key], bench)
                    if "r" in plan.scenarios:
                        result["r"] = bench.alternate([factories[k] for k in chosen],
                                                      tg.direct(ups))
            if "f" in plan.scenarios:
                print("f: micro-benchmarks …", file=sys.stderr, flush=True)
                result["micro"] = micro.run(args.quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    result["meta"]["loadavg_after"] = list(os.getloadavg())
    result["checks"] = report.checks(result)
    print(report.render(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)


def _run_one(result: dict[str, Any], key: str,
             factory: Callable[[], AbstractContextManager[tg.Target]], bench: Bench) -> None:
    print(f"{key}: starting …", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        with factory() as target:
            result["targets"][key] = bench.measure(target)
    except (RuntimeError, SystemExit, OSError) as e:
        # One target failing (LiteLLM not installable, say) must not lose the others.
        print(f"{key}: FAILED: {e}", file=sys.stderr, flush=True)
        result["targets"][key] = {"name": key, "failed": str(e)[-2000:]}
    print(f"{key}: done in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
