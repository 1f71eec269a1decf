"""Fixtures of the routing suite: one ``ChaosUpstream`` per module, real ``dragoman serve``
subprocesses in front of it, and SDK clients bounded by timeouts.

Each module defines a module-scoped ``gateway`` fixture (its base URL), usually with
``gateways(config)``; the ``oai``/``ant`` clients here talk to it. Gateway health (breakers,
latency, 429 cool-downs) lives as long as the process, so the tests of one module use
distinct routes (and distinct upstream model names, which is how the fake scripts and
counts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import anthropic
import openai
import pytest

from tests.fakes.chaos import ChaosUpstream
from tests.gateway_proc import run_gateway

from .support import CLIENT_TIMEOUT, Config


@pytest.fixture(scope="module")
def chaos() -> Iterator[ChaosUpstream]:
    with ChaosUpstream() as f:
        yield f


@pytest.fixture
def fake(chaos: ChaosUpstream) -> ChaosUpstream:
    """The module's fake with scripts, defaults and the request log cleared."""
    chaos.reset()
    return chaos


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Config], str]]:
    """Start a gateway for a config (as in dragoman.yaml; the in-memory session store is
    added) and return its base URL; every one started stops at the end of the module."""
    with contextlib.ExitStack() as stack:
        def start(config: Config) -> str:
            full = {"sessions": {"backend": "memory"}, **config}
            return stack.enter_context(run_gateway(full, tmp_path_factory.mktemp("routing")))
        yield start


@pytest.fixture(scope="module")
def oai(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway + "/v1", api_key="sk-client", max_retries=0,
                       timeout=CLIENT_TIMEOUT) as c:
        yield c


@pytest.fixture(scope="module")
def ant(gateway: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway, api_key="sk-ant-client", max_retries=0,
                             timeout=CLIENT_TIMEOUT) as c:
        yield c
