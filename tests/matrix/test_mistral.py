"""The matrix for ``mistral``: every ingress dialect's SDK, streaming and not, with a tool
round trip whose ids are Mistral's own; plus a conversation started on another vendor
(foreign call ids) continued on Mistral, and reasoning shown to each client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dragoman.providers.mistral import mistral_id
from tests.cross_dialect.clients import call, prompt, tool_results, upstream_view
from tests.fakes.mistral import MISTRAL_CALL_IDS, MISTRAL_KEY, MISTRAL_MODEL, FakeMistral
from tests.fakes.upstream import (
    ANTHROPIC_TOOL_IDS,
    FOLLOWUP,
    OPENAI_KEY,
    THINK_ANSWER,
    THINKING,
    FakeUpstream,
)

from .common import INGRESS, MODES, Clients, expected_turns, gateway, text_cell, tools_cell


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeMistral]:
    with FakeMistral() as f:
        yield f


@pytest.fixture(scope="module")
def other() -> Iterator[FakeUpstream]:
    with FakeUpstream() as f:
        yield f


@pytest.fixture(scope="module")
def gw(fake: FakeMistral, other: FakeUpstream,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    config = {"models": [
        {"name": "mistral", "provider": "mistral", "model": MISTRAL_MODEL,
         "base_url": fake.url + "/v1", "api_key": MISTRAL_KEY,
         "capabilities": {"thinking": True}},
        {"name": "claude", "provider": "anthropic", "model": "claude-fake",
         "base_url": other.url, "api_key": "sk-ant-fake-upstream-key"},
        {"name": "gpt", "provider": "openai", "model": "gpt-fake", "base_url": other.url + "/v1",
         "api_key": OPENAI_KEY},
    ]}
    with gateway(config, tmp_path_factory.mktemp("mistral-gw")) as c:
        yield c


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_text(ingress: str, mode: str, gw: Clients, fake: FakeMistral) -> None:
    t, rec = text_cell(gw, fake, ingress, "mistral", mode)
    assert rec.headers["authorization"] == f"Bearer {MISTRAL_KEY}"
    assert "stream_options" not in rec.body
    assert t.usage.get("input") == 21 and t.usage.get("output") == 9


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_round_trip(ingress: str, mode: str, gw: Clients, fake: FakeMistral) -> None:
    t1, _, recs, user = tools_cell(gw, fake, ingress, "mistral", mode, MISTRAL_CALL_IDS)
    _, turns = upstream_view(recs[1])
    assert turns == expected_turns(user, t1.calls)


@pytest.mark.parametrize("mode", MODES)
def test_conversation_moved_from_claude_to_mistral(mode: str, gw: Clients,
                                                   fake: FakeMistral) -> None:
    """Claude's ``toolu_…`` ids cannot go to Mistral: they are rewritten (the same way on
    every turn), and the client keeps seeing its own."""
    user, nonce = prompt("tools")
    t1 = call(gw.oai, gw.ant, "messages", "claude", mode, user, tools=True, max_tokens=300)
    assert [cid for cid, _, _ in t1.calls] == list(ANTHROPIC_TOOL_IDS)
    history = [{"role": "user", "content": user}, *t1.history,
               *tool_results("messages", t1.calls)]
    t2 = call(gw.oai, gw.ant, "messages", "mistral", mode, "", tools=True, history=history,
              max_tokens=300)
    assert t2.text == FOLLOWUP
    (rec,) = fake.find(nonce)
    _, turns = upstream_view(rec)
    assert turns == expected_turns(user, t1.calls, mistral_id)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_reasoning_shown_to_every_client(ingress: str, mode: str, gw: Clients) -> None:
    user, _ = prompt("thinking")
    t = call(gw.oai, gw.ant, ingress, "mistral", mode, user,
             **({"max_tokens": 300} if ingress == "messages" else {}))
    assert t.text == THINK_ANSWER
    assert t.thinking == THINKING
