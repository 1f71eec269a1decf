"""The matrix for ``codex`` (the ChatGPT subscription backend): every ingress dialect's SDK,
streaming and not (the backend only streams: non-stream clients get it collected), with a
tool round trip; the credentials come from the environment and never reach a log."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.cross_dialect.clients import SYSTEM, call, prompt, upstream_view
from tests.fakes.codex import ACCOUNT_ID, CODEX_TOKENS, USAGE_RESET_SECONDS, FakeCodex
from tests.fakes.upstream import RESP_CALL_IDS, THINK_ANSWER, THINKING

from .common import INGRESS, MODES, Clients, expected_turns, gateway, text_cell, tools_cell

MODEL = "gpt-5-fake"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCodex]:
    with FakeCodex() as f:
        yield f


@pytest.fixture(scope="module")
def gw(fake: FakeCodex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    config = {"models": [{"name": "codex", "provider": "codex", "model": MODEL,
                          "base_url": fake.url + "/backend-api",
                          "access_token": "${CODEX_ACCESS_TOKEN}",
                          "account_id": "${CODEX_ACCOUNT_ID}",
                          "capabilities": {"thinking": True}}]}
    env = {"CODEX_ACCESS_TOKEN": CODEX_TOKENS[0], "CODEX_ACCOUNT_ID": ACCOUNT_ID}
    with gateway(config, tmp_path_factory.mktemp("codex-gw"), env=env) as c:
        yield c


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_text(ingress: str, mode: str, gw: Clients, fake: FakeCodex) -> None:
    _, rec = text_cell(gw, fake, ingress, "codex", mode)
    assert rec.headers["authorization"] == f"Bearer {CODEX_TOKENS[0]}"
    assert rec.headers["chatgpt-account-id"] == ACCOUNT_ID
    b = rec.body
    assert b["stream"] is True and b["store"] is False and b["instructions"] == SYSTEM
    assert "max_output_tokens" not in b


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_round_trip(ingress: str, mode: str, gw: Clients, fake: FakeCodex) -> None:
    t1, _, recs, user = tools_cell(gw, fake, ingress, "codex", mode, RESP_CALL_IDS)
    _, turns = upstream_view(recs[1])
    assert turns == expected_turns(user, t1.calls)


@pytest.mark.parametrize("mode", MODES)
def test_thinking_for_a_responses_client(mode: str, gw: Clients, fake: FakeCodex) -> None:
    user, _ = prompt("thinking")
    t = call(gw.oai, gw.ant, "responses", "codex", mode, user,
             reasoning={"effort": "low", "summary": "auto"})
    assert t.text == THINK_ANSWER and t.thinking == THINKING


@pytest.mark.parametrize("ingress", ["chat", "messages"])
def test_plan_limit_is_a_429_with_the_reset(ingress: str, gw: Clients) -> None:
    import anthropic

    user, _ = prompt("usage_limit")
    errors = {"chat": openai.RateLimitError, "messages": anthropic.RateLimitError}
    with pytest.raises(errors[ingress]) as ei:
        call(gw.oai, gw.ant, ingress, "codex", "json", user,
             **({"max_tokens": 100} if ingress == "messages" else {}))
    assert ei.value.response.headers["retry-after"] == str(USAGE_RESET_SECONDS)


def test_no_token_in_logs(gw: Clients) -> None:
    logs = gw.logs()
    assert CODEX_TOKENS[0] not in logs and ACCOUNT_ID not in logs
