"""The matrix for ``azure_openai``: classic deployment Chat route with an ``api-key``, and
the v1 Responses route with a static Entra ID token (from the environment) — each behind
every ingress dialect's SDK, streaming and not, with a tool round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cross_dialect.clients import call, prompt, upstream_view
from tests.fakes.azure import AZURE_AD_TOKENS, AZURE_KEY, DEPLOYMENT, FakeAzure
from tests.fakes.upstream import CHAT_CALL_IDS, IMAGE_PNG, IMAGE_PNG_B64, RESP_CALL_IDS

from .common import INGRESS, MODES, Clients, expected_turns, gateway, text_cell, tools_cell

ROUTES = {"az-chat": f"/openai/deployments/{DEPLOYMENT}/chat/completions",
          "az-v1-resp": "/openai/v1/responses"}
IDS = {"az-chat": CHAT_CALL_IDS, "az-v1-resp": RESP_CALL_IDS}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAzure]:
    with FakeAzure() as f:
        yield f


@pytest.fixture(scope="module")
def gw(fake: FakeAzure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    config = {"models": [
        {"name": "az-chat", "provider": "azure_openai", "model": "gpt-4o",
         "deployment": DEPLOYMENT, "base_url": fake.url, "api_key": AZURE_KEY},
        {"name": "az-v1-resp", "provider": "azure_openai", "model": DEPLOYMENT,
         "api": "v1_responses", "base_url": fake.url + "/openai/v1",
         "azure_ad_token": "${AZURE_AD_TOKEN}"},
    ]}
    with gateway(config, tmp_path_factory.mktemp("azure-gw"),
                 env={"AZURE_AD_TOKEN": AZURE_AD_TOKENS[0]}) as c:
        yield c


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", sorted(ROUTES))
@pytest.mark.parametrize("ingress", INGRESS)
def test_text(ingress: str, model: str, mode: str, gw: Clients, fake: FakeAzure) -> None:
    _, rec = text_cell(gw, fake, ingress, model, mode)
    assert rec.path == ROUTES[model]
    if model == "az-chat":
        assert rec.headers["api-key"] == AZURE_KEY and "authorization" not in rec.headers
        assert rec.query.startswith("api-version=")
    else:
        assert rec.headers["authorization"] == f"Bearer {AZURE_AD_TOKENS[0]}"
        assert "api-key" not in rec.headers and rec.query == ""
    assert rec.body["model"] == DEPLOYMENT


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", sorted(ROUTES))
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_round_trip(ingress: str, model: str, mode: str, gw: Clients,
                         fake: FakeAzure) -> None:
    t1, _, recs, user = tools_cell(gw, fake, ingress, model, mode, IDS[model])
    _, turns = upstream_view(recs[1])
    assert turns == expected_turns(user, t1.calls)


@pytest.mark.parametrize("ingress", INGRESS)
def test_content_filter_reaches_every_client(ingress: str, gw: Clients) -> None:
    user, _ = prompt("filtered")
    t = call(gw.oai, gw.ant, ingress, "az-chat", "stream", user,
             **({"max_tokens": 100} if ingress == "messages" else {}))
    want = {"chat": "content_filter", "responses": "incomplete", "messages": "refusal"}
    assert t.stop == want[ingress]


def test_image_and_no_secret_in_logs(gw: Clients, fake: FakeAzure) -> None:
    user, nonce = prompt("image")
    r = gw.oai.chat.completions.create(model="az-chat", messages=[{"role": "user", "content": [
        {"type": "text", "text": user},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE_PNG_B64}"}}]}])
    assert f"{len(IMAGE_PNG)} bytes" in (r.choices[0].message.content or "")
    sent = fake.one(nonce).body["messages"][-1]["content"][1]
    assert sent == {"type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{IMAGE_PNG_B64}"}}
    logs = gw.logs()
    assert AZURE_KEY not in logs and AZURE_AD_TOKENS[0] not in logs
