"""One fake vendor upstream and one real ``dragoman serve`` process for the whole session.

The gateway exposes each upstream dialect under its own model name:

``chat-up``    provider ``openai``            → fake ``/v1/chat/completions``
``resp-up``    provider ``openai_responses``  → fake ``/v1/responses``
``claude-up``  provider ``anthropic``         → fake ``/v1/messages``

and the same three with a wrong upstream key (``*-badkey``), to see how an upstream 401
reaches a client.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.fakes.upstream import ANTHROPIC_KEY, OPENAI_KEY, FakeUpstream
from tests.gateway_proc import run_gateway

from .clients import CLIENT_KEY, UPSTREAM_MODEL


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def _models(fake: FakeUpstream, suffix: str, openai_key: str,
            anthropic_key: str) -> list[dict[str, object]]:
    caps = {"thinking": True, "max_output_tokens": 64000}
    return [
        {"name": f"chat-{suffix}", "provider": "openai", "model": UPSTREAM_MODEL["chat-up"],
         "base_url": fake.url + "/v1", "api_key": openai_key, "capabilities": caps},
        {"name": f"resp-{suffix}", "provider": "openai_responses",
         "model": UPSTREAM_MODEL["resp-up"], "base_url": fake.url + "/v1",
         "api_key": openai_key, "capabilities": caps},
        {"name": f"claude-{suffix}", "provider": "anthropic",
         "model": UPSTREAM_MODEL["claude-up"], "base_url": fake.url,
         "api_key": anthropic_key, "capabilities": caps},
    ]


@pytest.fixture(scope="session")
def gateway(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {"models": [*_models(upstream, "up", OPENAI_KEY, ANTHROPIC_KEY),
                         *_models(upstream, "badkey", "sk-wrong", "sk-ant-wrong")]}
    with run_gateway(config, tmp_path_factory.mktemp("cross-gw")) as base:
        yield base


@pytest.fixture(scope="session")
def oai(gateway: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=gateway + "/v1", api_key=CLIENT_KEY, max_retries=0,
                           timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="session")
def ant(gateway: str) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=gateway, api_key=CLIENT_KEY, max_retries=0,
                                 timeout=30)
    yield client
    client.close()
