"""Instructions per request of whole servers: the bare aiohttp relay and dragoman.

    python bench/instr_server.py [--targets relay,pass,translated] [--shapes whole,stream,long]

``bench/instr.py`` counts dragoman's ASGI app driven in-process (no HTTP server); the
bare aiohttp relay (``bench/ceiling.py`` run as a script, the issue's throughput
reference, ``ceiling_aiohttp`` in bench/run.py) has no ASGI app to drive: its server and
its handler are one. So here each target is a whole server process under valgrind's
callgrind, listening on a real socket, and this script (outside valgrind) sends it the
bench's request ``n`` times over one keep-alive connection (the head wrk sends, the next
request once the answer is read to its end). Everything the process executes counts on
both sides: the HTTP server (aiohttp's, C parser included; dragoman's uvicorn + httptools
+ its guard), the handler, the upstream client, the event loop and the socket calls.
A short and a long run, and the difference over the extra requests is one request's
cost, start-up and shutdown cancelled out.

``--syscalls`` counts system calls instead of instructions: the same server under
``strace -c -f`` (no valgrind), the calls of each kind per extra request (sends, reads,
``epoll_ctl``…): what the kernel is asked per request, which instructions do not show.

Targets: ``relay`` (``ceiling.main``, as bench/run.py starts it), ``pass`` and
``translated`` (dragoman's gateway of bench/instr.py under the server ``dragoman serve``
runs: uvicorn, uvloop, the guarded httptools protocol, lifespan on), ``asgi`` (the raw
ASGI ceiling of ceiling.py under the same server). Shapes: ``whole`` (nginx's JSON
answer), ``stream`` (its four-frame stream), ``long`` (scenario s's STREAM_CHUNKS-chunk
stream). dragoman's wall-clock timers (the disconnect watcher's sweep, the once-a-second
sampler and ledger write) are set to an hour, as in instr.py: under callgrind a second
holds ~50x fewer requests than in reality. Left by the clock: uvicorn's 0.1 s tick
(a few hundred instructions per request at callgrind's pace).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from instr import _PREFIX, chat_request, instructions  # noqa: E402

SHAPES = {"whole": "", "stream": "stream", "long": "long"}


def _serve(target: str, port: int, shape: str, upstream: str) -> None:
    """Run inside valgrind: serve ``target`` on ``port`` until SIGTERM."""
    if target == "relay":
        os.environ["CEILING_NGINX"] = upstream  # (read when ceiling is imported)
        import ceiling

        sys.argv = ["ceiling.py", "--port", str(port)]
        ceiling.main()
        return
    import uvicorn

    from dragoman.server.protocol import LimitedConfig
    from dragoman.server.runner import settle_heap

    if target == "asgi":
        os.environ["CEILING_NGINX"] = upstream
        import ceiling

        app = ceiling.app
        lifespan = "off"
    else:
        from instr import bench_gateway

        from dragoman.server import operations

        os.environ["INSTR_FLUSH_EVERY"] = "0"
        gw, _ = bench_gateway(target, shape, upstream)
        operations.SAMPLE_EVERY = 3600.0
        gw.ops.ledger.interval = 3600.0  # (what is pending is written at shutdown)
        app = gw.app()
        lifespan = "on"
    # as server/runner.py's run() configures it for `dragoman serve`
    config = LimitedConfig(app, host="127.0.0.1", port=port, loop="uvloop",
                           log_level="warning", access_log=False, lifespan=lifespan)
    settle_heap()
    sock = config.bind_socket()
    sock.listen(config.backlog)
    uvicorn.Server(config).run(sockets=[sock])


def _request(target: str, shape: str, port: int) -> bytes:
    """The bench's request as wrk sends it (bench/post.lua): the relay and the raw ASGI
    ceiling pick the upstream by path, dragoman by the model."""
    _, body = chat_request(shape != "", "bench")
    path = "/v1/chat/completions"
    if target in ("relay", "asgi"):
        path = _PREFIX[shape] + "/chat/completions"
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n"
            b"Content-Type: application/json\r\nAuthorization: Bearer bench\r\n\r\n"
            % (path.encode(), port, len(body))) + body


class _Reader:
    """Reads HTTP/1.1 answers off a socket: a Content-Length or a chunked body."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def _until(self, sep: bytes) -> bytes:
        while (i := self.buf.find(sep)) < 0:
            self._fill()
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def answer(self) -> tuple[bytes, bytes]:
        """One answer: its head and its body (chunked: de-chunked)."""
        head = self._until(b"\r\n\r\n")
        fields = head.lower().split(b"\r\n")
        length = next((int(f.split(b":", 1)[1]) for f in fields
                       if f.startswith(b"content-length:")), None)
        if length is not None:
            return head, self._take(length)
        assert b"transfer-encoding: chunked" in fields, head
        body = []
        while size := int(self._until(b"\r\n").split(b";")[0], 16):
            body.append(self._take(size))
            self._take(2)
        self._until(b"\r\n")  # (no trailers)
        return head, b"".join(body)


