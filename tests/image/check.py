"""``python -m tests.image.check IMAGE``: start the built image against a private
PostgreSQL, check what an operator relies on, stop it (``scripts/test-image`` runs this).

The container shares the host's network (no registry, so no PostgreSQL image: the
database is the tests' own private server on loopback) and gets its config from a
read-only mount, as the compose file and the Kubernetes manifests give it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.gateway_proc import free_port, wait_http
from tests.infra.postgres import running_postgres

KEY = "sk-image-test"


def _post(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          "authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _wait_healthy(name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = _docker("inspect", "-f", "{{.State.Health.Status}}", name)
        if status == "healthy":
            return
        time.sleep(1)
    raise AssertionError(f"container never became healthy (last: {status})")


def check(image: str) -> None:
    with running_postgres() as dsn, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config = {"server": {"api_keys": [KEY]},
                  "sessions": {"backend": "postgres", "dsn": "${DATABASE_URL}"}}
        cfg = Path(tmp) / "dragoman.yaml"
        cfg.write_text(yaml.safe_dump(config))
        cfg.chmod(0o644)
        name = f"dragoman-image-check-{port}"
        _docker("run", "-d", "--name", name, "--network", "host",
                "-e", f"DATABASE_URL={dsn}",
                "-e", f"DRAGOMAN_HEALTH_URL=http://127.0.0.1:{port}/healthz",
                "-v", f"{cfg}:/etc/dragoman/dragoman.yaml:ro", image,
                "--config", "/etc/dragoman/dragoman.yaml", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "2")
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/healthz", timeout=120)  # two workers, a loaded machine
            with urllib.request.urlopen(base + "/readyz", timeout=10) as r:
                ready = json.loads(r.read())
            assert ready["status"] == "ready" and ready["checks"]["sessions"] == "ok", ready
            chat = _post(base, "/v1/chat/completions", {
                "model": "dragoman/echo",
                "messages": [{"role": "user", "content": "hello from the image"}]})
            text = chat["choices"][0]["message"]["content"]
            assert "hello from the image" in text, chat
            # A stored turn goes to PostgreSQL, and a chained one reads it back.
            first = _post(base, "/v1/responses", {"model": "dragoman/echo", "store": True,
                                                  "input": "remember the image"})
            second = _post(base, "/v1/responses", {"model": "dragoman/echo",
                                                   "previous_response_id": first["id"],
                                                   "input": "and now?"})
            assert second["status"] == "completed", second
            user = _docker("exec", name, "id", "-u")
            assert user != "0", "the container runs as root"
            _wait_healthy(name)  # the image's own HEALTHCHECK on /healthz
            print(f"image {image}: healthy, ready (PostgreSQL sessions), answered as uid "
                  f"{user}")
        except BaseException:
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
            print(logs.stdout + logs.stderr, file=sys.stderr)
            raise
        finally:
            subprocess.run(["docker", "stop", "-t", "10", name], capture_output=True)
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)


if __name__ == "__main__":
    check(sys.argv[1])
