"""tako-ai-core's orchestration overhead, to set next to ``bench/orchestrators.py``.

    python -m venv /tmp/tako && /tmp/tako/bin/pip install tako-ai-core==0.51.2
    /tmp/tako/bin/python bench/tako_orchestrators.py [--runs 300]

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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import tako  # type: ignore[import-not-found]
from tako import guards, providers, routers, verifiers  # type: ignore[import-not-found]

PLAN = json.dumps({"thought": "split", "dispatch": [
    {"worker": "code", "task": "write merge sort"}, {"worker": "math", "task": "analyse"}],
    "halt": False})
PROMPT = "Write code to sort a list"
ANSWER = "an answer of medium length that never has the magic word"


def scenarios() -> dict[str, tuple[Any, int]]:
    """label -> (orchestrator, model calls per run)."""
    fake = providers.Fake(ANSWER, id="fake:m")
    plan = providers.Fake(PLAN, id="fake:coord")
    never = verifiers.RuleBased(min_chars=10, pattern="MAGIC")
    return {
        "single (1 call)": (tako.SingleAgent(fake), 1),
        "conductor (6 plans x 2 workers)": (
            tako.Conductor(plan, {"code": fake, "math": fake}, verifier=never), 18),
        "trinity (1 routed call)": (
            tako.Trinity({"code": fake, "math": fake, "other": fake}, routers.RegexRouter()),
            1),
        "self_caller (4 iterations)": (
            tako.SelfCaller(tako.SingleAgent(fake), guards.RuleBased(min_chars=10 ** 6),
                            max_depth=3), 4),
        "ab_mcts (16 iterations)": (
            tako.AbMcts(fake, never, max_iterations=16, min_confidence=0.99), 16),
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


async def main(runs: int) -> None:
    print(f"{'tako-ai-core ' + tako.__version__:44} {'calls':>5} {'run() µs':>9} "
          f"{'/call':>6} {'stream µs':>9} {'/call':>6}")
    for label, (orch, calls) in scenarios().items():
        streams = hasattr(orch, "stream")  # only SelfCaller and AbMcts stream in 0.51.2
        await _timed(orch, 3, False)
        cpu = await _timed(orch, runs, False)
        line = f"{label:44} {calls:5d} {cpu * 1e6:9.0f} {cpu / calls * 1e6:6.1f}"
        if streams:
            await _timed(orch, 3, True)
            cpu = await _timed(orch, max(1, runs // 10), True)
            line += f" {cpu * 1e6:9.0f} {cpu / calls * 1e6:6.1f}"
        print(line)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    asyncio.run(main(ap.parse_args().runs))
