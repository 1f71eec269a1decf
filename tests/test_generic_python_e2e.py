"""HTTP-generic and Python providers end to end: each ingress dialect, driven by the
official SDKs against a real ``dragoman serve``, streaming and not, with a tool round trip
where the provider does tools. Upstreams that answer only whole get a synthesized stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.cross_dialect.clients import CLIENT_KEY, INGRESS, MODES, call, prompt, tool_results
from tests.fakes.generic_upstream import AFTER_TOOLS, KEY, TEXT, GenericUpstream
from tests.gateway_proc import run_gateway

PY = "tests.providers.pyfuncs"


def models(up: GenericUpstream) -> list[dict[str, Any]]:
    return [
        {"name": "gen-ndjson", "provider": "http_generic", "model": "llama-x",
         "base_url": up.url, "api_key": KEY, "path": "/api/generate",
         "template": {"model": "{{model}}", "prompt": "{{prompt}}", "system": "{{system}}",
                      "stream": "{{stream}}", "options": {"num_predict": "{{max_tokens}}"}},
         "response": {"text": "/response", "input_tokens": "/prompt_eval_count",
                      "output_tokens": "/eval_count"},
         "stream": {"format": "ndjson", "delta": "/response", "done": "/done",
                    "input_tokens": "/prompt_eval_count", "output_tokens": "/eval_count"}},
        {"name": "gen-sse", "provider": "http_generic", "model": "cmpl",
         "url": up.url + "/v1/completions", "api_key": KEY,
         "template": {"model": "{{model}}", "prompt": "{{prompt}}", "stream": "{{stream}}"},
         "response": {"text": "/choices/0/text", "finish_reason": "/choices/0/finish_reason"},
         "stream": {"format": "openai_sse", "delta": "/choices/0/text",
                    "finish_reason": "/choices/0/finish_reason"}},
        {"name": "gen-acme", "provider": "http_generic", "base_url": up.url,
         "path": "/acme/chat", "api_key": KEY,
         "template": {"messages": "{{messages_with_system}}", "tools": "{{tools}}"},
         "response": {"text": "/reply/text", "tool_calls": "/reply/calls",
                      "finish_reason": "/stop", "input_tokens": "/tokens/in",
                      "output_tokens": "/tokens/out"}},
        {"name": "py-whole", "provider": "python", "callable": f"{PY}:answer"},
        {"name": "py-stream", "provider": "python", "stream_callable": f"{PY}:words"},
    ]


@pytest.fixture(scope="module")
def up() -> Iterator[GenericUpstream]:
    with GenericUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(up: GenericUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("gen-py-gw")
    with run_gateway({"models": models(up)}, tmp) as base:
        yield base


@pytest.fixture(scope="module")
def oai(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway + "/v1", api_key=CLIENT_KEY, max_retries=0,
                       timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def ant(gateway: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway, api_key=CLIENT_KEY, max_retries=0,
                             timeout=30) as c:
        yield c


def expected_text(model: str, user: str) -> str:
    if model.startswith("gen-"):
        return TEXT
    if model == "py-whole":
        return f"echo: {user}"
    return " ".join(user.split()) + " "


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", ["gen-ndjson", "gen-sse", "gen-acme", "py-whole",
                                   "py-stream"])
@pytest.mark.parametrize("ingress", INGRESS)
def test_text(ingress: str, model: str, mode: str, oai: openai.OpenAI,
              ant: anthropic.Anthropic) -> None:
    user, _ = prompt("text")
    t = call(oai, ant, ingress, model, mode, user, system=None)
    assert t.text == expected_text(model, user)


#: (model, the calls it makes, its answer after the tool results)
TOOL_MODELS = {
    "gen-acme": ([("c-1", "get_weather", {"city": "Paris"}), ("c-2", "get_time", {})],
                 AFTER_TOOLS),
    "py-whole": ([("call_py1", "get_weather", {"city": "Paris"})], "echo: "),
    "py-stream": ([("call_py2", "get_weather", {"city": "Paris"})], None),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", list(TOOL_MODELS))
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_round_trip(ingress: str, model: str, mode: str, oai: openai.OpenAI,
                         ant: anthropic.Anthropic, up: GenericUpstream) -> None:
    user, _ = prompt("tools")
    calls, answer = TOOL_MODELS[model]
    t1 = call(oai, ant, ingress, model, mode, user, tools=True)
    assert t1.calls == calls
    history = [{"role": "user", "content": user}, *t1.history,
               *tool_results(ingress, t1.calls)]
    t2 = call(oai, ant, ingress, model, mode, "", tools=True, history=history)
    assert t2.calls == []
    if answer is not None:
        assert t2.text == answer
    if model == "gen-acme":
        sent = up.last("/acme/chat").body
        assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant",
                                                         "tool", "tool"]
        assert [m["tool_call_id"] for m in sent["messages"][-2:]] == ["c-1", "c-2"]
        assert sent["messages"][-2]["content"] == "18C, sunny"


@pytest.mark.parametrize("ingress", INGRESS)
def test_upstream_failure_in_the_clients_envelope(ingress: str, oai: openai.OpenAI,
                                                  ant: anthropic.Anthropic) -> None:
    user, _ = prompt("error429")
    sdk = anthropic if ingress == "messages" else openai
    with pytest.raises(sdk.RateLimitError) as ei:
        call(oai, ant, ingress, "gen-ndjson", "json", user, system=None)
    assert ei.value.response.headers.get("retry-after") == "7"
    assert KEY not in str(ei.value.body)
