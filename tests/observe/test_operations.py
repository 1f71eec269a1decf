"""The operator's side against real servers: ``dragoman serve --workers 2`` (granian) on SQLite in
front of the fake OpenAI upstream, scraped by a real Prometheus server. Known traffic
(whole and streamed answers, a fallback after a dead deployment, an upstream refusal,
rate-limit refusals) must show up, exactly, in Prometheus' HTTP API, in the usage ledger
through ``/admin/usage`` and ``dragoman usage``; the operator's routes answer only the
admin key; and no ledger record is lost when the gateway gets SIGTERM right after a
burst of requests."""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import CHAT_USAGE, OPENAI_KEY, FakeUpstream
from tests.gateway_proc import free_port, run_gateway
from tests.infra.prometheus import PrometheusMissing, query, running_prometheus, wait_for

ADMIN = "adm-test-key-0123456789"
KEYS = {"acme": "sk-acme-test-key", "globex": "sk-globex-test-key",
        "capped": "sk-capped-test-key"}
PRICE = {"input_cost_per_mtok": 2.0, "output_cost_per_mtok": 10.0}
IN, OUT = CHAT_USAGE["prompt_tokens"], CHAT_USAGE["completion_tokens"]


@dataclass
class Setup:
    base: str
    prom: str
    config: Path
    env: dict[str, str]
    stop: contextlib.ExitStack
    sent: int = 0
    refused: int = 0
    statuses: list[int] = field(default_factory=list)


def _chat(base: str, tenant: str, model: str = "gpt", *, stream: bool = False,
          text: str = "hello") -> httpx.Response:
    body = {"model": model, "stream": stream,
            "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {KEYS[tenant]}"})


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("ops")
    stack = contextlib.ExitStack()
    with stack:
        upstream = stack.enter_context(FakeUpstream())
        config = {
            "server": {"admin_keys": [ADMIN]},
            "auth": {"type": "static", "tokens": [
                {"token": k, "tenant": t, "subject": f"{t}-key"} for t, k in KEYS.items()]},
            "limits": {"tenants": {"capped": {"rpm": 1}}},
            "sessions": {"backend": "sqlite", "path": str(tmp / "sessions.db")},
            "models": [
                {"name": "gpt", "provider": "openai", "model": "gpt-fake-chat",
                 "base_url": upstream.url + "/v1", "api_key": OPENAI_KEY,
                 "capabilities": PRICE},
                # Nothing listens there: a transport error, then the fallback answers.
                {"name": "flaky", "provider": "openai", "model": "gpt-fake-chat",
                 "base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key": "sk-x",
                 "fallbacks": ["gpt"]},
            ],
        }
        env = {"XDG_DATA_HOME": str(tmp / "xdg-data")}
        gw = contextlib.ExitStack()
        stack.enter_context(gw)
        # granian: uvicorn's supervisor kills a worker that does not answer its health
        # check within 5 s of spawning, which a loaded test machine cannot promise.
        base = gw.enter_context(run_gateway(config, tmp, env=env, ready_timeout=90,
                                            args=["--workers", "2", "--server", "granian"]))
        try:
            prom = stack.enter_context(running_prometheus(base.removeprefix("http://"),
                                                          ADMIN, tmp))
        except PrometheusMissing as e:
            if os.environ.get("CI"):
                pytest.fail(f"{e}; scripts/test installs it on CI")
            pytest.skip(str(e))
        s = Setup(base=base, prom=prom, config=tmp / f"dragoman-{base.rsplit(':', 1)[1]}.yaml",
                  env=env, stop=gw)
        _known_traffic(s)
        yield s


def _known_traffic(s: Setup) -> None:
    def send(tenant: str, model: str = "gpt", **kw: object) -> httpx.Response:
        r = _chat(s.base, tenant, model, **kw)  # type: ignore[arg-type]
        s.sent += 1
        s.statuses.append(r.status_code)
        return r

    for _ in range(3):
        assert send("acme").status_code == 200
    for _ in range(2):
        r = send("globex", stream=True)
        assert r.status_code == 200 and "data: [DONE]" in r.text
    assert send("acme", "flaky").status_code == 200  # answered by the fallback
    assert send("globex", text="scenario:error400 too long").status_code == 400
    for _ in range(3):
        r = send("capped")
        assert r.status_code in (200, 429)
        s.refused += r.status_code == 429
    # One rpm per worker (memory limits): at most one allowed per worker.
    assert s.refused >= 1


