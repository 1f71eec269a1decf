"""dragoman under each ASGI server, pass-through vs translated, with a 400-chunk stream.

    python bench/servers.py [--seconds 5] [--servers granian,uvicorn]

(This was bench/run.py before the scenario harness replaced it; it is kept because the
server choice and the coalesced-writes numbers in bench/README.md come from it.)

Measures, for each ASGI server, and for each of dragoman's two paths for a client of the
upstream's own dialect (Chat client → ``openai`` provider): ``pass-through`` (the default
fast path: bytes forwarded, usage scanned) and ``translated`` (the same model with
``passthrough: false``: parsed to the neutral model and rendered back):
- non-stream request: p50/p99 with one connection (wrk -c1) and req/s at 64 connections,
  direct to nginx and through dragoman; "added" = through - direct;
- stream: time to first ``data:`` byte (TTFT) and to ``[DONE]``, sequential requests;
- long stream: time to ``[DONE]`` of a 400-chunk stream (per-chunk cost shows here).
Load generator and upstream are pinned to CPU 0, dragoman to CPU 1 (as in
bench/reference-measurements.md). Needs nginx and wrk (apt: nginx-light wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHAT_BODY = {"model": "bench-chat", "messages": [{"role": "user", "content": "Say hello"}]}
LONG_CHUNKS = 400
PATHS = {"translated": "-slow", "pass-through": ""}  # model name suffix per path


def long_stream_body(n: int = LONG_CHUNKS) -> str:
    """An OpenAI Chat stream of ``n`` content chunks, then finish, usage and [DONE]."""
    def chunk(delta: str, finish: str | None = None, usage: str = "") -> str:
        fin = "null" if finish is None else f'"{finish}"'
        return ('data: {"id":"chatcmpl-long","object":"chat.completion.chunk",'
                '"created":1700000000,"model":"static-model","choices":[{"index":0,'
                f'"delta":{delta},"finish_reason":{fin}}}]{usage}}}\n\n')
    out = [chunk('{"role":"assistant","content":""}')]
    out += [chunk(f'{{"content":"word{i} "}}') for i in range(n)]
    out.append(chunk("{}", "stop"))
    out.append('data: {"id":"chatcmpl-long","object":"chat.completion.chunk",'
               '"created":1700000000,"model":"static-model","choices":[],'
               f'"usage":{{"prompt_tokens":5,"completion_tokens":{n},'
               f'"total_tokens":{n + 5}}}}}\n\n')
    out.append("data: [DONE]\n\n")
    return "".join(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"not ready: {url}")


def start_nginx(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    (tmp / "tmp").mkdir(parents=True, exist_ok=True)
    (tmp / "long.sse").write_text(long_stream_body())
    os.chmod(tmp, 0o755)  # nginx workers (user nobody) read the file
    os.chmod(tmp / "long.sse", 0o644)
    conf = (HERE / "nginx.conf").read_text().replace("PORT", str(port))
    (tmp / "nginx.conf").write_text(conf.replace("LONGFILE", str(tmp / "long.sse")))
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-p", str(tmp), "-c", "nginx.conf"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(f"http://127.0.0.1:{port}/healthz")
    return p


def start_dragoman(tmp: Path, upstream: int, server: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = tmp / f"bench-{server}.yaml"
    models = []
    for suffix, fast in (("", True), ("-slow", False)):
        for name, prefix in (("bench-chat", ""), ("bench-stream", "/stream"),
                             ("bench-long", "/long")):
            models.append({"name": name + suffix, "provider": "openai",
                           "model": "static-model", "passthrough": fast,
                           "base_url": f"http://127.0.0.1:{upstream}{prefix}/v1",
                           "api_key": "sk-up"})
    cfg.write_text(json.dumps({"server": {"api_keys": ["sk-bench"]}, "models": models}))
    p = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "dragoman.cli", "serve",
                          "--config", str(cfg), "--port", str(port), "--server", server],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(f"http://127.0.0.1:{port}/healthz")
    return p, port


def wrk(url: str, body_file: Path, conns: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["taskset", "-c", "0", "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
         "-s", str(HERE / "post.lua"), url],
        env={**os.environ, "BODY_FILE": str(body_file)}, capture_output=True, text=True,
        check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v = float(m.group(1))
        return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed responses\n{out}")
    return {"p50": ms("50%"), "p99": ms("99%"), "rps": float(rps.group(1)) if rps else 0.0}


def stream_timings(port: int, path: str, model: str, n: int) -> tuple[float, float]:
    """Median ms to the first ``data:`` byte and to the end, over n sequential streams on
    one keep-alive connection (raw socket: no client library in the measurement)."""
    body = json.dumps({**CHAT_BODY, "model": model, "stream": True}).encode()
    req = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Authorization: Bearer sk-bench\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    ttft, total = [], []
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            t0 = time.perf_counter()
            s.sendall(req)
            buf = b""
            first = None
            while b"[DONE]" not in buf or not buf.endswith((b"\r\n\r\n", b"\n\n")):
                chunk = s.recv(65536)
                if not chunk:
                    raise SystemExit("connection closed")
                buf += chunk
                if first is None and b"data:" in buf:
                    first = time.perf_counter()
            t1 = time.perf_counter()
            # Chunked responses end with a zero-length chunk after [DONE].
            if b"transfer-encoding: chunked" in buf.lower() and not buf.endswith(b"0\r\n\r\n"):
                while not buf.endswith(b"0\r\n\r\n"):
                    buf += s.recv(65536)
                t1 = time.perf_counter()
            ttft.append(((first or t1) - t0) * 1000)
            total.append((t1 - t0) * 1000)
    return statistics.median(ttft), statistics.median(total)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--servers", default="granian,uvicorn")
    ap.add_argument("--streams", type=int, default=300)
    args = ap.parse_args()
    for tool in ("nginx", "wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install nginx-light wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="dragoman-bench-"))
    body_file = tmp / "chat.json"
    body_file.write_text(json.dumps(CHAT_BODY))
    slow_body_file = tmp / "chat-slow.json"
    slow_body_file.write_text(json.dumps({**CHAT_BODY, "model": "bench-chat-slow"}))
    up = free_port()
    nginx = start_nginx(tmp, up)
    rows = []
    try:
        direct = wrk(f"http://127.0.0.1:{up}/v1/chat/completions", body_file, 1, args.seconds)
        direct64 = wrk(f"http://127.0.0.1:{up}/v1/chat/completions", body_file, 64, args.seconds)
        d_ttft, d_total = stream_timings(up, "/stream/v1/chat/completions", "x", args.streams)
        _, d_long = stream_timings(up, "/long/v1/chat/completions", "x", args.streams // 3)
        rows.append(("direct to nginx", direct, direct64, d_ttft, d_total, d_long))
        for server in args.servers.split(","):
            proc, port = start_dragoman(tmp, up, server)
            try:
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                for suffix in PATHS.values():  # warm both paths up before measuring either
                    wrk(url, slow_body_file if suffix else body_file, 1, 1)
                    stream_timings(port, "/v1/chat/completions", "bench-long" + suffix, 20)
                for path, suffix in PATHS.items():
                    bf = slow_body_file if suffix else body_file
                    seq = wrk(url, bf, 1, args.seconds)
                    par = wrk(url, bf, 64, args.seconds)
                    ttft, total = stream_timings(port, "/v1/chat/completions",
                                                 "bench-stream" + suffix, args.streams)
                    _, long_total = stream_timings(port, "/v1/chat/completions",
                                                   "bench-long" + suffix, args.streams // 3)
                    rows.append((f"dragoman ({server}, {path})", seq, par, ttft, total,
                                 long_total))
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    base = rows[0]
    print("| target | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s @64 | "
          f"stream TTFT ms | added TTFT ms | stream total ms | {LONG_CHUNKS}-chunk stream ms |"
          " added long ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, seq, par, ttft, total, long_total in rows:
        print(f"| {name} | {seq['p50']:.3f} | {seq['p99']:.3f} | "
              f"{seq['p50'] - base[1]['p50']:.3f} | {seq['p99'] - base[1]['p99']:.3f} | "
              f"{par['rps']:.0f} | {ttft:.3f} | {ttft - base[3]:.3f} | {total:.3f} | "
              f"{long_total:.3f} | {long_total - base[5]:.3f} |")


if __name__ == "__main__":
    main()
