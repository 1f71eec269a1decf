"""What an operator (and a stranger) sees of a running ``dragoman serve``: ``/readyz`` names
nothing without a valid key; "serving … on" is printed only once the port listens (a busy
port gives the bind error alone); an upstream that refuses connections is named by
host:port; one access line per request at INFO, without secrets or bodies."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.gateway_proc import free_port, log_path, run_gateway

ALL, ONLY_A = "sk-sees-all", "sk-sees-a"
AUTH = {"type": "static", "tokens": [
    {"token": ALL, "tenant": "ops"},
    {"token": ONLY_A, "tenant": "team-a", "allowed_models": ["model-a"]}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {"auth": AUTH, "models": [{"name": "model-a", "provider": "echo"},
                                       {"name": "model-secret", "provider": "echo"}]}
    with run_gateway(config, tmp_path_factory.mktemp("ops")) as base:
        yield base


def readyz(base: str, key: str | None = None) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    r = httpx.get(base + "/readyz", headers=headers, timeout=30)
    return r.status_code, r.json()


def test_readyz_without_a_key_names_no_model(gateway: str) -> None:
    assert readyz(gateway) == (200, {"status": "ready", "checks": {
        "sessions": "ok", "limits": "ok", "models": "ok"}})


def test_readyz_with_a_key_lists_the_models_that_key_may_use(gateway: str) -> None:
    assert readyz(gateway, ALL) == (200, {"status": "ready", "checks": {
        "sessions": "ok", "limits": "ok",
        "models": {"model-a": "ok", "model-secret": "ok"}}})
    assert readyz(gateway, ONLY_A) == (200, {"status": "ready", "checks": {
        "sessions": "ok", "limits": "ok", "models": {"model-a": "ok"}}})


def test_readyz_with_an_invalid_key_is_401(gateway: str) -> None:
    status, body = readyz(gateway, "sk-wrong")
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")
    assert "model-a" not in str(body)


def test_readyz_names_the_subsystem_down_but_not_why_without_a_key(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here: the Redis limits store is unreachable
    config = {"auth": AUTH, "models": [{"name": "model-a", "provider": "echo"}],
              "limits": {"backend": "redis",
                         "redis_url": f"redis://:pw-secret@127.0.0.1:{port}/0"}}
    with run_gateway(config, tmp_path) as base:
        status, body = readyz(base)
        assert (status, body) == (503, {"status": "unavailable", "checks": {
            "sessions": "ok", "limits": "unreachable", "models": "ok"}})
        status, body = readyz(base, ALL)
        assert status == 503 and body["checks"]["limits"].startswith("unreachable (")
        assert body["checks"]["models"] == {"model-a": "ok"}
        assert "pw-secret" not in str(body)


def serve_cmd(config: dict[str, Any], tmp: Path, port: int) -> list[str]:
    path = tmp / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    return [sys.executable, "-m", "dragoman.cli", "serve", "--config", str(path),
            "--host", "127.0.0.1", "--port", str(port)]


ECHO = {"models": [{"name": "e", "provider": "echo"}]}
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_a_busy_port_gives_the_bind_error_without_the_serving_line(
        tmp_path: Path, server: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([*serve_cmd(ECHO, tmp_path, port), "--server", server],
                              capture_output=True, text=True, timeout=120,
                              env={**ENV, "XDG_DATA_HOME": str(tmp_path)})
    assert done.returncode != 0
    assert "serving" not in done.stderr + done.stdout
    assert "address already in use" in (done.stderr + done.stdout).lower()


def test_the_serving_line_comes_once_the_port_listens(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(serve_cmd(ECHO, tmp_path, port), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True,
                            env={**ENV, "XDG_DATA_HOME": str(tmp_path)})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line == f"dragoman: serving e on http://127.0.0.1:{port}\n"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # accepted at once: listening when announced
    finally:
        proc.terminate()
        proc.wait(30)


def test_connect_errors_name_the_upstream_and_requests_are_logged_once(
        tmp_path: Path) -> None:
    dead = free_port()
    config = {"server": {"api_keys": ["sk-client-secret"]}, "models": [
        {"name": "m", "provider": "openai", "model": "gpt-x", "base_url": f"http://127.0.0.1:{dead}/v1",
         "api_key": "sk-upstream-secret"},
        {"name": "e", "provider": "echo"}]}
    with run_gateway(config, tmp_path, args=["--log-level", "info"]) as base:
        auth = {"authorization": "Bearer sk-client-secret"}
        body = {"model": "m", "messages": [{"role": "user", "content": "body-marker-123"}]}
        r = httpx.post(base + "/v1/chat/completions", json=body, headers=auth, timeout=30)
        assert r.status_code == 502
        assert r.json()["error"]["message"].endswith(
            f"cannot connect to 127.0.0.1:{dead} (ConnectionRefusedError)")
        r = httpx.post(base + "/v1/chat/completions", json={**body, "model": "e"},
                       headers=auth, timeout=30)
        assert r.status_code == 200
        r = httpx.post(base + "/v1/chat/completions", json=body, timeout=30,
                       headers={"authorization": "Bearer sk-wrong-secret"})
        assert r.status_code == 401
        time.sleep(0.5)  # (the lines are written as the requests end)
        log = log_path(tmp_path, base).read_text()
    access = [line for line in log.splitlines() if "dragoman.access:" in line]
    fields = [dict(re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", line.split("access ", 1)[1]))
              for line in access if "path=/v1/chat/completions" in line]
    assert [{k: f[k] for k in ("status", "model", "deployment", "outcome")}
            for f in fields] == [
        {"status": "502", "model": "m", "deployment": '"m#0"', "outcome": "transport"},
        {"status": "200", "model": "e", "deployment": '"e#0"', "outcome": "ok"},
        {"status": "401", "model": "-", "deployment": "-", "outcome": "authentication"},
    ]
    assert all(float(f["duration_ms"]) >= 0 for f in fields)
    for secret in ("sk-client-secret", "sk-upstream-secret", "sk-wrong-secret",
                   "body-marker-123"):
        assert secret not in log