def _connect(port: int, proc: subprocess.Popen[str], timeout: float = 600) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n"
                                   + proc.communicate()[1][-2000:]) from None
            time.sleep(0.2)


def _count(target: str, n: int, shape: str, upstream: str) -> int:
    """Instructions of a server process that answers ``n`` requests."""
    return instructions(_run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"],
                             target, n, shape, upstream))


def _syscalls(target: str, n: int, shape: str, upstream: str) -> dict[str, int]:
    """System calls, by name, of a server process that answers ``n`` requests."""
    with tempfile.NamedTemporaryFile(prefix="strace-", suffix=".txt") as out:
        _run(["strace", "-c", "-f", "-o", out.name], target, n, shape, upstream)
        table = Path(out.name).read_text()
    calls: dict[str, int] = {}
    for line in table.splitlines():
        # "% time  seconds  usecs/call  calls  [errors]  syscall" rows
        fields = line.split()
        if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
            calls[fields[-1]] = int(fields[3])
    return calls


def _run(prefix: list[str], target: str, n: int, shape: str, upstream: str) -> str:
    """Serve ``target`` under ``prefix`` (valgrind or strace), send it ``n`` requests, stop
    it with SIGTERM; its standard error."""
    from procs import free_port

    port = free_port()
    cmd = [*prefix, sys.executable, __file__, "--serve", target, "--port", str(port),
           "--shape", shape, "--upstream", upstream]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        request = _request(target, shape, port)
        with _connect(port, proc) as sock:
            reader = _Reader(sock)
            for _ in range(n):
                sock.sendall(request)
                head, body = reader.answer()
                if not head.startswith(b"HTTP/1.1 200 ") or not body:
                    raise RuntimeError(f"{target}: {head!r} {body[:300]!r}")
        # (strace runs the server as its child: the signal goes to the server)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        server = int(children.read_text().split()[0]) if prefix[0] == "strace" else proc.pid
        os.kill(server, signal.SIGTERM)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default="relay,pass,translated",
                    help="relay, pass, translated, asgi (see above)")
    ap.add_argument("--shapes", default="whole,stream,long", help="whole, stream, long")
    ap.add_argument("--requests", default="100,400", help="the short and the long run's "
                    "request counts")
    ap.add_argument("--syscalls", action="store_true", help="system calls per request "
                    "(strace -c -f) instead of instructions")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--shape", default="", help=argparse.SUPPRESS)
    ap.add_argument("--upstream", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:  # (in the valgrind child)
        _serve(args.serve, args.port, args.shape, args.upstream)
        return
    tool = "strace" if args.syscalls else "valgrind"
    if shutil.which(tool) is None:
        sys.exit(f"{tool} is not installed (apt-get install {tool})")
    from targets import upstreams

    n_short, n_long = (int(n) for n in args.requests.split(","))
    targets = args.targets.split(",")
    with tempfile.TemporaryDirectory() as tmp, upstreams(Path(tmp), "0") as ups:
        for shape in args.shapes.split(","):
            if args.syscalls:
                _print_syscalls(targets, n_short, n_long, SHAPES[shape], ups.nginx_base)
                continue
            per = {}
            for target in targets:
                short = _count(target, n_short, SHAPES[shape], ups.nginx_base)
                long = _count(target, n_long, SHAPES[shape], ups.nginx_base)
                per[target] = (long - short) / (n_long - n_short)
                ratio = f"  {per[target] / per['relay']:.2f}x the relay" \
                    if "relay" in per and target != "relay" else ""
                print(f"{target:>10} {shape:>6}: {per[target] / 1000:8.1f}k instructions "
                      f"per request{ratio}", flush=True)


def _print_syscalls(targets: list[str], n_short: int, n_long: int, shape: str,
                    upstream: str) -> None:
    """System calls per extra request, by name, one column per target."""
    per: dict[str, dict[str, float]] = {}
    for target in targets:
        short = _syscalls(target, n_short, shape, upstream)
        long = _syscalls(target, n_long, shape, upstream)
        per[target] = {name: (long.get(name, 0) - short.get(name, 0)) / (n_long - n_short)
                       for name in long.keys() | short.keys()}
    names = sorted({name for calls in per.values() for name, k in calls.items()
                    if abs(k) >= 0.05}, key=lambda name: -max(c.get(name, 0) for c in per.values()))
    print(f"{shape or 'whole':>14}" + "".join(f"{t:>12}" for t in targets), flush=True)
    for name in [*names, "total"]:
        cells = [sum(c.values()) if name == "total" else c.get(name, 0.0)
                 for c in per.values()]
        print(f"{name:>14}" + "".join(f"{k:12.2f}" for k in cells), flush=True)


if __name__ == "__main__":
    main()
