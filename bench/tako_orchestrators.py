"""tako-ai-core's orchestration overhead, to set next to ``bench/orchestrators.py``.

    python -m venv /tmp/tako && /tmp/tako/bin/pip install tako-ai-core==0.51.2
    /tmp/tako/bin/python bench/tako_orchestrators.py [--runs 300] [--upstream http]
    /tmp/tako/bin/python bench/tako_orchestrators.py --instr [--only LABEL ...] [--modes run]

Runs in an environment with tako installed and WITHOUT dragoman (tako is not a dependency
of this project). tako's in-process instant model is ``providers.Fake`` (a canned reply,
not streamed, answered inside its Rust core); the scenarios mirror
``bench/orchestrators.py`` as far as tako allows: a Fake can only say one thing, so its
Conductor coordinator never halts (6 turns x 2 workers), and a tool-less tako Trinity is
one routed call. CPU time is the process's (``time.process_time``, the Rust runtime's
threads included; the cheapest of batches of ``BATCH`` runs), divided by the model calls
a run makes, for ``run()`` and, where tako
has one (SelfCaller, AbMcts), for the event stream read to the end (a tenth of the runs:
it is ~40x dearer).

``--upstream http``: the same scenarios with tako's OpenAI provider
(``providers.OpenAI(name, key, base_url=…)``) on ``bench/scripted_upstream.py``, the server
``bench/orchestrators.py --upstream http`` uses, started here on the repository's
``.venv`` Python (``--server-python``: it needs aiohttp). The server counts the calls;
the "own" columns subtract tako's bare call, estimated as a SingleAgent's ``run()`` on
that provider minus one on a Fake (tako has no Python entry to a provider alone).

``--instr`` counts instructions instead, as ``bench/orchestrators.py --instr`` does for
ours: valgrind's callgrind (it follows tako's Rust extension and its runtime's threads;
their instructions are summed) on a short and a long series of runs of one scenario, the
difference per run, divided by the model calls a run makes (counted outside valgrind by
the Fakes' ``call_count``). Load-independent, so ours and tako's compare instructions
with instructions on the same scripted scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tako  # type: ignore[import-not-found]
from tako import guards, providers, routers, verifiers  # type: ignore[import-not-found]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scripted_upstream as su  # the scripts (standard library only), and the HTTP upstream

PROMPT = su.PROMPT

#: makes the scenarios' models by name; says how many model calls they have answered so far
Models = tuple[Callable[[str], Any], Callable[[], int]]


def fakes() -> Models:
    """tako's in-process ``providers.Fake``: one canned reply per model name (the script's
    answer to the prompt, so the coordinator plans two independent workers every turn)."""
    made: list[Any] = []

    def make(name: str) -> Any:
        made.append(providers.Fake(su.SCRIPTS.get(name, su.answer)("", PROMPT),
                                   id=f"fake:{name}"))
        return made[-1]
    return make, lambda: sum(f.call_count for f in made)


def over_http(upstream: su.Upstream) -> Models:
    """tako's OpenAI Chat provider, one per model name, on the scripted upstream (tako
    appends ``/v1/chat/completions`` to its ``base_url``)."""
    def make(name: str) -> Any:
        return providers.OpenAI(name, "sk-bench", base_url=upstream.url.removesuffix("/v1"))
    return make, upstream.requests


def scenarios(make: Callable[[str], Any]) -> dict[str, Any]:
    """label -> orchestrator, the shapes of ``bench/orchestrators.py``'s first five."""
    model, plan = make("m"), make("planner")
    never = verifiers.RuleBased(min_chars=10, pattern="MAGIC")
    return {
        "single (1 call)": tako.SingleAgent(model),
        "conductor (6 plans x 2 workers)": tako.Conductor(
            plan, {"code": model, "math": model}, verifier=never),
        "trinity (1 routed call)": tako.Trinity(
            {"code": model, "math": model, "other": model}, routers.RegexRouter()),
        "self_caller (4 iterations)": tako.SelfCaller(
            tako.SingleAgent(model), guards.RuleBased(min_chars=10 ** 6), max_depth=3),
        "ab_mcts (16 iterations)": tako.AbMcts(
            model, never, max_iterations=16, min_confidence=0.99),
    }


#: runs are timed in batches of this many; the cheapest batch counts (as in
#: ``bench/orchestrators.py``)
BATCH = 10


