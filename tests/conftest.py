from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_proc import run_gateway

API_KEY = "sk-test-key"

ECHO_CONFIG = {
    "server": {"api_keys": [API_KEY], "max_body_bytes": 1_000_000},
    "models": [
        {"name": "dragoman/echo", "provider": "echo"},
        {"name": "claude-*", "provider": "echo"},
    ],
}


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gw")


@pytest.fixture(scope="session")
def echo_gateway(session_tmp: Path) -> Iterator[str]:
    """Base URL of a gateway serving the echo model under granian."""
    with run_gateway(ECHO_CONFIG, session_tmp) as url:
        yield url
