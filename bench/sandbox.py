"""What the agent sandbox costs: a ``bash`` call with and without bubblewrap, and a warm MCP
tool call (a stdio server already running in the thread's sandbox).

    .venv/bin/python bench/sandbox.py [--runs 50]

Each figure is the wall time of one tool call as the agent makes it (``Bash.run`` /
``McpTool.run``: spawn, run ``true``, reap; or one ``tools/call`` round trip), median and
p90 over ``--runs`` calls after a warm-up, and the CPU time (user + system) the call's
child processes used, which a busy machine inflates far less than wall time.
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
from dragoman.agents.sandbox import SandboxPolicy, probe
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


async def _timed(call: Callable[[], Awaitable[object]],
                 runs: int) -> tuple[float, float, float]:
    """(median ms, p90 ms, children's CPU ms per call)."""
    for _ in range(3):
        await call()
    times = []
    cpu = _children_cpu()
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    cpu = (_children_cpu() - cpu) * 1000 / runs
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1], cpu


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        template.mkdir()
        (template / "server.py").write_text(SERVER)
        (Path(tmp) / "roots").mkdir()
        spaces = ThreadWorkspaces(Path(tmp) / "roots", template=template)
        policy = SandboxPolicy(probe(), ro_paths=(str(Path(sys.executable).parent.parent),
                                                  sys.base_prefix))
        async with spaces.open("bench", "thread") as ws:
            plain = Bash(ws)
            boxed = Bash(ws, policy=policy)
            rows = [("bash, no sandbox", await _timed(lambda: plain.run({"command": "true"}),
                                                      runs)),
                    ("bash, bwrap sandbox", await _timed(lambda: boxed.run({"command": "true"}),
                                                         runs))]
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
    print(f"{'call':45} {'median ms':>10} {'p90 ms':>8} {'child CPU ms':>13}")
    for name, (median, p90, cpu) in rows:
        print(f"{name:45} {median:10.2f} {p90:8.2f} {cpu:13.2f}")
    added = rows[1][1][0] - rows[0][1][0]
    added_cpu = rows[1][1][2] - rows[0][1][2]
    print(f"sandbox start-up over an unsandboxed call: {added:.2f} ms wall (median), "
          f"{added_cpu:.2f} ms CPU; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    asyncio.run(main(parser.parse_args().runs))
