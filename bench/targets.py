"""What the harness measures: the upstreams (nginx with fixed bodies, the paced SSE server)
and the targets in front of them (direct, the two ceilings, dragoman on either path,
LiteLLM proxy), each started pinned, on its own port, and stopped with its workers.

Every target answers the same client request; only the URL path and the model name
differ. The paced upstream reads its pace from the model name (``paced-20x10``: 20
chunks, 10 ms apart), so dragoman and LiteLLM give each pace an alias of the same name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from procs import BENCH_KEY, free_port, spawn, stop, wait_http
from servers import long_stream_body

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STATIC_MODEL = "static-model"
#: s: the stream every target relays at saturation: nginx sends a Chat stream of this many
#: content chunks (plus role, finish, usage and [DONE]: 34 frames, ~6 KB) in one write.
STREAM_CHUNKS = 30
STREAM_MODEL = f"stream-{STREAM_CHUNKS}"
STREAM_PATH = "/long/v1/chat/completions"  # nginx's file-backed stream location
LITELLM_VERSION = "1.106.0"  # bench-notes measured 1.106; later 1.106.x want a newer certifi
LITELLM_VENV = HERE / ".venv-litellm"


@dataclass
class Upstreams:
    nginx: int
    paced: int

    @property
    def nginx_base(self) -> str:
        return f"http://127.0.0.1:{self.nginx}"

    @property
    def paced_base(self) -> str:
        return f"http://127.0.0.1:{self.paced}"


@dataclass
class Target:
    key: str  # JSON key
    name: str  # table label
    port: int
    pid: int | None  # the server whose process tree is measured (None: direct)
    kind: str  # direct | ceiling | dragoman | litellm
    model_suffix: str = ""
    paced_port: int | None = None  # direct only: the paced upstream is another server
    info: dict[str, str] = field(default_factory=dict)

    def endpoint(self, stream: bool, whole_stream: bool = False) -> tuple[int, str]:
        """(port, path) for a non-stream request to nginx, a stream from the paced
        upstream, or (``whole_stream``) nginx's stream of STREAM_CHUNKS chunks."""
        if whole_stream:
            return self.port, (STREAM_PATH if self.kind in ("direct", "ceiling")
                               else "/v1/chat/completions")
        if self.kind == "direct":
            if stream:
                assert self.paced_port is not None
                return self.paced_port, "/paced/v1/chat/completions"
            return self.port, "/v1/chat/completions"
        if self.kind == "ceiling" and stream:
            return self.port, "/paced/v1/chat/completions"
        return self.port, "/v1/chat/completions"

    def model(self, upstream_model: str) -> str:
        return upstream_model + self.model_suffix


def chat_body(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "Say hello"}]}


# --- upstreams -----------------------------------------------------------------------------


@contextmanager
def upstreams(tmp: Path, cpus: str) -> Iterator[Upstreams]:
    ups = Upstreams(nginx=free_port(), paced=free_port())
    ng = tmp / "nginx"
    (ng / "tmp").mkdir(parents=True, exist_ok=True)
    # nginx.conf's file-backed stream (scenario s, bench/instr.py --long); nginx's
    # workers (user nobody) must be able to read it.
    (ng / "long.sse").write_text(long_stream_body(STREAM_CHUNKS))
    for d in (tmp, ng):
        d.chmod(0o755)
    (ng / "long.sse").chmod(0o644)
    conf = (HERE / "nginx.conf").read_text().replace("PORT", str(ups.nginx))
    (ng / "nginx.conf").write_text(conf.replace("LONGFILE", str(ng / "long.sse")))
    procs = [spawn(["nginx", "-p", str(ng), "-c", "nginx.conf"], cpus, tmp / "nginx.log"),
             spawn([sys.executable, str(HERE / "paced_sse.py"), "--port", str(ups.paced)],
                   cpus, tmp / "paced.log")]
    try:
        wait_http(f"{ups.nginx_base}/healthz", procs[0])
        wait_http(f"{ups.paced_base}/healthz", procs[1])
        yield ups
    finally:
        for p in procs:
            stop(p)


def direct(ups: Upstreams) -> Target:
    return Target("direct", "direct to upstream", ups.nginx, None, "direct",
                  paced_port=ups.paced)


# --- targets -------------------------------------------------------------------------------


@contextmanager
def _serving(cmd: list[str], health: str, cpus: str, log: Path,
             env: dict[str, str] | None = None, timeout: float = 60.0
             ) -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn(cmd, cpus, log, env=env)
    try:
        try:
            wait_http(health, proc, timeout)
        except SystemExit as e:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SystemExit(f"{e}\n--- {log} ---\n{tail}") from None
        yield proc
    finally:
        stop(proc)


