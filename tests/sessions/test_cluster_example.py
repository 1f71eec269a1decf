"""``examples/postgres-redis-cluster.yaml`` run as written on two "hosts" (two
``dragoman serve`` processes) sharing a real PostgreSQL and a real Redis: a response stored
through one host is read back through the other, and the rate-limit counters live in Redis.
Only what a test must change is changed: the upstreams' ``base_url`` (a fake vendor on
loopback) and one worker per process (the bench machine has two cores)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from tests.fakes.upstream import ANTHROPIC_KEY, OPENAI_KEY, TEXT, FakeUpstream
from tests.gateway_proc import run_gateway
from tests.limits.conftest import redis_url  # noqa: F401 (the fixture, shared)

from .conftest import fresh_schema_dsn

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "postgres-redis-cluster.yaml"


def _pointed_at(config: dict[str, Any], upstream: str) -> dict[str, Any]:
    for model in config["models"]:
        for d in model.get("deployments") or [model]:
            d["base_url"] = f"{upstream}/v1" if d["provider"] == "openai" else upstream
    config["server"]["workers"] = 1
    return config


def test_two_hosts_share_sessions_and_limits(pg_server: str, redis_url: str,  # noqa: F811
                                             tmp_path: Path) -> None:
    env = {"DRAGOMAN_PG_DSN": fresh_schema_dsn(pg_server), "DRAGOMAN_REDIS_URL": redis_url,
           "OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
           "GATEWAY_KEY_TEAM_A": "key-team-a", "GATEWAY_KEY_TEAM_B": "key-team-b"}
    before = set(redis.Redis.from_url(redis_url).keys("dragoman*"))
    with FakeUpstream() as upstream, ExitStack() as hosts:
        config = _pointed_at(yaml.safe_load(EXAMPLE.read_text()), upstream.url)
        a, b = (hosts.enter_context(run_gateway(config, tmp_path, env=env)) for _ in range(2))
        auth = {"authorization": "Bearer key-team-a"}
        stored = httpx.post(f"{a}/v1/responses", headers=auth, timeout=60,
                            json={"model": "claude-sonnet", "input": "hi", "store": True})
        assert stored.status_code == 200, stored.text
        assert stored.json()["output"][0]["content"][0]["text"] == TEXT
        again = httpx.get(f"{b}/v1/responses/{stored.json()['id']}", headers=auth, timeout=60)
        assert again.status_code == 200, again.text
        # (item ids are compared by the stored-responses tests; here: the same answer)
        assert [o["content"] for o in again.json()["output"]] \
            == [o["content"] for o in stored.json()["output"]]
        smart = httpx.post(f"{b}/v1/chat/completions", headers=auth, timeout=60,
                           json={"model": "smart", "messages": [{"role": "user",
                                                                 "content": "hi"}]})
        assert smart.status_code == 200 and smart.json()["choices"][0]["message"]["content"] \
            == TEXT
        refused = httpx.post(f"{a}/v1/chat/completions", timeout=60,
                             headers={"authorization": "Bearer not-a-team-key"},
                             json={"model": "smart", "messages": [{"role": "user",
                                                                   "content": "hi"}]})
        assert refused.status_code == 401
    counters = set(redis.Redis.from_url(redis_url).keys("dragoman*")) - before
    assert counters, "the limits of the example count in Redis"

