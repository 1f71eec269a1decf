"""wrk runs (pinned to the load CPU, bounded in time and, for the soak, in count) and the
parsing of their report."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers plus socket errors (connect, read, write, timeout)
    #: (percentile, ms) pairs of the run's latency distribution (post.lua's ``done``), for
    #: pooling many runs (bench/pooled.py); not in ``as_dict``
    quantiles: tuple[tuple[float, float], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()
                if k != "quantiles"}


def _ms(out: str, label: str) -> float:
    m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not m:
        return float("nan")
    v = float(m.group(1))
    return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]


def parse(out: str) -> WrkResult:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not done:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    secs = float(done.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    grid = re.search(r"^quantiles (.*)$", out, re.M)
    quantiles = tuple((float(p), int(us) / 1000) for p, us in
                      (cell.split(":") for cell in grid.group(1).split())) if grid else ()
    return WrkResult(requests=int(done.group(1)), seconds=secs,
                     rps=float(rps.group(1)) if rps else 0.0,
                     p50_ms=_ms(out, "50%"), p99_ms=_ms(out, "99%"), errors=errors,
                     quantiles=quantiles)


def wrk(url: str, body_file: Path, *, conns: int, seconds: float, cpus: str,
        max_requests: int | None = None, timeout_s: int = 10) -> WrkResult:
    """One wrk run: one thread, ``conns`` keep-alive connections, ``seconds`` long (and
    stopped after ``max_requests`` answers when given)."""
    script = "count.lua" if max_requests else "post.lua"
    env = {**os.environ, "BODY_FILE": str(body_file)}
    cmd = ["taskset", "-c", cpus, "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s",
           f"--timeout={timeout_s}s", "--latency", "-s", str(HERE / script), url]
    with tempfile.TemporaryDirectory() as tmp:
        done_file = Path(tmp) / "done"
        if max_requests:
            env.update(MAX_REQUESTS=str(max_requests), DONE_FILE=str(done_file))
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + seconds + timeout_s + 30
        if max_requests:
            # wrk sleeps out -d even when its thread has stopped: SIGINT ends the sleep
            # and wrk reports what it did.
            while proc.poll() is None and not done_file.exists() \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError(f"wrk did not finish: {' '.join(cmd)}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip()}")
    return parse(out)