@contextmanager
def ceiling_asgi(ups: Upstreams, tmp: Path, cpus: str, workers: int) -> Iterator[Target]:
    port = free_port()
    env = {**os.environ, "CEILING_NGINX": ups.nginx_base, "CEILING_PACED": ups.paced_base}
    cmd = [sys.executable, "-m", "uvicorn", "ceiling:app", "--app-dir", str(HERE),
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
           "--no-access-log", "--lifespan", "off"]
    with _serving(cmd, f"http://127.0.0.1:{port}/healthz", cpus, tmp / "ceiling-asgi.log",
                  env) as proc:
        yield Target("ceiling_asgi", "ceiling: raw ASGI (uvicorn) + h1 client", port,
                     proc.pid, "ceiling")


@contextmanager
def ceiling_aiohttp(ups: Upstreams, tmp: Path, cpus: str, workers: int) -> Iterator[Target]:
    port = free_port()
    env = {**os.environ, "CEILING_NGINX": ups.nginx_base, "CEILING_PACED": ups.paced_base}
    cmd = [sys.executable, str(HERE / "ceiling.py"), "--port", str(port),
           "--workers", str(workers)]
    with _serving(cmd, f"http://127.0.0.1:{port}/healthz", cpus,
                  tmp / "ceiling-aiohttp.log", env) as proc:
        yield Target("ceiling_aiohttp", "ceiling: bare aiohttp relay", port, proc.pid,
                     "ceiling")


PATHS = {"pass": ("pass-through", ""), "translated": ("translated", "-slow")}


#: ``ops`` variants of the dragoman targets (issue 17): ``bare``, no admin keys and the
#: memory store (so neither metrics nor a usage ledger); ``metrics``, admin keys but no
#: ledger (``sessions.usage_ledger: false``), otherwise as bare; ``ledger``, SQLite and no
#: admin keys (the ledger alone: the default configuration, as unset); ``on``, admin keys
#: and SQLite (both); ``control``, a second gateway configured exactly as ``bare``: its
#: ratio to bare is the harness's own resolution on the machine of the day (an A/A test);
#: ``on_thread`` and ``on_memory``, both with the ledger written from a thread of the
#: gateway, or kept by the memory store. Unset: as in the tables (SQLite, so the ledger, no
#: metrics).
_ADMIN = {"admin_keys": ["bench-admin-key"]}
OPS = {"bare": ({}, {"backend": "memory"}),
       "control": ({}, {"backend": "memory"}),
       "metrics": (_ADMIN, {"backend": "memory", "usage_ledger": False}),
       "ledger": ({}, None),
       "on": (_ADMIN, None),
       # the ledger alone, its writer process at this priority (issue 17, `h17-sched`)
       "ledger_idle": ({}, {"ledger_priority": "idle"}),
       "ledger_nice": ({}, {"ledger_priority": "nice"}),
       # both, the ledger written from a thread of the gateway (no writer process)
       "on_thread": (_ADMIN, {"ledger_writer": "thread"}),
       # both, the ledger kept by the memory store (the rows built and batched, no writer)
       "on_memory": (_ADMIN, {"backend": "memory"})}


def _dragoman_config(ups: Upstreams, paces: list[str], tmp: Path, ops: str = "") -> Path:
    models = []
    for suffix, fast in (("", True), ("-slow", False)):
        models.append({"name": STATIC_MODEL + suffix, "provider": "openai",
                       "model": STATIC_MODEL, "passthrough": fast,
                       "base_url": f"{ups.nginx_base}/v1", "api_key": "sk-up"})
        models.append({"name": STREAM_MODEL + suffix, "provider": "openai",
                       "model": STATIC_MODEL, "passthrough": fast,
                       "base_url": f"{ups.nginx_base}/long/v1", "api_key": "sk-up"})
        for pace in paces:
            models.append({"name": pace + suffix, "provider": "openai", "model": pace,
                           "passthrough": fast, "base_url": f"{ups.paced_base}/paced/v1",
                           "api_key": "sk-up"})
    server_extra, sessions = OPS.get(ops, ({}, None))
    cfg = tmp / f"dragoman{ops}.yaml"
    if sessions is None or "backend" not in sessions:  # SQLite, with these settings
        sessions = {"backend": "sqlite", "path": str(tmp / f"sessions{ops}.db"),
                    **(sessions or {})}
    cfg.write_text(json.dumps({
        "server": {"api_keys": [BENCH_KEY], **server_extra},
        "sessions": sessions,
        "models": models}))
    return cfg


