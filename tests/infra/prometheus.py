"""A private Prometheus server for the tests (Debian package ``prometheus``).

``running_prometheus(target, bearer, tmp)`` writes a scrape config for one target (every
second, with ``Authorization: Bearer``), starts Prometheus on a free loopback port with
its own data directory, waits until it is ready, yields its base URL and stops it.
``query`` asks its HTTP API. Without the binary, callers skip; on CI (``CI=true``) a
missing server is an error (``scripts/test`` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.gateway_proc import free_port, stop_process, wait_http


class PrometheusMissing(RuntimeError):
    pass


@contextmanager
def running_prometheus(target: str, bearer: str, tmp: Path) -> Iterator[str]:
    """``target``: ``host:port`` of a ``/metrics`` endpoint."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise PrometheusMissing("Prometheus is not installed (apt-get install prometheus)")
    base = tmp / f"prometheus-{free_port()}"
    base.mkdir()
    (base / "prometheus.yml").write_text(json.dumps({  # YAML is a superset of JSON
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{
            "job_name": "dragoman", "metrics_path": "/metrics",
            "authorization": {"type": "Bearer", "credentials": bearer},
            "static_configs": [{"targets": [target]}],
        }],
    }))
    port = free_port()
    log = (base / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={base / 'prometheus.yml'}",
         f"--storage.tsdb.path={base / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/-/ready", timeout=60, proc=proc)
        yield url
    finally:
        stop_process(proc)
        log.close()


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant query (``[{"metric": {...}, "value": [t, "v"]}]``)."""
    q = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def wait_for(url: str, promql: str, want: float, timeout: float = 60.0) -> float:
    """Poll a scalar-valued query until it equals ``want``; the last value otherwise."""
    deadline = time.monotonic() + timeout
    value = float("nan")
    while time.monotonic() < deadline:
        result = query(url, promql)
        if result:
            value = float(result[0]["value"][1])
            if value == want:
                return value
        time.sleep(0.5)
    return value
