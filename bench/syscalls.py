"""System calls per request of whole servers: the bare aiohttp relay and dragoman.

    python bench/syscalls.py [--targets relay,pass,translated] [--shapes whole,stream,long]

Callgrind (``bench/instr.py``, ``bench/instr_server.py``) counts the instructions a
process executes in user space; what it spends in the kernel (a ``write`` per frame, an
``epoll_ctl`` per wait, a timer) is not in those counts but is in the wall clock. Here
each target runs as in ``bench/instr_server.py`` (the same server, the same gateway), not
under valgrind: ``strace -c -f`` is attached after a warm-up, while this script sends it
the bench's request ``n`` times over one keep-alive connection; a short and a long run,
subtracted, so attaching and the idle ticks cancel out: system calls per request, by
name. ``strace`` (``apt-get install strace``) slows every call, so the counts are what
matters, not the times it prints.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from instr_server import SHAPES, _connect, _Reader, _request  # noqa: E402

WARM_UP = 50


def _counts(strace_out: str) -> dict[str, int]:
    """``strace -c``'s table → calls per syscall name."""
    calls: dict[str, int] = {}
    for line in strace_out.splitlines():
        # % time, seconds, usecs/call, calls, [errors,] syscall
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
        if m and m.group(2) != "total":
            calls[m.group(2)] = int(m.group(1))
    return calls


def _count(target: str, n: int, shape: str, upstream: str) -> dict[str, int]:
    """System calls of a server process (all its threads) while it answers ``n``
    requests, attached after a warm-up (start-up not counted)."""
    from procs import free_port

    port = free_port()
    cmd = [sys.executable, str(HERE / "instr_server.py"), "--serve", target,
           "--port", str(port), "--shape", shape, "--upstream", upstream]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    try:
        request = _request(target, shape, port)
        with _connect(port, proc) as sock, \
                tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
            reader = _Reader(sock)

            def answer(times: int) -> None:
                for _ in range(times):
                    sock.sendall(request)
                    head, body = reader.answer()
                    if not head.startswith(b"HTTP/1.1 200 ") or not body:
                        raise RuntimeError(f"{target}: {head!r} {body[:300]!r}")

            answer(WARM_UP)
            tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out.name,
                                       "-p", str(proc.pid)], stderr=subprocess.PIPE,
                                      text=True)
            assert tracer.stderr is not None
            tracer.stderr.readline()  # "strace: Process N attached"
            time.sleep(0.5)  # (its threads too)
            answer(n)
            tracer.send_signal(signal.SIGINT)
            tracer.communicate(timeout=60)
            return _counts(Path(out.name).read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default="relay,pass,translated",
                    help="relay, pass, translated, asgi (as bench/instr_server.py)")
    ap.add_argument("--shapes", default="whole,stream,long", help="whole, stream, long")
    ap.add_argument("--requests", default="200,1200", help="the short and the long run's "
                    "request counts")
    args = ap.parse_args()
    if shutil.which("strace") is None:
        sys.exit("strace is not installed (apt-get install strace)")
    from targets import upstreams

    n_short, n_long = (int(n) for n in args.requests.split(","))
    with tempfile.TemporaryDirectory() as tmp, upstreams(Path(tmp), "0") as ups:
        for shape in args.shapes.split(","):
            for target in args.targets.split(","):
                short = _count(target, n_short, SHAPES[shape], ups.nginx_base)
                long = _count(target, n_long, SHAPES[shape], ups.nginx_base)
                per = {name: (long.get(name, 0) - short.get(name, 0)) / (n_long - n_short)
                       for name in long.keys() | short.keys()}
                shown = {k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1])
                         if v >= 0.05}
                total = sum(per.values())
                print(f"{target:>10} {shape:>6}: {total:5.2f} syscalls per request: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in shown.items()), flush=True)


if __name__ == "__main__":
    main()
