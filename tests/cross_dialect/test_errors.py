"""Upstream failures as each client SDK sees them: the vendor's HTTP errors become the
right exception class of the client's SDK (with ``retry-after`` carried through), the
gateway's own bad upstream key is never blamed on the client, and in-band failures after
the first byte surface as SDK errors after the partial text."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.upstream import PARTIAL, FakeUpstream

from .clients import INGRESS, UPSTREAMS, call, check_responses_events, prompt

ERRORS = {"chat": openai, "responses": openai, "messages": anthropic}


def _raises(ingress: str, name: str) -> Any:
    return pytest.raises(getattr(ERRORS[ingress], name))


@pytest.mark.parametrize("mode", ["json", "stream", "helper"])
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_rate_limit(ingress: str, up: str, mode: str, oai: openai.OpenAI,
                    ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    user, nonce = prompt("error429")
    with _raises(ingress, "RateLimitError") as ei:
        call(oai, ant, ingress, up, mode, user)
    err = ei.value
    assert err.status_code == 429
    assert err.response.headers.get("retry-after") == "7"
    assert upstream.one(nonce).status == 429
    body = err.body
    if ingress == "messages":
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    else:
        # the OpenAI SDK hands over body["error"]
        assert body["type"] in ("rate_limit_error", "requests", "tokens")
        assert body["code"] == "rate_limit_exceeded"
        assert body["message"]


@pytest.mark.parametrize("mode", ["json", "stream"])
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_upstream_500(ingress: str, up: str, mode: str, oai: openai.OpenAI,
                      ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    user, nonce = prompt("error500")
    with _raises(ingress, "InternalServerError") as ei:
        call(oai, ant, ingress, up, mode, user)
    assert ei.value.status_code >= 500
    assert upstream.one(nonce).status == 500
    if ingress == "messages":
        assert ei.value.body["error"]["type"] in ("api_error", "overloaded_error")


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_bad_upstream_key_is_not_the_clients_fault(ingress: str, up: str, oai: openai.OpenAI,
                                                   ant: anthropic.Anthropic,
                                                   upstream: FakeUpstream) -> None:
    """The fake answers 401 to the gateway's wrong key; the client's own key is fine, so
    it must see a 5xx (bad gateway), never an AuthenticationError."""
    user, nonce = prompt("text")
    model = up.replace("-up", "-badkey")
    with _raises(ingress, "InternalServerError") as ei:
        call(oai, ant, ingress, model, "json", user)
    assert ei.value.status_code == 502
    assert upstream.one(nonce).status == 401
    assert "sk-wrong" not in str(ei.value.body) and "sk-ant-wrong" not in str(ei.value.body)


@pytest.mark.parametrize("up", UPSTREAMS)
def test_midstream_error_chat(up: str, oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    user, nonce = prompt("midstream_error")
    got = ""
    stream = oai.chat.completions.create(model=up, stream=True,
                                         messages=[{"role": "user", "content": user}])
    with pytest.raises(openai.APIError) as ei:
        for chunk in stream:
            for ch in chunk.choices:
                got += ch.delta.content or ""
                assert ch.finish_reason is None, "a failed stream must not look finished"
    assert got == PARTIAL
    assert ei.value.message
    assert upstream.one(nonce).status == 200


@pytest.mark.parametrize("up", UPSTREAMS)
def test_midstream_error_chat_helper(up: str, oai: openai.OpenAI) -> None:
    user, _ = prompt("midstream_error")
    with pytest.raises(openai.APIError), oai.chat.completions.stream(
            model=up, messages=[{"role": "user", "content": user}]) as s:
        s.get_final_completion()


@pytest.mark.parametrize("up", UPSTREAMS)
def test_midstream_error_responses(up: str, oai: openai.OpenAI, upstream: FakeUpstream) -> None:
    user, nonce = prompt("midstream_error")
    events = list(oai.responses.create(model=up, input=user, stream=True))
    check_responses_events(events)
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == PARTIAL
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert last.response.error is not None and last.response.error.message
    assert upstream.one(nonce).status == 200


@pytest.mark.parametrize("up", UPSTREAMS)
def test_midstream_error_responses_helper(up: str, oai: openai.OpenAI) -> None:
    user, _ = prompt("midstream_error")
    with pytest.raises(RuntimeError, match=r"response\.completed"), \
            oai.responses.stream(model=up, input=user) as s:
        s.get_final_response()


@pytest.mark.parametrize("helper", [False, True])
@pytest.mark.parametrize("up", UPSTREAMS)
def test_midstream_error_messages(up: str, helper: bool, ant: anthropic.Anthropic,
                                  upstream: FakeUpstream) -> None:
    user, nonce = prompt("midstream_error")
    got = ""
    with pytest.raises(anthropic.APIStatusError) as ei:
        if helper:
            with ant.messages.stream(model=up, max_tokens=50,
                                     messages=[{"role": "user", "content": user}]) as s:
                for text in s.text_stream:
                    got += text
        else:
            for ev in ant.messages.create(model=up, max_tokens=50, stream=True,
                                          messages=[{"role": "user", "content": user}]):
                if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                    got += ev.delta.text
                assert ev.type != "message_stop", "a failed stream must not look finished"
    assert got == PARTIAL
    body = ei.value.body
    assert isinstance(body, dict) and body.get("type") == "error"
    want = {"overloaded_error"} if up == "claude-up" else {"api_error", "overloaded_error"}
    assert body["error"]["type"] in want
    assert upstream.one(nonce).status == 200
