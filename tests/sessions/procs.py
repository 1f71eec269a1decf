"""``dragoman serve`` processes the sessions tests can kill with SIGKILL (the server and
its worker processes, as one process group) and restart on the same database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.gateway_proc import free_port, wait_http


class GatewayProcess:
    def __init__(self, config: dict[str, Any], tmp: Path, *, workers: int = 1,
                 name: str = "gw") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = tmp / f"{name}-{self.port}.yaml"
        cfg.write_text(yaml.safe_dump(config))
        self._log = open(tmp / f"{name}-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dragoman.cli", "serve", "--config", str(cfg),
             "--port", str(self.port), "--host", "127.0.0.1", "--workers", str(workers)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "XDG_DATA_HOME": str(tmp / "xdg-data")})
        try:
            wait_http(self.url + "/healthz", proc=self.proc)
        except BaseException:
            self.kill9()
            raise

    def kill9(self) -> None:
        """SIGKILL the server and all its workers at once: nothing gets to clean up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
