"""What the gateway-level limits tests share: prices, the documented token estimate, SDK
clients and the checks a refusal must pass.

Prices are whole dollars per token so that every cost below is an exact float and a
budget can be set to an exact multiple of a reservation.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai

IN_PER_TOKEN = 1.0
OUT_PER_TOKEN = 2.0
PRICES = {"input_cost_per_mtok": IN_PER_TOKEN * 1_000_000,
          "output_cost_per_mtok": OUT_PER_TOKEN * 1_000_000}


def estimate(*user_texts: str) -> int:
    """The documented input estimate (core/estimate.py): about four bytes per token,
    rounded up, plus 4 per message for role and framing."""
    return sum(4 + (len(t.encode()) + 3) // 4 for t in user_texts)


def cost(input_tokens: int, output_tokens: int) -> float:
    return input_tokens * IN_PER_TOKEN + output_tokens * OUT_PER_TOKEN


def oai(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=30)


def ant(base: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=30)


def body_error(e: openai.APIStatusError | anthropic.APIStatusError) -> dict[str, Any]:
    """The error object of an OpenAI (``{"error": {...}}``) or Anthropic
    (``{"type": "error", "error": {...}}``) envelope."""
    body = e.response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    err: dict[str, Any] = body["error"]
    return err


def check_rate_limited(e: openai.RateLimitError | anthropic.RateLimitError,
                       anthropic_dialect: bool = False) -> str:
    """A 429 rate-limit refusal in the caller's dialect with usable retry hints; returns
    the message."""
    assert e.status_code == 429
    err = body_error(e)
    if anthropic_dialect:
        assert e.response.json()["type"] == "error"
        assert err["type"] == "rate_limit_error"
    else:
        assert (err["type"], err["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    h = e.response.headers
    assert 0 < int(h["retry-after"]) <= 60, h
    assert 0 < int(h["retry-after-ms"]) <= 60_000, h
    assert "x-should-retry" not in h  # the SDKs may retry a rate limit once it refills
    message: str = err["message"]
    return message


def check_budget_refusal(e: openai.RateLimitError | anthropic.RateLimitError,
                         anthropic_dialect: bool = False) -> str:
    """A budget refusal: 429 with its own error type, and a hint that retrying soon is
    pointless; returns the message."""
    assert e.status_code == 429
    err = body_error(e)
    if anthropic_dialect:
        assert err["type"] == "billing_error"
    else:
        assert (err["type"], err["code"]) == ("insufficient_quota", "insufficient_quota")
    assert e.response.headers["x-should-retry"] == "false"
    message: str = err["message"]
    return message


async def fire_chat(bases: list[str], key: str, n: int, **create: Any
                    ) -> tuple[list[float], list[openai.RateLimitError]]:
    """``n`` concurrent Chat requests, spread round-robin over ``bases`` (one async client
    per gateway); the costs (``x-dragoman-cost-usd``) of those served and the refusals."""
    clients = [openai.AsyncOpenAI(base_url=b + "/v1", api_key=key, max_retries=0, timeout=30)
               for b in bases]

    async def one(i: int) -> float | openai.RateLimitError:
        try:
            raw = await clients[i % len(clients)].chat.completions.with_raw_response.create(
                **create)
        except openai.RateLimitError as e:
            return e
        return float(raw.headers["x-dragoman-cost-usd"])

    try:
        results = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        for c in clients:
            await c.close()
    served = [r for r in results if isinstance(r, float)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    return served, refused
