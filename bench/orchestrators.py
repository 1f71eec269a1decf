"""Orchestration overhead: CPU per inner model call, the model itself excluded.

    python bench/orchestrators.py [--runs 300] [--deltas 1] [--upstream http]
                                  [--loop uvloop]
    python bench/orchestrators.py --instr [--only LABEL ...] [--modes stream,run]
                                  [--upstream http] [--loop uvloop]

Every orchestrator runs in-process on an INSTANT provider (scripted answers yielded at
once: no sockets, no model), so what is measured is the orchestrator's own work — plans,
prompts, events, scoring, the tree search. For each scenario it prints the inner calls a
run makes and, both for the stream read to the end (what the server does) and for
``run()`` (what ``bench/tako_orchestrators.py`` times for tako, whose streams are slower):
the CPU time of a run (``time.process_time``, the cheapest of batches of ``BATCH`` runs),
that time per inner call (tako's measure),
and the per-call "own" work with the cost of consuming a bare provider stream
subtracted. The first five scenarios have the shape of tako's (same labels); the ones
marked ``+`` use what tako lacks (chained workers and a halting coordinator, Trinity
roles, candidate models). A 16-iteration search should add under 5 ms of its own.

CPU time, not wall time: the machine is shared, and process time is far steadier. Still,
compare runs made one after the other, not across machines. ``--instr`` counts
instructions instead (valgrind's callgrind, like ``bench/instr.py``: a short and a long
series of runs, the difference per run; repeatable to ~1 %, whatever the machine's load),
of the stream read to the end and of ``run()``; ``--only`` picks scenarios by label.
With ``--upstream http`` too, the valgrind child talks to the scripted upstream (started
once, outside valgrind: its instructions are not counted), and it also counts one bare
``complete()`` and two ``complete()`` calls at once on one provider (a Conductor plan's
two workers: two pooled connections in use together).

An ``Instant`` model answers ``complete()`` whole as cheaply as its stream (an
orchestrator whose deltas no one reads asks for the whole answer), and a model whose
script reads nothing (the plain answer, tako's planner) replies a canned text, like
tako's ``providers.Fake``.

``--upstream http`` runs the same scenarios on real HTTP instead: every model is our
OpenAI Chat provider (``dragoman.providers.OpenAIChat`` with a ``base_url``, what
``provider: openai`` builds) on ``bench/scripted_upstream.py``, a server in a process of
its own (its CPU is not counted) that answers each model name with the same scripts as
the instant models, at once. The calls are counted by the server, streamed and whole
apart, and the "own" columns subtract, per call, one bare provider call of the same kind
to that server (our HTTP client's cost per call): a ``stream()`` for a streamed call, a
``complete()`` for a whole one (``run()`` asks for its inner answers whole where no one
reads their deltas). The ``conns`` column is the connections the server saw opened
during a scenario's timed runs (0: every call went on a kept-alive one).
``bench/tako_orchestrators.py --upstream http`` does the same for tako.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from dragoman import AbMcts, Conductor, SelfCaller, SingleAgent, Trinity, guards, routers, verifiers
from dragoman.agents.orchestrator import Orchestrator, question_of, user
from dragoman.core import (
    NO_CONTEXT,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Finish,
    RequestContext,
    StreamEvent,
    Text,
    TextDelta,
    Usage,
    UsageUpdate,
)
from dragoman.providers.base import LlmProvider

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scripted_upstream as su  # the scripts, and the HTTP upstream

#: the event loop the runs are counted on (``--loop``)
LOOP = "asyncio"
#: text deltas per model answer (1: like tako's ``providers.Fake``, which never streams)
DELTAS = 1

#: what every run is asked
PROMPT = [user(su.PROMPT)]


@dataclass
class Instant:
    """A provider that answers at once with ``reply(request)``, in ``DELTAS`` deltas."""

    name: str
    reply: Callable[[ChatRequest], str]
    calls: int = 0
    streamed: int = 0

    def capabilities(self) -> Capabilities:
        return Capabilities()

    async def count_tokens(self, req: ChatRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        pass

    async def complete(self, req: ChatRequest,
                       ctx: RequestContext = NO_CONTEXT) -> ChatResponse:
        """The same answer whole, made at once (what a JSON answer is to the stream)."""
        self.calls += 1
        return ChatResponse(id="x", model=self.name, content=[Text(text=self.reply(req))],
                            usage=Usage(input_tokens=10, output_tokens=5))

    async def stream(self, req: ChatRequest, ctx: RequestContext = NO_CONTEXT
                     ) -> AsyncGenerator[StreamEvent, None]:
        self.calls += 1
        self.streamed += 1
        text = self.reply(req)
        size = max(1, -(-len(text) // DELTAS))
        for i in range(0, len(text), size):
            yield TextDelta(text=text[i:i + size])
        yield UsageUpdate(usage=Usage(input_tokens=10, output_tokens=5))
        yield Finish()


def _system(req: ChatRequest) -> str:
    return " ".join(p.text for p in req.system or [] if hasattr(p, "text"))


def instant(name: str) -> Instant:
    """The in-process model ``name``: the same script as the HTTP upstream's model
    ``name`` (``bench/scripted_upstream.py``), answered without a socket."""
    script = su.SCRIPTS.get(name, su.answer)
    if script in (su.answer, su.planner):  # they read nothing: a canned reply, like a Fake
        text = script("", "")
        return Instant(name, lambda req: text)
    return Instant(name, lambda req: script(_system(req), question_of(req)))


Orch = Orchestrator | SingleAgent


def build(make: Callable[[str], LlmProvider] = instant
          ) -> dict[str, tuple[Orch, list[LlmProvider]]]:
    """label -> (orchestrator, the models it calls), each model ``make(name)``: an
    ``Instant`` or an OpenAI provider on the scripted upstream (``--upstream http``). The
    first five have the shape of ``bench/tako_orchestrators.py``'s (same labels); the rest
    use what tako lacks."""
    model = make("m")
    planner = make("planner")
    coord, worker = make("coord"), make("w")
    roles = make("roles")
    cands = [make("c1"), make("c2")]
    never = verifiers.RuleBased(min_chars=10, pattern="MAGIC")
    return {
        "single (1 call)": (SingleAgent(model, owns_provider=False), [model]),
        "conductor (6 plans x 2 workers)": (
            Conductor(planner, {"code": model, "math": model}, verifier=never),
            [planner, model]),
        "trinity (1 routed call)": (
            Trinity({"code": model, "math": model, "other": model}, routers.RegexRouter()),
            [model]),
        "self_caller (4 iterations)": (
            SelfCaller(SingleAgent(model, owns_provider=False),
                       guards.RuleBased(min_chars=10 ** 6), max_depth=3), [model]),
        "ab_mcts (16 iterations)": (
            AbMcts(model, never, max_iterations=16, min_confidence=0.99, seed=1), [model]),
        "+ conductor (plan, 2 chained workers, halt)": (
            Conductor(coord, {"code": worker, "math": worker}, verifier=never),
            [coord, worker]),
        "+ trinity (thinker, worker, verifier)": (
            Trinity({"thinker": roles, "worker": roles, "verifier": roles},
                    routers.RegexRouter()), [roles]),
        "+ ab_mcts (16 iterations, 3 models)": (
            AbMcts(model, never, candidates=cands, max_iterations=16, seed=1),
            [model, *cands]),
    }


async def _bare(provider: LlmProvider, runs: int, streamed: bool = True) -> float:
    """CPU seconds of consuming one bare stream of ``provider`` (subtracted per call), or
    of one ``complete()`` call (a JSON answer instead of SSE, shown for comparison)."""
    req = ChatRequest(model="m", messages=PROMPT)
    best = float("inf")
    for _ in range(max(1, runs // 100)):
        t0 = time.process_time()
        for _ in range(100):
            if not streamed:
                await provider.complete(req)
                continue
            async for _ev in provider.stream(req):
                pass
        best = min(best, (time.process_time() - t0) / 100)
    return best


#: runs are timed in batches of this many; the cheapest batch counts (the machine's other
#: load only ever adds time, so the minimum is the steadiest estimate)
BATCH = 10


async def _timed(orch: Orch, runs: int, streamed: bool, batch: int = BATCH) -> float:
    """CPU seconds per run: the stream read to the end, or ``run()`` (as tako is timed)."""
    req = ChatRequest(model="o", messages=PROMPT)
    best = float("inf")
    for _ in range(max(1, runs // batch)):
        t0 = time.process_time()
        for _ in range(batch):
            if streamed:
                async for _ev in orch.stream(req):
                    pass
            else:
                await orch.run(PROMPT)
        best = min(best, (time.process_time() - t0) / batch)
    return best


#: the model calls answered so far: all of them, the streamed ones, connections opened
Served = tuple[int, int, int]
#: makes the scenarios' models by name; says what they have served so far
Models = tuple[Callable[[str], LlmProvider], Callable[[], Served]]


def instants() -> Models:
    made: list[Instant] = []

    def make(name: str) -> Instant:
        made.append(instant(name))
        return made[-1]
    return make, lambda: (sum(i.calls for i in made), sum(i.streamed for i in made), 0)


def over_http(upstream: su.Upstream, made: list[LlmProvider]) -> Models:
    """Our OpenAI Chat provider (``provider: openai`` with a ``base_url``), one per model
    name, on the scripted upstream; the calls and connections are counted by the server."""
    from dragoman.providers import OpenAIChat

    def make(name: str) -> LlmProvider:
        made.append(OpenAIChat(model=name, base_url=upstream.url, api_key="sk-bench"))
        return made[-1]

    def served() -> Served:
        s = upstream.stats()
        return int(s["requests"]), int(s["streamed"]), int(s["connections"])
    return make, served


async def main(runs: int, models: Models, what: str, labels: list[str] | None = None) -> None:
    make, served = models
    bare = await _bare(make("m"), runs * 10)
    print(f"bare {what} stream: {bare * 1e6:.1f} µs CPU per call")
    complete = await _bare(make("m"), runs * 10, streamed=False)
    print(f"bare complete(), a JSON answer: {complete * 1e6:.1f} µs (subtracted for a whole"
          " call)\n")
    print(f"{'orchestrator':44} {'calls':>5} {'stream µs':>9} {'/call':>6} {'own':>6}"
          f" {'run() µs':>9} {'/call':>6} {'own':>6} {'whole':>5} {'conns':>5}")
    timed_runs = max(1, runs // BATCH) * BATCH
    for label, (orch, _models) in build(make).items():
        if labels and label not in labels:
            continue
        for streamed in (True, False):  # warm up
            for _ in range(3):
                await _timed(orch, 1, streamed)
        cols, conns = "", 0
        for streamed in (True, False):
            before = served()
            cpu = await _timed(orch, runs, streamed)
            after = served()
            calls = (after[0] - before[0]) / timed_runs
            whole = calls - (after[1] - before[1]) / timed_runs
            conns += after[2] - before[2]
            bare_cpu = (calls - whole) * bare + whole * complete  # each call's own kind
            cols += (f" {cpu * 1e6:9.0f} {cpu / calls * 1e6:6.1f} "
                     f"{(cpu - bare_cpu) / calls * 1e6:6.1f}")
            if streamed:
                streamed_cpu, streamed_bare = cpu, bare_cpu
        print(f"{label:44} {calls:5.0f}{cols} {whole:5.0f} {conns:5d}"
              + (f"   search adds {(streamed_cpu - streamed_bare) * 1e3:.2f} ms"
                 if "ab_mcts" in label else ""))


async def main_http(runs: int, labels: list[str]) -> None:
    made: list[LlmProvider] = []
    with su.Upstream(sys.executable, DELTAS) as upstream:
        try:
            await main(runs, over_http(upstream, made), f"OpenAI provider on {upstream.url}",
                       labels)
        finally:
            for provider in made:
                await provider.aclose()


#: bare calls counted under valgrind (``--instr``): label -> (calls per run, how)
BARE = {"bare": 1, "bare-complete": 1, "bare-pair": 2}


async def _bare_pair(provider: LlmProvider, runs: int) -> None:
    """``runs`` times two ``complete()`` calls at once on one provider (two connections of
    its pool in use together, as a Conductor plan's two workers)."""
    req = ChatRequest(model="m", messages=PROMPT)
    for _ in range(runs):
        await asyncio.gather(provider.complete(req), provider.complete(req))


async def _drive(label: str, runs: int, mode: str = "stream", url: str = "") -> None:
    """Run inside valgrind: ``runs`` runs of one orchestrator, its stream read to the end
    or its ``run()`` (``mode``), or of a bare call (``BARE``); on the scripted upstream at
    ``url`` when given (our OpenAI provider), else on instant models."""
    made: list[LlmProvider] = []
    make: Callable[[str], LlmProvider] = instant
    if url:
        from dragoman.providers import OpenAIChat

        def make(name: str) -> LlmProvider:
            made.append(OpenAIChat(model=name, base_url=url, api_key="sk-bench"))
            return made[-1]
    try:
        if label == "bare":
            await _bare(make("m"), runs)
        elif label == "bare-complete":
            await _bare(make("m"), runs, streamed=False)
        elif label == "bare-pair":
            await _bare_pair(make("m"), runs)
        else:
            orch, _ = build(make)[label]
            await _timed(orch, runs, mode == "stream", batch=1)
    finally:
        for provider in made:
            await provider.aclose()


def _instructions(label: str, runs: int, mode: str, url: str = "") -> int:
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           __file__, "--drive", label, "--runs", str(runs), "--deltas", str(DELTAS),
           "--drive-mode", mode, "--drive-url", url, "--loop", LOOP]
    # a fixed hash seed: set and dict layouts (and so the counts) do not move between runs
    env = {"PYTHONHASHSEED": "0", **os.environ}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stderr
    m = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(m.group(1).replace(",", ""))


