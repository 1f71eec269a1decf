"""Capabilities are consulted before dispatch: images to a model without vision, tools to
a model without tools and JSON output to a model without JSON mode get a 400 in the
client's own envelope naming the problem; a streaming client on a model that cannot
stream gets a stream synthesized from the whole answer. Official SDKs, real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.cross_dialect.clients import CLIENT_KEY, INGRESS, call
from tests.gateway_proc import run_gateway

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
       "AAAABJRU5ErkJggg==")

CONFIG = {"models": [
    {"name": "no-vision", "provider": "echo", "capabilities": {"vision": False}},
    {"name": "no-tools", "provider": "echo", "capabilities": {"tools": False}},
    {"name": "no-json", "provider": "echo", "capabilities": {"json_mode": False}},
    {"name": "whole-only", "provider": "echo", "capabilities": {"streaming": False}},
    {"name": "can-all", "provider": "echo"},
]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_gateway(CONFIG, tmp_path_factory.mktemp("caps-gw")) as base:
        yield base


@pytest.fixture(scope="module")
def oai(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway + "/v1", api_key=CLIENT_KEY, max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def ant(gateway: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway, api_key=CLIENT_KEY, max_retries=0) as c:
        yield c


def image_turn(ingress: str) -> list[dict[str, Any]]:
    if ingress == "chat":
        return [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
    if ingress == "responses":
        return [{"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]}]
    return [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}]


def json_format(ingress: str) -> dict[str, Any]:
    if ingress == "chat":
        return {"response_format": {"type": "json_object"}}
    if ingress == "responses":
        return {"text": {"format": {"type": "json_object"}}}
    return {"extra_body": {"output_config": {"format": {"type": "json_schema",
                                                        "schema": {"type": "object"}}}}}


def refused(ingress: str, oai: openai.OpenAI, ant: anthropic.Anthropic, model: str,
            **kw: Any) -> Any:
    sdk = anthropic if ingress == "messages" else openai
    with pytest.raises(sdk.BadRequestError) as ei:
        call(oai, ant, ingress, model, "json", kw.pop("user", "hello"), **kw)
    err = ei.value
    assert err.status_code == 400
    body = err.body
    if ingress == "messages":
        assert isinstance(body, dict) and body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        return body["error"]["message"]
    assert isinstance(body, dict) and body["type"] == "invalid_request_error"
    return body["message"]


@pytest.mark.parametrize("mode", ["json", "stream"])
@pytest.mark.parametrize("ingress", INGRESS)
def test_images_to_a_model_without_vision(ingress: str, mode: str, oai: openai.OpenAI,
                                          ant: anthropic.Anthropic) -> None:
    msg = refused(ingress, oai, ant, "no-vision", user="", history=image_turn(ingress))
    assert "'no-vision' does not accept image input" in msg and "messages[" in msg
    # the same request to a model with vision is answered
    assert call(oai, ant, ingress, "can-all", mode, "", history=image_turn(ingress)).text


@pytest.mark.parametrize("ingress", INGRESS)
def test_tools_to_a_model_without_tools(ingress: str, oai: openai.OpenAI,
                                        ant: anthropic.Anthropic) -> None:
    msg = refused(ingress, oai, ant, "no-tools", tools=True)
    assert "'no-tools' does not support tools" in msg
    assert call(oai, ant, ingress, "no-tools", "json", "plain text is fine").text


@pytest.mark.parametrize("ingress", INGRESS)
def test_json_output_to_a_model_without_json_mode(ingress: str, oai: openai.OpenAI,
                                                  ant: anthropic.Anthropic) -> None:
    msg = refused(ingress, oai, ant, "no-json", **json_format(ingress))
    assert "'no-json' does not support JSON output" in msg


@pytest.mark.parametrize("mode", ["stream", "helper"])
@pytest.mark.parametrize("ingress", INGRESS)
def test_streaming_client_on_a_whole_only_model(ingress: str, mode: str, oai: openai.OpenAI,
                                                ant: anthropic.Anthropic) -> None:
    text = "several words in this answer"
    t = call(oai, ant, ingress, "whole-only", mode, text, system=None)
    assert t.text == text
    if mode == "stream":
        # Synthesized from the whole answer: one text delta, where the streaming echo
        # model sends one per word.
        streamed = call(oai, ant, ingress, "can-all", mode, text, system=None)
        assert _text_deltas(ingress, t.raw) == 1 < _text_deltas(ingress, streamed.raw)


def _text_deltas(ingress: str, raw: list[Any]) -> int:
    if ingress == "chat":
        return sum(1 for c in raw for ch in c.choices if ch.delta.content)
    if ingress == "responses":
        return sum(1 for e in raw if e.type == "response.output_text.delta")
    return sum(1 for e in raw if e.type == "content_block_delta" and e.delta.type == "text_delta")
