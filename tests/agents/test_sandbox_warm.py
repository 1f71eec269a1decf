"""A thread's warm sandbox, through a real ``dragoman serve`` running as root: built on the
thread's first command and found again by its later turns, one per thread, and stopped —
no process left — after idle, when the thread's workspace expires, at the end of a
request without a thread (the Python API), and when the server stops.

The sandboxes are found the way an operator would: the processes whose command line
names the agent's workspace root (bubblewrap binds the thread's workspace from there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dragoman.agents.builtin import BUILTINS
from dragoman.agents.builtin.shell import BashOptions
from dragoman.agents.sandbox import SandboxPolicy, probe
from dragoman.agents.toolbox import ThreadToolbox
from dragoman.agents.warm_sandbox import WarmPool
from dragoman.agents.workspaces import ThreadWorkspaces
from tests.agents.test_sandbox import _agent, bash
from tests.gateway_proc import run_gateway

pytestmark = [pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
              pytest.mark.skipif(os.geteuid() != 0,
                                 reason="warm sandboxes need a server running as root")]

#: In the supervisor's source, which bubblewrap's command line carries.
SUPERVISOR_MARK = b"keeps a thread's sandbox warm"


def warm_sandboxes(root: Path) -> list[int]:
    """The warm sandboxes of workspaces at or below ``root``: their bubblewrap processes
    (not bubblewrap's own init in the sandbox, a child with the same command line)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        prefix = str(root).encode()
        if SUPERVISOR_MARK in cmdline and any(arg == prefix or arg.startswith(prefix + b"/")
                                              for arg in cmdline.split(b"\0")):
            with contextlib.suppress(OSError, ValueError):
                stat = (entry / "stat").read_bytes()
                found[int(entry.name)] = int(stat[stat.rindex(b")") + 2:].split()[1])
    return sorted(pid for pid, parent in found.items() if parent not in found)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def namespace(text: str) -> str:
    """The namespace link a command printed (``mnt:[4026…]``)."""
    return text.rsplit("result: ", 1)[1].split()[0]


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(gateway URL, root of the `box` agent, root of the `quick` agent, idle after 1 s)."""
    tmp = tmp_path_factory.mktemp("warm")
    box, quick = tmp / "box", tmp / "quick"
    box.mkdir()
    quick.mkdir()
    config = {"models": [{"name": "dragoman/echo", "provider": "echo"}],
              "agents": [_agent("box", box), _agent("quick", quick, sandbox_idle=1)]}
    with run_gateway(config, tmp) as base:
        yield base, box, quick
    # the server stopped: so did every sandbox it started
    assert not warm_sandboxes(box) and not warm_sandboxes(quick)


def test_a_thread_finds_its_warm_sandbox_on_later_turns(
        roots: tuple[str, Path, Path]) -> None:
    base, box, _ = roots
    first = namespace(bash(base, "readlink /proc/self/ns/mnt", thread="turns"))
    assert first.startswith("mnt:[")
    [sandbox] = warm_sandboxes(box)  # started by the first command, still there…
    assert namespace(bash(base, "readlink /proc/self/ns/mnt", thread="turns")) == first
    assert warm_sandboxes(box) == [sandbox]  # … and the same one on the next turn
    # each command still gets a PID namespace of its own: not the host's, not the warm
    # sandbox's (its bubblewrap's). (Two commands in a row may print the same id: the
    # kernel reuses a namespace's inode number once the namespace is gone.)
    inits = Path(f"/proc/{sandbox}/task/{sandbox}/children").read_text().split()
    outside = {os.readlink(f"/proc/{pid}/ns/pid") for pid in ["self", str(sandbox), *inits]}
    assert len(outside) == 2  # the host's, and the one bubblewrap made for the sandbox
    for _ in range(2):
        pid_ns = namespace(bash(base, "readlink /proc/self/ns/pid", thread="turns"))
        assert pid_ns.startswith("pid:[") and pid_ns not in outside
    # another thread: another sandbox
    other = namespace(bash(base, "readlink /proc/self/ns/mnt", thread="other-turns"))
    assert other.startswith("mnt:[") and other != first
    assert len(warm_sandboxes(box)) == 2


def test_background_processes_die_with_their_command(roots: tuple[str, Path, Path]) -> None:
    base, box, _ = roots
    # a daemon in a session of its own: gone once its command has ended
    assert "result: up" in bash(base, "setsid sleep 300 > /dev/null 2>&1 & echo up",
                                thread="daemon")
    uid = namespace(bash(base, "id -u", thread="daemon"))
    wait_until(lambda: not subprocess.run(["pgrep", "-u", uid], capture_output=True).stdout,
               10, "the daemon outlived its command")
    assert warm_sandboxes(box)  # the sandbox itself stays


async def _keyless_request(root: Path) -> None:
    pool = WarmPool()
    box = ThreadToolbox(ThreadWorkspaces(root), per_workspace=[("bash", BUILTINS["bash"],
                                                                BashOptions())],
                        policy=SandboxPolicy(probe(), warm=pool))
    async with box.open("tenant", None) as tools:
        [bash_tool] = list(tools)
        assert await bash_tool.run({"command": "echo once"}) == "once\n"
        assert len(warm_sandboxes(root)) == 1
    assert not warm_sandboxes(root) and len(pool) == 0
    async with box.open("tenant", "kept") as tools:
        await next(iter(tools)).run({"command": "true"})
    assert len(warm_sandboxes(root)) == 1  # a thread's stays for its next turn…
    await box.aclose()
    assert not warm_sandboxes(root)  # … until the agent closes


def test_a_request_without_a_thread_leaves_no_sandbox(tmp_path: Path) -> None:
    # (over HTTP every agent request has a thread — the gateway makes one — so this is
    # the Python API's case)
    asyncio.run(_keyless_request(tmp_path))


def test_an_idle_sandbox_stops(roots: tuple[str, Path, Path]) -> None:
    base, _, quick = roots
    assert "result: hi" in bash(base, "echo hi", model="quick", thread="idle")
    # idle after 1 s, checked every 0.5 s; a loaded machine may be slow to start one
    wait_until(lambda: not warm_sandboxes(quick), 15, "the idle sandbox was not stopped")
    # the thread's next turn starts a new one, with its files still there
    assert "result: (no output)" in bash(base, "echo kept > k", model="quick", thread="idle")
    assert "result: kept" in bash(base, "cat k", model="quick", thread="idle")


def test_an_expired_threads_sandbox_stops(tmp_path: Path) -> None:
    root = tmp_path / "roots"
    root.mkdir()
    config: dict[str, Any] = {
        "models": [{"name": "dragoman/echo", "provider": "echo"}],
        "agents": [_agent("box", root)],
        "sessions": {"backend": "sqlite", "path": str(tmp_path / "s.db"), "ttl": "2s"}}
    with run_gateway(config, tmp_path) as base:
        bash(base, "echo x > x", thread="expiring")
        [files] = (p.parent for p in root.glob("*/*/files/x"))
        assert len(warm_sandboxes(files)) == 1
        time.sleep(2.5)
        bash(base, "true", thread="sweeper")  # a request sweeps the expired workspace…
        assert not files.exists()
        # … and the sandbox bound to it stops (checked every 5 s)
        wait_until(lambda: not warm_sandboxes(files), 20,
                   "the expired thread's sandbox was not stopped")
        assert len(warm_sandboxes(root)) == 1  # the sweeper's
        assert "No such file" in bash(base, "cat x", thread="expiring")