def _per_run(label: str, short: int = 20, long: int = 120, mode: str = "stream",
             url: str = "") -> float:
    return ((_instructions(label, long, mode, url) - _instructions(label, short, mode, url))
            / (long - short))


def instr(labels: list[str], modes: list[str], http: bool = False) -> None:
    if not http:
        _instr(labels, modes, instants(), "")
        return
    with su.Upstream(sys.executable, DELTAS) as upstream:
        _instr(labels, modes, over_http(upstream, []), upstream.url)


def _instr(labels: list[str], modes: list[str], models: Models, url: str) -> None:
    """Instructions per run and per inner call; the own column subtracts per call a bare
    call of the same kind (streamed or whole, as the server counted them)."""
    bare = {k: _per_run(k, 200, 1200, url=url) / n
            for k, n in BARE.items() if url or k == "bare"}
    where = f"OpenAI provider on {url}" if url else "instant provider"
    print(f"bare {where}, stream: {bare['bare'] / 1e3:.1f}k instructions per call "
          "(subtracted per streamed call)")
    if url:
        print(f"bare complete(): {bare['bare-complete'] / 1e3:.1f}k per call (subtracted "
              f"per whole call); two at once: {bare['bare-pair'] / 1e3:.1f}k per call")
    print(f"\n{'orchestrator':44} {'mode':>6} {'run k':>9} {'calls':>6} {'whole':>6} "
          f"{'k/call':>8} {'own k/call':>10}")
    make, served = models
    for label, (orch, used) in build(make).items():
        if labels and label not in labels:
            continue
        for mode in modes:
            before = served()
            asyncio.run(_drive_counting(orch, used, mode == "stream"))
            after = served()
            calls = after[0] - before[0]
            whole = calls - (after[1] - before[1]) if url else 0
            total = _per_run(label, mode=mode, url=url)
            own = total - (calls - whole) * bare["bare"] \
                - whole * bare.get("bare-complete", 0.0)
            print(f"{label:44} {mode:>6} {total / 1e3:9.0f} {calls:6d} {whole:6d} "
                  f"{total / calls / 1e3:8.1f} {own / calls / 1e3:10.1f}", flush=True)


