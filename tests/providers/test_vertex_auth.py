"""Vertex AI's OAuth2 flow, for real: google-auth signs a JWT assertion with a service-account
key generated here, posts it to the fake's token endpoint (which verifies the RS256
signature and the claims), and the provider sends the issued token — refreshed before it
expires, once for any number of waiting requests, without blocking the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dragoman.core import StopReason, UpstreamError
from dragoman.providers.gemini import VertexAi, VertexOptions
from dragoman.providers.google_auth import GoogleAccessToken
from tests.fakes.gemini import (
    CLOUD_PLATFORM,
    GEMINI_KEY,
    SA_EMAIL,
    VERTEX_PROJECT,
    FakeGemini,
)
from tests.fakes.upstream import TEXT

from .gemini_env import ask, marker, service_account_file, vertex_provider


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as f:  # one per test: token counts and lifetimes are per test
        yield f


def bearer_tokens(fake: FakeGemini) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ")
            for r in fake.requests if r.api == "vertex"]


async def test_token_is_reused_then_refreshed_before_expiry(fake: FakeGemini,
                                                            tmp_path: Path) -> None:
    fake.token_ttl = 301  # fresh for ~1 s with the default 300 s refresh margin
    p = vertex_provider(fake, service_account_file(fake, tmp_path))
    for _ in range(2):
        assert (await p.complete(ask(marker("text")[0]))).text() == TEXT
    assert len(fake.token_requests) == 1
    await asyncio.sleep(1.2)
    assert (await p.complete(ask(marker("text")[0]))).text() == TEXT
    await p.aclose()
    assert len(fake.token_requests) == 2
    t = bearer_tokens(fake)
    assert t[0] == t[1] != t[2] and all(x.startswith("ya29.fake-") for x in t)
    claims = fake.token_requests[0]
    assert claims["iss"] == SA_EMAIL and claims["scope"] == CLOUD_PLATFORM


async def test_one_refresh_for_many_waiting_requests_and_the_loop_keeps_running(
        fake: FakeGemini, tmp_path: Path) -> None:
    fake.token_delay = 0.4
    p = vertex_provider(fake, service_account_file(fake, tmp_path))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick = asyncio.create_task(ticker())
    t0 = time.monotonic()
    answers = await asyncio.gather(*(p.complete(ask(marker("text")[0])) for _ in range(8)))
    elapsed = time.monotonic() - t0
    tick.cancel()
    await p.aclose()
    assert [a.stop_reason for a in answers] == [StopReason.END_TURN] * 8
    assert len(fake.token_requests) == 1
    assert len(set(bearer_tokens(fake))) == 1
    # the token endpoint took 0.4 s; the event loop kept ticking all along
    assert ticks >= 0.4 / 0.01 * 0.5 and elapsed >= 0.4


async def test_revoked_token_is_refreshed_once_and_the_request_retried(
        fake: FakeGemini, tmp_path: Path) -> None:
    p = vertex_provider(fake, service_account_file(fake, tmp_path))
    await p.complete(ask(marker("text")[0]))
    fake.revoke_tokens()
    user, nonce = marker("text")
    assert (await p.complete(ask(user))).text() == TEXT
    await p.aclose()
    assert [r.status for r in fake.find(nonce)] == [401, 200]
    assert len(fake.token_requests) == 2


async def test_untrusted_key_is_a_clear_gateway_error(fake: FakeGemini, tmp_path: Path) -> None:
    service_account_file(fake, tmp_path)  # the account exists, with another key
    key_file = service_account_file(fake, tmp_path, trusted=False)
    p = vertex_provider(fake, key_file)
    with pytest.raises(UpstreamError) as info:
        await p.complete(ask(marker("text")[0]))
    await p.aclose()
    err = info.value
    assert err.status == 502 and "Invalid JWT Signature" in err.message
    assert "PRIVATE KEY" not in err.message and "ya29" not in err.message
    assert fake.token_requests == [] and not any(r.api == "vertex" for r in fake.requests)


async def test_missing_or_foreign_credentials_file(fake: FakeGemini, tmp_path: Path) -> None:
    p = vertex_provider(fake, tmp_path / "nope.json")
    with pytest.raises(UpstreamError, match="no usable Google credentials"):
        await p.complete(ask(marker("text")[0]))
    await p.aclose()
    odd = tmp_path / "odd.json"
    odd.write_text('{"type": "external_account", "audience": "x"}')
    p = vertex_provider(fake, odd)
    with pytest.raises(UpstreamError, match="external_account"):
        await p.complete(ask(marker("text")[0]))
    await p.aclose()


async def test_project_comes_from_the_key_file(fake: FakeGemini, tmp_path: Path) -> None:
    p = vertex_provider(fake, service_account_file(fake, tmp_path), project=None)
    user, nonce = marker("text")
    await p.complete(ask(user))
    await p.aclose()
    assert fake.one(nonce).path.startswith(f"/v1/projects/{VERTEX_PROJECT}/locations/")


async def test_express_mode_uses_the_api_key(fake: FakeGemini) -> None:
    p = VertexAi(model="gemini-2.5-flash", base_url=fake.url, api_key=GEMINI_KEY)
    user, nonce = marker("text")
    assert (await p.complete(ask(user))).text() == TEXT
    await p.aclose()
    rec = fake.one(nonce)
    assert rec.path == "/v1/publishers/google/models/gemini-2.5-flash:generateContent"
    assert rec.headers["x-goog-api-key"] == GEMINI_KEY and "authorization" not in rec.headers
    assert fake.token_requests == []


def test_regional_and_global_hosts_and_secret_free_reprs() -> None:
    regional = VertexAi(model="m", options=VertexOptions(project="p", location="europe-west4"))
    assert regional.http.base_url == "https://europe-west4-aiplatform.googleapis.com"
    assert regional.model_path() == \
        "/v1/projects/p/locations/europe-west4/publishers/google/models/m"
    glob = VertexAi(model="m", options=VertexOptions(project="p"))
    assert glob.http.base_url == "https://aiplatform.googleapis.com"
    keyed = VertexAi(model="m", api_key="AIza-secret-123")
    assert "secret" not in repr(keyed)
    assert "sa.json" in repr(GoogleAccessToken("/etc/sa.json"))


async def test_a_token_google_keeps_refusing_is_a_gateway_error(fake: FakeGemini,
                                                                tmp_path: Path) -> None:
    fake.token_ttl = 0  # every token is dead on arrival at the fake
    p = vertex_provider(fake, service_account_file(fake, tmp_path))
    user, nonce = marker("text")
    with pytest.raises(UpstreamError) as info:
        await p.complete(ask(user))
    await p.aclose()
    assert info.value.status == 502 and "credentials" in info.value.message
    assert [r.status for r in fake.find(nonce)] == [401, 401]  # one refresh, one retry
    assert len(fake.token_requests) == 2
