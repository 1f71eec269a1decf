"""Instructions per request: a deterministic measure for A/B-ing small changes.

    python bench/instr.py [--paths ceiling,pass,translated] [--stream | --long]

Timing on this VM moves 10-25 % between runs of the same code, so a change worth 3 % is
invisible in wrk numbers and even in ``bench/inproc.py``. Counting the instructions the
process executes is not: valgrind's callgrind (``apt-get install valgrind``) runs the
ASGI app in-process against nginx (a real socket, dragoman's real upstream client)
for a short and a long run, and the difference divided by the extra requests is what one
request costs, start-up and imports cancelled out. Repeat runs agree within ~0.5 %.
About a minute per path (callgrind is ~50x slower than native).

Instructions are not time (a syscall or a cache miss counts little), but for Python code
they track CPU time closely: the disconnect-watcher change measured 407k → 371k here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHORT, LONG = 200, 1200


class _Transport:
    """Just enough of an asyncio transport for a server protocol: writes are dropped."""

    def __init__(self) -> None:
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name)

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass


def _drive_protocol(kind: str, n: int) -> None:
    """Run inside valgrind: ``n`` keep-alive requests (the bench's request head and body,
    in one read) through a server protocol to the smallest ASGI app, so what is counted
    is the server's own work per request: ``httptools`` (uvicorn's), ``guarded``
    (dragoman's, ``dragoman.server.protocol``) or ``h11`` (uvicorn's pure-Python one)."""
    import uvicorn
    import uvloop
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    from dragoman.server.protocol import GuardedHttpToolsProtocol, LimitedConfig

    answered: list[asyncio.Future[None]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})
        answered[0].set_result(None)

    protocol: Any = {"httptools": HttpToolsProtocol, "h11": H11Protocol,
                     "guarded": GuardedHttpToolsProtocol}[kind]
    options = {"lifespan": "off", "log_level": "warning", "access_log": False}
    config = LimitedConfig(app, **options) if kind == "guarded" \
        else uvicorn.Config(app, http=protocol, **options)
    config.load()
    body = json.dumps({"model": "m", "stream": False,
                       "messages": [{"role": "user", "content": "Say hello"}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
               b"User-Agent: wrk\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer bench\r\nContent-Length: %d\r\n\r\n"
               % len(body)) + body

    async def run() -> None:
        loop = asyncio.get_running_loop()
        conn = protocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        conn.connection_made(_Transport())
        for _ in range(n):
            answered[:] = [loop.create_future()]
            conn.data_received(request)
            await answered[0]
        conn.connection_lost(None)

    uvloop.run(run())


#: upstream path prefix per stream shape (see --stream, --long)
_PREFIX = {"": "/v1", "stream": "/stream/v1", "long": "/long/v1"}


def chat_request(stream: bool, key: str) -> tuple[dict[str, Any], bytes]:
    """The bench's request (Chat Completions, one user message to model ``m``) as an ASGI
    scope and its body."""
    body = json.dumps({"model": "m", "stream": stream,
                       "messages": [{"role": "user", "content": "Say hello"}]}).encode()
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
             "client": ("127.0.0.1", 40000),
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()),
                         (b"authorization", b"Bearer " + key.encode())]}
    return scope, body


def bench_gateway(path: str, stream: str, upstream: str) -> tuple[Any, int]:
    """The gateway ``_drive`` counts (model ``m`` on nginx, ``pass`` or translated), its
    wall-clock timers set as the options in the environment say, and how many requests
    stand for one second of the once-a-second work (0: by the clock)."""
    from dragoman.config import build_gateway, parse_config

    model = {"name": "m", "provider": "openai", "model": "static-model",
             "base_url": upstream + _PREFIX[stream], "api_key": "sk-up",
             "passthrough": path == "pass"}
    server: dict[str, Any] = {"api_keys": ["bench"]}
    if os.environ.get("INSTR_ADMIN"):  # --admin: metrics and the ledger on
        server["admin_keys"] = ["bench-admin"]
    store = os.environ.get("INSTR_STORE", "memory")
    # (only what differs from the defaults: --src may count a gateway from before these)
    sessions: dict[str, Any] = {"backend": store}
    if os.environ.get("INSTR_NO_LEDGER"):
        sessions["usage_ledger"] = False
    if os.environ.get("INSTR_LEDGER_WRITER", "process") != "process":
        sessions["ledger_writer"] = os.environ["INSTR_LEDGER_WRITER"]
    if store == "sqlite":  # (a fresh file per run)
        sessions["path"] = tempfile.mkdtemp(prefix="instr-") + "/sessions.db"
    gw = build_gateway(parse_config({"server": server, "models": [model],
                                     "sessions": sessions}))
    # (--src: a gateway from before the operator's side has no such work)
    flush_every = int(os.environ.get("INSTR_FLUSH_EVERY", "0")) if hasattr(gw, "ops") else 0
    if flush_every:
        # The once-a-second work (metrics flush, ledger batch, the sampler) driven by
        # request count, not by the clock: under callgrind a second holds ~50x fewer
        # requests than in reality, so a wall-clock timer would charge each request ~50x
        # its share. The same in every mode (the sampler runs with everything off too).
        from dragoman.server import operations

        operations.SAMPLE_EVERY = 3600.0
        gw.ops.ledger.interval = 3600.0
    if not os.environ.get("INSTR_WATCH"):
        # The disconnect watcher starts for a request still running after one to two
        # 20 ms sweeps (server/disconnect.py). A bench request is done in well under a
        # millisecond, so it never has one; under callgrind (~50x slower) on a loaded
        # machine some did, and each watcher is a task: counts moved by several percent
        # with the load. ``--watch`` keeps the wall-clock sweep.
        from dragoman.server import disconnect

        disconnect.WATCH_AFTER = 3600.0
    return gw, flush_every


def _drive(path: str, n: int, stream: str, upstream: str) -> None:
    """Run inside valgrind: ``n`` requests through the app, one after another."""
    if path.startswith("proto-"):
        _drive_protocol(path.removeprefix("proto-"), n)
        return
    import uvloop

    try:
        from dragoman.server.runner import settle_heap
    except ImportError:  # (--src: a commit from before the server settled its heap)
        def settle_heap() -> None:
            pass

    gw, flush_every = bench_gateway(path, stream, upstream)
    app: Any = gw.app()
    scope, body = chat_request(bool(stream), "bench")

    if path == "ceiling":  # the raw ASGI ceiling of bench/ceiling.py, same client
        os.environ["CEILING_NGINX"] = upstream
        sys.path.insert(0, str(HERE))
        import ceiling

        app = ceiling.app
        if stream:  # (the ceiling picks the upstream by path, not by the body)
            scope["path"] = _PREFIX[stream] + "/chat/completions"

    async def run() -> None:
        forever = asyncio.Event()

        async def one() -> None:
            sent = False
            status = []

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await forever.wait()
                raise AssertionError

            async def send(m: dict[str, Any]) -> None:
                if m["type"] == "http.response.start":
                    status.append(m["status"])

            await app(scope, receive, send)
            assert status == [200], status

        await gw.open()
        settle_heap()
        for i in range(1, n + 1):
            await one()
            if flush_every and i % flush_every == 0:  # "one second" of this many requests
                gw.ops.refresh()
                await gw.ops.ledger.flush()
        await gw.aclose()

    uvloop.run(run())


def _count(path: str, n: int, stream: str, upstream: str) -> int:
    # INSTR_KEEP=DIR keeps callgrind's profile of each run there (for callgrind_annotate)
    keep = os.environ.get("INSTR_KEEP")
    out_file = f"{keep}/{path}-{stream or 'whole'}-{n}.out" if keep else "/dev/null"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", sys.executable,
           __file__, "--drive", path, "--n", str(n), "--upstream", upstream,
           "--shape", stream]
    # A fixed hash seed: with a random one, set and dict layouts (and so the counts) move
    # by a few thousand instructions between identical runs (bench/ledger_rows.py measured).
    env = {"PYTHONHASHSEED": "0", **os.environ,
           "PYTHONPATH": os.environ.get("INSTR_SRC", str(HERE.parent / "src"))}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stderr
    return instructions(out)


def instructions(valgrind_stderr: str) -> int:
    """The instruction count callgrind reports at exit."""
    m = re.search(r"I\s+refs:\s+([\d,]+)", valgrind_stderr)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n"
                           f"{valgrind_stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", default="ceiling,pass,translated",
                    help="ceiling: bench/ceiling.py's raw ASGI app (same HTTP client); "
                    "pass/translated: dragoman's two paths; proto-httptools, "
                    "proto-guarded, proto-h11: a server protocol alone (no upstream)")
    ap.add_argument("--stream", action="store_true", help="streamed requests (nginx's "
                    "four-frame stream) instead of whole ones")
    ap.add_argument("--long", action="store_true", help="also streams of nginx's long "
                    "stream (scenario s's, STREAM_CHUNKS in bench/targets.py), and the cost "
                    "per chunk: the difference to the four-frame stream over its extra chunks")
    ap.add_argument("--admin", action="store_true", help="with server.admin_keys, so the "
                    "metrics and the usage ledger are kept (without: neither)")
    ap.add_argument("--no-ledger", action="store_true", help="sessions.usage_ledger: "
                    "false (with --admin: the metrics alone)")
    ap.add_argument("--flush-every", type=int, default=100, metavar="N",
                    help="run the once-a-second sampler, metrics flush and ledger "
                    "write every N requests instead of by the clock (0: by the clock, "
                    "which under callgrind charges each request ~50x its real share); "
                    "N is the request rate modelled, per second")
    ap.add_argument("--store", default="memory", choices=("memory", "sqlite"),
                    help="session store (and so ledger) backend")
    ap.add_argument("--ledger-writer", default="process", choices=("process", "thread"),
                    help="SQLite: the ledger written by a child process (not counted: "
                    "valgrind does not follow it) or a thread of the gateway (counted)")
    ap.add_argument("--watch", action="store_true", help="keep the disconnect watcher's "
                    "20 ms wall-clock sweep (load-dependent counts: as measured before "
                    "session 6)")
    ap.add_argument("--requests", default=f"{SHORT},{LONG}", help="the short and the long "
                    "run's request counts (fewer: faster, a little less exact)")
    ap.add_argument("--src", metavar="CHECKOUT", help="count the gateway of this checkout "
                    "(e.g. a git worktree of an earlier commit) with this harness")
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--upstream", help=argparse.SUPPRESS)
    ap.add_argument("--shape", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:  # (in the valgrind child: the options came in the environment)
        _drive(args.drive, args.n, args.shape, args.upstream)
        return
    # Read by _drive in the valgrind child. (Set here, after the child's return: set
    # before it, the child's own defaults overwrote them, so `--store sqlite` counted the
    # memory store until 2026-12-07.)
    for var, on in (("INSTR_ADMIN", args.admin), ("INSTR_NO_LEDGER", args.no_ledger),
                    ("INSTR_WATCH", args.watch)):
        if on:
            os.environ[var] = "1"
    os.environ["INSTR_FLUSH_EVERY"] = str(args.flush_every)
    os.environ["INSTR_STORE"] = args.store
    os.environ["INSTR_LEDGER_WRITER"] = args.ledger_writer
    if args.src:
        os.environ["INSTR_SRC"] = str(Path(args.src).resolve() / "src")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(HERE))
    from targets import STREAM_CHUNKS, upstreams

    shapes = ["stream", "long"] if args.long else ["stream" if args.stream else ""]
    n_short, n_long = (int(n) for n in args.requests.split(","))
    with tempfile.TemporaryDirectory() as tmp, upstreams(Path(tmp), "0") as ups:
        for path in args.paths.split(","):
            per = {}
            for shape in shapes:
                short = _count(path, n_short, shape, ups.nginx_base)
                long = _count(path, n_long, shape, ups.nginx_base)
                per[shape] = (long - short) / (n_long - n_short)
                kind = {"": "whole", "stream": "stream", "long": f"{STREAM_CHUNKS}-chunk"}[shape]
                print(f"{path:>10} {kind}: {per[shape] / 1000:8.1f}k instructions per request",
                      flush=True)
            if args.long:
                # nginx's four-frame stream has one content chunk, the long one STREAM_CHUNKS
                chunk = (per["long"] - per["stream"]) / (STREAM_CHUNKS - 1)
                print(f"{path:>10} per chunk: {chunk / 1000:8.2f}k instructions", flush=True)


if __name__ == "__main__":
    main()