@contextmanager
def dragoman(ups: Upstreams, tmp: Path, cpus: str, workers: int, path: str,
             paces: list[str], server: str = "uvicorn", ops: str = "",
             src: Path | None = None) -> Iterator[Target]:
    """``dragoman serve --workers N``; ``path`` is ``pass`` (same-dialect fast path) or
    ``translated`` (the same upstream with ``passthrough: false``); ``ops``: see ``OPS``.
    ``src``: another checkout's ``src`` served instead of this one's (target ``…_then``,
    configured as ``bare``: the gateway of an earlier commit, the "today" a budget was set
    against)."""
    label, suffix = PATHS[path]
    port = free_port()
    cfg = _dragoman_config(ups, paces, tmp, "bare" if src is not None else ops)
    cmd = [sys.executable, "-m", "dragoman.cli", "serve", "--config", str(cfg),
           "--port", str(port), "--workers", str(workers), "--server", server]
    env = {**os.environ, "PYTHONPATH": str(src or ROOT / "src")}
    key, name = f"dragoman_{path}", f"dragoman ({label})"
    if src is not None:
        key, name = f"{key}_then", f"dragoman ({label}, as of {src.parent.name})"
    elif ops:
        key, name = f"{key}_{ops}", f"dragoman ({label}, operations {ops})"
    with _serving(cmd, f"http://127.0.0.1:{port}/healthz", cpus,
                  tmp / f"{key}.log", env) as proc:
        yield Target(key, name, port, proc.pid, "dragoman", model_suffix=suffix,
                     info={"server": server})


# --- LiteLLM -------------------------------------------------------------------------------


def ensure_litellm(version: str = LITELLM_VERSION) -> Path:
    """bench/.venv-litellm with ``litellm[proxy]==version`` (created on first use)."""
    py = LITELLM_VENV / "bin" / "python"
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        have = subprocess.run([str(py), "-c", "import importlib.metadata as m;"
                               "print(m.version('litellm'))"],
                              capture_output=True, text=True, check=False).stdout.strip()
        if have == version:
            return exe
    if not py.exists():
        print(f"creating {LITELLM_VENV} …", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    print(f"installing litellm[proxy]=={version} into {LITELLM_VENV} (a few minutes) …",
          file=sys.stderr, flush=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"litellm[proxy]=={version}"],
                   check=True, timeout=1800)
    return exe


def _litellm_config(ups: Upstreams, paces: list[str], tmp: Path) -> Path:
    models = [{"model_name": STATIC_MODEL,
               "litellm_params": {"model": f"openai/{STATIC_MODEL}",
                                  "api_base": f"{ups.nginx_base}/v1", "api_key": "sk-up"}}]
    models.append({"model_name": STREAM_MODEL,
                   "litellm_params": {"model": f"openai/{STATIC_MODEL}",
                                      "api_base": f"{ups.nginx_base}/long/v1",
                                      "api_key": "sk-up"}})
    models += [{"model_name": pace,
                "litellm_params": {"model": f"openai/{pace}",
                                   "api_base": f"{ups.paced_base}/paced/v1",
                                   "api_key": "sk-up"}} for pace in paces]
    cfg = tmp / "litellm.yaml"
    # JSON is YAML. A master key (LiteLLM refuses to start without one; dragoman checks a
    # key too) but no database: no spend or key lookups; telemetry and request logging
    # off: nothing but the proxy path is measured.
    cfg.write_text(json.dumps({
        "model_list": models,
        "litellm_settings": {"telemetry": False, "turn_off_message_logging": True,
                             "drop_params": True, "set_verbose": False,
                             "json_logs": False, "request_timeout": 600},
        "general_settings": {"master_key": BENCH_KEY, "disable_spend_logs": True,
                             "disable_error_logs": True,
                             "disable_adding_master_key_hash_to_db": True,
                             "background_health_checks": False},
    }))
    return cfg


@contextmanager
def litellm(ups: Upstreams, tmp: Path, cpus: str, workers: int,
            paces: list[str]) -> Iterator[Target]:
    exe = ensure_litellm()
    port = free_port()
    cfg = _litellm_config(ups, paces, tmp)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch at start-up
                "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR",
                "DISABLE_SCHEMA_UPDATE": "True", "NO_DOCS": "True"})
    cmd = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
           "--num_workers", str(workers)]
    with _serving(cmd, f"http://127.0.0.1:{port}/health/liveliness", cpus,
                  tmp / "litellm.log", env, timeout=180) as proc:
        yield Target("litellm", f"LiteLLM proxy {LITELLM_VERSION}", port, proc.pid,
                     "litellm", info={"version": LITELLM_VERSION})
