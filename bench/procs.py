"""Process plumbing for the harness: free ports, readiness, pinned children, and the
resident memory of a process tree (a supervisor plus its workers)."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

#: The client key every target is configured with (LiteLLM refuses to start with a weak
#: or no master key). Made per run; in the environment so wrk's Lua scripts read it.
BENCH_KEY = os.environ.setdefault("BENCH_KEY", "sk-" + secrets.token_hex(32))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_fd_limit() -> None:
    """1,000 concurrent streams need ~2,000 sockets in the target and 1,000 in each of the
    client and the upstream; children inherit the raised soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None,
              timeout: float = 60.0) -> None:
    """Poll until ``url`` answers (any HTTP status counts: the server is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"not ready after {timeout:.0f}s: {url}")


def spawn(cmd: Sequence[str], cpus: str, log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` pinned to ``cpus`` (children inherit the affinity) in its own process
    group, so stopping it stops its workers too."""
    with log.open("ab") as out:
        return subprocess.Popen(["taskset", "-c", cpus, *cmd], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the group (graceful), SIGKILL it if it is still there after ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _vm_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _exe_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def rss_mb(pid: int) -> float:
    """Resident memory of the tree under ``pid`` (VmRSS summed over the processes; shared
    pages of forked workers count once per process, as a deployment pays them). The
    ``taskset`` wrapper has exec'd into the command, so ``pid`` is the server itself."""
    return sum(_vm_rss_kb(p) for p in tree(pid)) / 1024


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user+system) used so far by the whole tree under ``pid``."""
    return sum(_cpu_seconds(p) for p in tree(pid))


def cpu_by_process(pid: int) -> dict[int, float]:
    """CPU seconds (user+system) of each process in the tree: shows which workers served."""
    return {p: round(_cpu_seconds(p), 2) for p in tree(pid) if _exe_name(p)}


class RssSampler:
    """Samples the tree's RSS every ``interval`` seconds in a thread; ``peak`` is the
    largest sample (between ``start`` and ``stop``)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))