async def _drive_counting(orch: Orch, models: list[LlmProvider], streamed: bool = True
                          ) -> None:
    """One run outside valgrind, to count its inner calls."""
    await _timed(orch, 1, streamed, batch=1)
    for provider in models:
        await provider.aclose()  # (their pools belong to this run's loop)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--deltas", type=int, default=1,
                    help="text deltas per answer (each one is scored and relayed)")
    ap.add_argument("--instr", action="store_true",
                    help="count instructions under valgrind instead of CPU time")
    ap.add_argument("--upstream", choices=("instant", "http"), default="instant",
                    help="instant: in-process models; http: our OpenAI provider on "
                         "bench/scripted_upstream.py (its own process) over loopback")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                    help="the event loop (tako's script has only asyncio's)")
    ap.add_argument("--only", action="append", default=[], metavar="LABEL",
                    help="only this scenario (repeatable)")
    ap.add_argument("--modes", default="stream,run",
                    help="with --instr: what to count, of stream (read to the end) and run")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    ap.add_argument("--drive-mode", default="stream", help=argparse.SUPPRESS)
    ap.add_argument("--drive-url", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    DELTAS = args.deltas
    LOOP = args.loop
    if args.drive:
        if LOOP == "uvloop":
            import uvloop

            uvloop.run(_drive(args.drive, args.runs, args.drive_mode, args.drive_url))
        else:
            asyncio.run(_drive(args.drive, args.runs, args.drive_mode, args.drive_url))
    elif args.instr:
        instr(args.only, args.modes.split(","), args.upstream == "http")
    else:
        run = asyncio.run
        if args.loop == "uvloop":  # the loop the gateway serves on (server/runner.py)
            import uvloop

            run = uvloop.run
        if args.upstream == "http":
            run(main_http(args.runs, args.only))
        else:
            run(main(args.runs, instants(), "instant provider", args.only))