async def _timed(orch: Any, runs: int, streamed: bool) -> float:
    best = float("inf")
    for _ in range(max(1, runs // BATCH)):
        t0 = time.process_time()
        for _ in range(BATCH):
            if streamed:
                async for _ev in await orch.stream(PROMPT):
                    pass
            else:
                await orch.run(PROMPT)
        best = min(best, (time.process_time() - t0) / BATCH)
    return best


async def _bare(make: Callable[[str], Any], runs: int) -> float:
    """The CPU of one call through tako's provider, as far as Python can tell: tako has no
    Python entry to a provider alone, so a SingleAgent's ``run()`` on ``make("m")`` minus
    the same on an in-process Fake (tako's own per-run cost cancels out)."""
    agent, fake = tako.SingleAgent(make("m")), tako.SingleAgent(providers.Fake(su.ANSWER))
    for orch in (agent, fake):
        await _timed(orch, 3, False)
    return await _timed(agent, runs, False) - await _timed(fake, runs, False)


async def main(runs: int, models: Models, what: str, labels: list[str] | None = None) -> None:
    make, served = models
    bare = await _bare(make, runs * 3) if what else 0.0
    if what:
        print(f"bare {what}: {bare * 1e6:.1f} µs CPU per call (a SingleAgent's run() on it"
              " minus one on a Fake)\n")
    own = f" {'own':>6}" if what else ""
    print(f"{'tako-ai-core ' + tako.__version__:44} {'calls':>5} {'run() µs':>9} "
          f"{'/call':>6}{own} {'stream µs':>9} {'/call':>6}{own}")
    timed_runs = max(1, runs // BATCH) * BATCH
    for label, orch in scenarios(make).items():
        if labels and label not in labels:
            continue
        streams = hasattr(orch, "stream")  # only SelfCaller and AbMcts stream in 0.51.2
        await _timed(orch, 3, False)
        before = served()
        cpu = await _timed(orch, runs, False)
        calls = (served() - before) / timed_runs
        line = f"{label:44} {calls:5.0f}" + _cols(cpu, calls, bare, bool(what))
        if streams:
            await _timed(orch, 3, True)
            cpu = await _timed(orch, max(1, runs // 10), True)
            line += _cols(cpu, calls, bare, bool(what))
        print(line)


def _cols(cpu: float, calls: float, bare: float, own: bool) -> str:
    line = f" {cpu * 1e6:9.0f} {cpu / calls * 1e6:6.1f}"
    return line + (f" {(cpu - calls * bare) / calls * 1e6:6.1f}" if own else "")


async def main_http(runs: int, python: str, labels: list[str]) -> None:
    with su.Upstream(python) as upstream:
        await main(runs, over_http(upstream), f"tako OpenAI provider on {upstream.url}",
                   labels)
        # (its connections kept: a number near the 2 parallel workers' means no per-call
        # connects; ours prints the same per scenario)
        print(f"\nconnections the server saw opened, all scenarios: "
              f"{upstream.stats()['connections']}")


async def _drive(label: str, runs: int, mode: str) -> None:
    """Run inside valgrind: ``runs`` runs of one scenario, ``run()`` or the stream read to
    the end (``mode``), after no warm-up (the short series pays the same start-up)."""
    make, _ = fakes()
    orch = scenarios(make)[label]
    for _ in range(runs):
        if mode == "stream":
            async for _ev in await orch.stream(PROMPT):
                pass
        else:
            await orch.run(PROMPT)


def _instructions(label: str, runs: int, mode: str) -> int:
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           __file__, "--drive", label, "--runs", str(runs), "--drive-mode", mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=os.environ).stderr
    m = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(m.group(1).replace(",", ""))


def instr(labels: list[str], modes: list[str], short: int = 20, long: int = 120) -> None:
    print(f"{'tako-ai-core ' + tako.__version__:44} {'mode':>6} {'run k':>9} {'calls':>6} "
          f"{'k/call':>8}")
    make, served = fakes()
    for label, orch in scenarios(make).items():
        if labels and label not in labels:
            continue
        before = served()
        asyncio.run(orch.run(PROMPT))  # one run outside valgrind, to count its calls
        calls = served() - before
        for mode in modes:
            if mode == "stream" and not hasattr(orch, "stream"):
                continue  # only SelfCaller and AbMcts stream in 0.51.2
            total = ((_instructions(label, long, mode) - _instructions(label, short, mode))
                     / (long - short))
            print(f"{label:44} {mode:>6} {total / 1e3:9.0f} {calls:6d} "
                  f"{total / calls / 1e3:8.1f}", flush=True)


def _repo_python() -> str:
    """The server needs aiohttp, which tako's environment lacks: the repository's venv."""
    venv = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else "python3"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--upstream", choices=("instant", "http"), default="instant",
                    help="instant: tako's in-process Fake; http: tako's OpenAI provider on "
                         "bench/scripted_upstream.py (its own process) over loopback")
    ap.add_argument("--server-python", default=_repo_python(),
                    help="the Python (with aiohttp) that runs the scripted upstream")
    ap.add_argument("--only", action="append", default=[], metavar="LABEL",
                    help="only this scenario (repeatable)")
    ap.add_argument("--instr", action="store_true",
                    help="count instructions under valgrind instead of CPU time")
    ap.add_argument("--modes", default="run",
                    help="with --instr: what to count, of run and stream (read to the end)")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    ap.add_argument("--drive-mode", default="run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:
        asyncio.run(_drive(args.drive, args.runs, args.drive_mode))
    elif args.instr:
        instr(args.only, args.modes.split(","))
    elif args.upstream == "http":
        asyncio.run(main_http(args.runs, args.server_python, args.only))
    else:
        asyncio.run(main(args.runs, fakes(), "", args.only))
    # tako 0.51.2 now and then crashes (SIGSEGV/SIGBUS) in the interpreter's teardown,
    # its runtime's threads outliving Python: leave without one, the results printed
    sys.stdout.flush()
    os._exit(0)
