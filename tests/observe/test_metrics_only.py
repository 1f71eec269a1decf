"""``sessions.usage_ledger: false``: the metrics without a usage ledger (what the bench's
``dragoman_pass_metrics`` target runs). A real gateway on SQLite in front of the fake
OpenAI upstream: every request is counted in ``/metrics``, while the ledger stays empty
after the writer's interval has passed (with the ledger on, tests/observe/test_operations
finds the same traffic there)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.upstream import OPENAI_KEY, FakeUpstream
from tests.gateway_proc import run_gateway

ADMIN = "adm-metrics-only-key-7"
KEY = "sk-metrics-only-client"
SENT = 3


def test_metrics_are_kept_without_a_usage_ledger(tmp_path: Path) -> None:
    with FakeUpstream() as upstream:
        config = {
            "server": {"api_keys": [KEY], "admin_keys": [ADMIN]},
            "sessions": {"backend": "sqlite", "path": str(tmp_path / "sessions.db"),
                         "usage_ledger": False},
            "models": [{"name": "gpt", "provider": "openai", "model": "gpt-fake-chat",
                        "base_url": upstream.url + "/v1", "api_key": OPENAI_KEY}],
        }
        with run_gateway(config, tmp_path) as base:
            for _ in range(SENT):
                r = httpx.post(f"{base}/v1/chat/completions", timeout=30,
                               headers={"authorization": f"Bearer {KEY}"},
                               json={"model": "gpt",
                                     "messages": [{"role": "user", "content": "hello"}]})
                assert r.status_code == 200, r.text
            admin = {"authorization": f"Bearer {ADMIN}"}
            scrape = httpx.get(f"{base}/metrics", headers=admin, timeout=30)
            assert scrape.status_code == 200
            counted = [s for f in text_string_to_metric_families(scrape.text)
                       for s in f.samples if s.name == "dragoman_requests_total"]
            assert [(s.labels["model"], s.labels["outcome"], s.value) for s in counted] == \
                [("gpt", "ok", SENT)]
            time.sleep(2.5)  # past the ledger writer's one-second interval, twice
            usage = httpx.get(f"{base}/admin/usage", headers=admin, timeout=30)
            assert usage.status_code == 200 and usage.json()["data"] == []