def _value(prom: str, promql: str) -> float:
    result = query(prom, promql)
    assert result, f"no series for {promql}"
    return float(result[0]["value"][1])


def test_prometheus_sees_every_request_of_every_worker(ops: Setup) -> None:
    p = ops.prom
    assert wait_for(p, "sum(dragoman_requests_total)", ops.sent) == ops.sent
    assert _value(p, 'sum(dragoman_requests_total{outcome="rate_limited"})') == ops.refused
    assert _value(p, 'sum(dragoman_limit_refusals_total{tenant="capped",'
                     'kind="rate_limited"})') == ops.refused
    assert _value(p, 'sum(dragoman_requests_total{outcome="context_length",status="400"})') == 1
    # GenAI semconv names: tokens by tenant (3 whole + 1 fallback answer for acme)
    assert _value(p, 'sum(gen_ai_client_token_usage_sum{tenant="acme",'
                     'gen_ai_token_type="input"})') == 4 * IN
    assert _value(p, 'sum(gen_ai_client_token_usage_sum{tenant="acme",'
                     'gen_ai_token_type="output"})') == 4 * OUT
    assert _value(p, 'sum(gen_ai_server_time_to_first_token_seconds_count)') == 2
    ok = ops.statuses.count(200)
    assert _value(p, 'sum(gen_ai_client_operation_duration_seconds_count{error_type=""})') == ok
    assert _value(p, 'sum(dragoman_upstream_duration_seconds_count)') >= ok
    cost = _value(p, 'sum(dragoman_cost_usd_total{tenant="acme",model="gpt"})')
    assert cost == pytest.approx(3 * (IN * 2.0 + OUT * 10.0) / 1e6)
    # resilience: the dead deployment was retried elsewhere, the fallback answered
    assert _value(p, 'dragoman_fallbacks_total{model="flaky",fallback="gpt"}') == 1
    assert _value(p, 'dragoman_retries_total{deployment="flaky#0"}') == 1
    assert {r["metric"]["deployment"] for r in query(p, "dragoman_breaker_state")} \
        >= {"flaky#0", "gpt#0"}
    assert query(p, 'dragoman_upstream_connections{deployment="gpt#0"}')
    assert _value(p, "sum(dragoman_requests_in_flight)") == 0
    assert _value(p, "sum(dragoman_streams_in_flight)") == 0
    # timed once the ledger's writer has staged a batch: a second after the traffic, or
    # later on a machine kept busy by other processes (its writer runs at idle priority)
    assert wait_for(p, 'clamp_max(sum(dragoman_session_store_duration_seconds_count'
                       '{operation="append_usage"}), 1)', 1) == 1


