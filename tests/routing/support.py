"""Helpers of the routing suite: deployments on the chaos fake, and what the fake saw."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.chaos import ChaosUpstream
from tests.gateway_proc import free_port

Config = dict[str, Any]

HI: Any = [{"role": "user", "content": "hi"}]
#: What every client call is bounded by: a gateway that hangs fails the test, never the run.
CLIENT_TIMEOUT = 10.0


def oai_dep(fake: ChaosUpstream, model: str, **extra: Any) -> Config:
    """An ``openai`` (Chat Completions) deployment the fake answers as ``model``."""
    return {"provider": "openai", "model": model, "base_url": fake.url + "/v1",
            "api_key": "sk-up", **extra}


def ant_dep(fake: ChaosUpstream, model: str, **extra: Any) -> Config:
    """An ``anthropic`` (Messages) deployment the fake answers as ``model``."""
    return {"provider": "anthropic", "model": model, "base_url": fake.url,
            "api_key": "sk-ant-up", **extra}


def dead_dep(model: str, **extra: Any) -> Config:
    """An ``openai`` deployment whose base URL is a closed loopback port: connecting is
    refused (a transport failure)."""
    return {"provider": "openai", "model": model,
            "base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key": "sk-up",
            "timeouts": {"connect": 2}, **extra}


_BLACK_HOLES: list[socket.socket] = []  # kept open for the whole test run


def black_hole_port() -> int:
    """A loopback port where connecting hangs: a listener whose accept queue is full, so
    the kernel drops new SYNs (what an unreachable host looks like to a client)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    _BLACK_HOLES.append(listener)
    for _ in range(4):  # fill the queue (its length is the backlog + 1)
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        _BLACK_HOLES.append(c)
    return port


def unreachable_dep(model: str, **extra: Any) -> Config:
    """An ``openai`` deployment whose TCP connect never completes: a connect timeout."""
    return {"provider": "openai", "model": model,
            "base_url": f"http://127.0.0.1:{black_hole_port()}/v1", "api_key": "sk-up",
            "timeouts": {"connect": 0.5}, **extra}


def seen(fake: ChaosUpstream) -> list[str]:
    """The upstream model of each request the fake received, in arrival order."""
    return [r.model or "" for r in fake.requests()]


def poll(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Re-check ``predicate`` (which may do a request) until it holds, or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.05)
