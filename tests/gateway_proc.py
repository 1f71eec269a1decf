"""Start ``dragoman serve`` as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} not ready")


@contextmanager
def run_gateway(config: dict[str, Any], tmp: Path, *, server: str | None = None,
                env: dict[str, str] | None = None, args: list[str] | None = None,
                ready_timeout: float = 60.0) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) of a running gateway; ``args`` are
    extra ``dragoman serve`` arguments. Its output goes to ``log_path(tmp, base)``."""
    port = free_port()
    cfg = tmp / f"dragoman-{port}.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "dragoman.cli", "serve", "--config", str(cfg),
           "--port", str(port), "--host", "127.0.0.1"]
    if server:
        cmd += ["--server", server]
    cmd += args or []
    log = open(tmp / f"dragoman-{port}.log", "wb")  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            # The default session database goes under tmp, not ~/.local.
                            env={**os.environ, "XDG_DATA_HOME": str(tmp / "xdg-data"),
                                 **(env or {})})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", ready_timeout, proc=proc)
        yield base
    finally:
        stop_process(proc)
        log.close()


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Ask a server process to stop (SIGTERM), and kill it if it has not within ``grace``
    seconds; returns once it has exited."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_path(tmp: Path, base: str) -> Path:
    """Where ``run_gateway(config, tmp)`` serving at ``base`` writes its output."""
    return tmp / f"dragoman-{base.rsplit(':', 1)[1]}.log"