def _get(base: str, path: str, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.get(base + path, headers=headers, timeout=30)


@pytest.mark.parametrize("path", ["/metrics", "/admin/usage", "/admin/deployments", "/ui",
                                  "/admin/series", "/admin/live"])
def test_operator_routes_answer_only_admin_keys(ops: Setup, path: str) -> None:
    for key in (None, KEYS["acme"], "not-a-key"):
        r = _get(ops.base, path, key)
        assert r.status_code == 401, (path, key)
        assert KEYS["acme"] not in r.text and ADMIN not in r.text
    if path != "/ui":
        assert "admin" in r.json()["error"]["message"]
    ok = _get(ops.base, path, ADMIN)
    assert ok.status_code == 200
    want = {"/metrics": "text/plain", "/ui": "text/html"}.get(path, "application/json")
    assert ok.headers["content-type"].startswith(want)


def _ledger(ops: Setup, query_string: str = "") -> list[dict[str, object]]:
    r = _get(ops.base, "/admin/usage" + query_string, ADMIN)
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def _wait_ledger(ops: Setup, n: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    rows = _ledger(ops)
    while len(rows) < n and time.monotonic() < deadline:
        time.sleep(0.3)
        rows = _ledger(ops)
    return rows


def test_usage_ledger_through_the_admin_api(ops: Setup) -> None:
    rows = _wait_ledger(ops, ops.sent)
    assert len(rows) == ops.sent
    acme = _ledger(ops, "?tenant=acme")
    assert len(acme) == 4 and {r["model"] for r in acme} == {"gpt", "flaky"}
    fallback = next(r for r in acme if r["model"] == "flaky")
    assert fallback["deployment"] == "gpt#0" and fallback["outcome"] == "ok"
    assert fallback["key_id"] == "acme-key" and fallback["input_tokens"] == IN
    streamed = _ledger(ops, "?tenant=globex&model=gpt")
    assert [r["outcome"] for r in streamed] == ["context_length", "ok", "ok"]
    assert all(r["ttft_ms"] is not None and r["stream"] for r in streamed[1:])
    assert streamed[0]["status"] == 400
    refused = [r for r in _ledger(ops, "?tenant=capped") if r["outcome"] == "rate_limited"]
    assert len(refused) == ops.refused and all(r["status"] == 429 for r in refused)
    assert _ledger(ops, "?since=1h&limit=2") == rows[:2]  # newest first
    assert _ledger(ops, f"?since={time.time() + 3600:.0f}") == []

    groups = _get(ops.base, "/admin/usage?group_by=tenant,model", ADMIN).json()
    assert groups["group_by"] == ["tenant", "model"]
    by = {(g["tenant"], g["model"]): g for g in groups["data"]}
    assert by[("acme", "gpt")]["requests"] == 3
    assert by[("acme", "gpt")]["input_tokens"] == 3 * IN
    assert by[("acme", "gpt")]["cost"] == pytest.approx(3 * (IN * 2.0 + OUT * 10.0) / 1e6)
    assert by[("globex", "gpt")]["errors"] == 1
    day = _get(ops.base, "/admin/usage?group_by=day", ADMIN).json()["data"]
    assert sum(g["requests"] for g in day) == ops.sent
    assert day[-1]["day"] == time.strftime("%Y-%m-%d", time.gmtime())

    r = _get(ops.base, "/admin/usage?format=csv&tenant=acme", ADMIN)
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == 4 and table[0]["tenant"] == "acme"
    assert {"ts", "key_id", "ttft_ms", "cost", "thread"} <= set(table[0])

    bad = _get(ops.base, "/admin/usage?group_by=color", ADMIN)
    assert bad.status_code == 400 and "group_by" in bad.json()["error"]["message"]
    bad = _get(ops.base, "/admin/usage?since=yesterday-ish", ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"


def test_deployments_and_series(ops: Setup) -> None:
    deps = {d["deployment"]: d for d in _get(ops.base, "/admin/deployments", ADMIN).json()["data"]}
    assert deps["gpt#0"]["model"] == "gpt" and deps["gpt#0"]["breaker"] == "closed"
    assert deps["flaky#0"]["breaker"] in ("closed", "open", "half_open")
    _wait_ledger(ops, ops.sent)
    s = _get(ops.base, "/admin/series?window=10m&step=60", ADMIN).json()
    assert len(s["t"]) == len(s["requests"]) == 10
    assert sum(s["requests"]) == ops.sent
    assert sum(s["errors"]["rate_limited"]) == ops.refused
    assert sum(s["tokens"]["tenant"]["acme"]) == 4 * (IN + OUT)
    assert any(v is not None for v in s["latency_ms"]["p99"])


def test_no_ledger_record_is_lost_on_sigterm(ops: Setup) -> None:
    """The last test: a burst, SIGTERM at once, then the ledger read by the CLI."""
    burst = 12
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: _chat(ops.base, "acme", text=f"burst {i}"),
                                range(burst)))
    assert all(r.status_code == 200 for r in results)
    ops.stop.close()  # SIGTERM: graceful shutdown, then wait for the process
    out = subprocess.run([sys.executable, "-m", "dragoman.cli", "usage", "--config",
                          str(ops.config), "--format", "json", "--limit", "1000"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, **ops.env})
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == ops.sent + burst
    assert sum(1 for r in rows if r["tenant"] == "acme") == 4 + burst
    grouped = subprocess.run([sys.executable, "-m", "dragoman.cli", "usage", "--config",
                              str(ops.config), "--group-by", "tenant", "--tenant", "acme"],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, **ops.env})
    assert grouped.returncode == 0, grouped.stderr
    header, line = grouped.stdout.splitlines()
    assert header.split()[:3] == ["tenant", "requests", "errors"]
    assert line.split()[:3] == ["acme", str(4 + burst), "0"]
