"""What the agent sandbox costs: a ``bash`` call without a sandbox, in a bubblewrap started
for the call (cold), in the thread's warm sandbox, and a thread's first call (which starts
its warm sandbox); and a warm MCP tool call (a stdio server already running in the
thread's sandbox).

    .venv/bin/python bench/sandbox.py [--runs 50] [--rounds 5]

Each figure is the wall time of one tool call as the agent makes it (``Bash.run`` /
``McpTool.run``: spawn, run ``true``, reap; or one ``tools/call`` round trip), median and
p90 over ``--runs`` calls after a warm-up, taken in ``--rounds`` alternating rounds (the
median of the rounds' figures is printed), and the CPU time (user + system) the call's
child processes used, which a busy machine inflates far less than wall time (for a warm
sandbox: its supervisor's, and that of the commands it started and reaped, from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from dragoman.agents.builtin.shell import Bash
from dragoman.agents.mcp import McpHub, McpServerSpec
from dragoman.agents.sandbox import SandboxPolicy, descendants, probe
from dragoman.agents.warm_sandbox import WarmPool
from dragoman.agents.workspaces import ThreadWorkspaces

SERVER = '''
from mcp.server.mcpserver import MCPServer
mcp = MCPServer("bench")

@mcp.tool()
def ping() -> str:
    """pong"""
    return "pong"

mcp.run()
'''


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _supervisor_cpu(pool: WarmPool) -> Callable[[], float]:
    """CPU seconds of a warm sandbox's supervisor and of what it started and reaped (the
    commands, through their PID namespaces' inits)."""
    def cpu() -> float:
        total = 0.0
        for warm in pool._boxes.values():
            for pid in descendants(warm.proc.pid):
                try:
                    with open(f"/proc/{pid}/stat", "rb") as f:
                        stat = f.read()
                except OSError:
                    continue
                fields = stat[stat.rindex(b")") + 2:].split()
                total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total
    return cpu


async def _timed(call: Callable[[], Awaitable[object]], runs: int,
                 cpu_of: Callable[[], float] = _children_cpu) -> tuple[float, float, float]:
    """(median ms, p90 ms, children's CPU ms per call)."""
    for _ in range(3):
        await call()
    times = []
    cpu = cpu_of()
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    cpu = (cpu_of() - cpu) * 1000 / runs
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1], cpu


async def _first_call(spaces: ThreadWorkspaces, policy: SandboxPolicy, runs: int
                      ) -> tuple[float, float, float]:
    """A thread's first command: its warm sandbox starts (a new thread each time)."""
    assert policy.warm is not None
    times = []
    for i in range(runs):
        async with spaces.open("bench", f"first-{i}") as ws:
            start = time.perf_counter()
            await Bash(ws, policy=policy).run({"command": "true"})
            times.append((time.perf_counter() - start) * 1000)
            await policy.warm.stop(ws.root)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1], float("nan")


async def main(runs: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        template.mkdir()
        (template / "server.py").write_text(SERVER)
        (Path(tmp) / "roots").mkdir()
        spaces = ThreadWorkspaces(Path(tmp) / "roots", template=template)
        ro = (str(Path(sys.executable).parent.parent), sys.base_prefix)
        policy = SandboxPolicy(probe(), ro_paths=ro)
        warm = SandboxPolicy(probe(), ro_paths=ro, warm=WarmPool())
        names = ["bash, no sandbox", "bash, bwrap sandbox per call (cold)",
                 "bash, thread's warm sandbox (later calls)",
                 "bash, thread's first call (warm sandbox starts)"]
        per_round: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
        async with spaces.open("bench", "thread") as ws:
            plain = Bash(ws)
            cold = Bash(ws, policy=policy)
            hot = Bash(ws, policy=warm)
            for _ in range(rounds):  # alternating, so a change of load hits all alike
                per_round[names[0]].append(await _timed(
                    lambda: plain.run({"command": "true"}), runs))
                per_round[names[1]].append(await _timed(
                    lambda: cold.run({"command": "true"}), runs))
                assert warm.warm is not None
                per_round[names[2]].append(await _timed(
                    lambda: hot.run({"command": "true"}), runs, _supervisor_cpu(warm.warm)))
                per_round[names[3]].append(await _first_call(spaces, warm,
                                                             max(3, runs // 5)))
            assert warm.warm is not None
            await warm.warm.aclose()
            rows = [(n, tuple(statistics.median(r[i] for r in per_round[n]) for i in range(3)))
                    for n in names]
            hub = McpHub([McpServerSpec(name="bench", kind="stdio", command=sys.executable,
                                        args=["server.py"])], policy)
            try:
                start = time.perf_counter()
                async with contextlib.AsyncExitStack() as stack:
                    [tool] = await hub.tools("bench", "thread", ws, set(), stack)
                first = (time.perf_counter() - start) * 1000
                rows.append(("MCP tools/call, warm stdio server in bwrap",
                             await _timed(lambda: tool.run({}), runs)))
                rows.append(("MCP server start + tools/list (once per thread)",
                             (first, first, float("nan"))))
            finally:
                await hub.aclose()
    print(f"{'call':50} {'median ms':>10} {'p90 ms':>8} {'child CPU ms':>13}")
    for name, (median, p90, cpu) in rows:
        print(f"{name:50} {median:10.2f} {p90:8.2f} {cpu:13.2f}")
    base = rows[0][1][0]
    print(f"over an unsandboxed call (medians of {rounds} alternating rounds of {runs}): "
          f"cold sandbox +{rows[1][1][0] - base:.2f} ms, warm sandbox "
          f"+{rows[2][1][0] - base:.2f} ms, a thread's first call +{rows[3][1][0] - base:.2f}"
          f" ms; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.rounds))
