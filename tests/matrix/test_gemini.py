"""The matrix for ``gemini`` (API key) and ``vertex`` (service-account OAuth2 through the
fake token endpoint): every ingress dialect's SDK against a real ``dragoman serve``,
streaming and not — text, a parallel tool round trip whose thought signature survives
every client dialect, thinking, images, and failures as each SDK sees them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.cross_dialect.clients import SYSTEM, TOOL_RESULTS, call, prompt
from tests.fakes.gemini import (
    GEMINI_KEY,
    GEMINI_SIGNATURE,
    THINK_SIGNATURE,
    VERTEX_LOCATION,
    VERTEX_PROJECT,
    FakeGemini,
)
from tests.fakes.upstream import (
    IMAGE_PNG,
    IMAGE_PNG_B64,
    PREAMBLE,
    THINK_ANSWER,
    THINKING,
    Recorded,
    image_answer,
    image_note,
)
from tests.providers.gemini_env import MODEL, service_account_file

from .common import INGRESS, MODES, Clients, gateway, text_cell, tools_cell

MODELS = ("gemini-up", "vertex-up")
ROUTES = {"gemini-up": f"/v1beta/models/{MODEL}:",
          "vertex-up": f"/v1/projects/{VERTEX_PROJECT}/locations/{VERTEX_LOCATION}/publishers/"
                       f"google/models/{MODEL}:"}
CALL_ID = {"chat": re.compile(r"^call_gemini_[0-9a-f]{16}$"),
           "responses": re.compile(r"^call_gemini_[0-9a-f]{16}$"),
           "messages": re.compile(r"^toolu_gemini_[0-9a-f]{16}$")}
SDK = {"chat": openai, "responses": openai, "messages": anthropic}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as f:
        yield f


@pytest.fixture(scope="module")
def gw(fake: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    tmp = tmp_path_factory.mktemp("gemini-gw")
    key_file: Path = service_account_file(fake, tmp)
    common: dict[str, Any] = {"model": MODEL, "base_url": fake.url,
                              "capabilities": {"thinking": True}}
    config = {
        "fetch": {"allow_hosts": ["127.0.0.1"]},  # the fake serves the URL image on loopback
        "models": [
            {"name": "gemini-up", "provider": "gemini", "api_key": "${GEMINI_KEY}", **common},
            {"name": "gemini-badkey", "provider": "gemini", "api_key": "AIza-wrong-key",
             **common},
            {"name": "vertex-up", "provider": "vertex", "project": VERTEX_PROJECT,
             "location": VERTEX_LOCATION, "credentials_file": str(key_file), **common},
        ]}
    with gateway(config, tmp, env={"GEMINI_KEY": GEMINI_KEY}) as c:
        yield c


def check_envelope(rec: Recorded, model: str, mode: str) -> None:
    verb = "streamGenerateContent" if mode == "stream" else "generateContent"
    assert rec.path == ROUTES[model] + verb
    assert rec.query == ("alt=sse" if mode == "stream" else "")
    assert "model" not in rec.body and "stream" not in rec.body
    if model == "gemini-up":
        assert rec.headers["x-goog-api-key"] == GEMINI_KEY and "authorization" not in rec.headers
    else:
        assert rec.headers["authorization"].startswith("Bearer ya29.fake-")
        assert "x-goog-api-key" not in rec.headers


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_text(ingress: str, model: str, mode: str, gw: Clients, fake: FakeGemini) -> None:
    t, rec = text_cell(gw, fake, ingress, model, mode)
    check_envelope(rec, model, mode)
    assert t.usage["input"] == 11 and t.usage["output"] == 7


def gemini_view(rec: Recorded) -> tuple[str, list[tuple[str, list[Any]]]]:
    """``(system text, [(role, items)])``: items ``("text", s)``, ``("call", name, args,
    signature)``, ``("result", name, response)``; ids where Gemini would see them."""
    body = rec.body
    system = "\n\n".join(p["text"] for p in (body.get("systemInstruction") or {})
                         .get("parts", []))
    turns: list[tuple[str, list[Any]]] = []
    for c in body["contents"]:
        items: list[Any] = []
        for p in c["parts"]:
            if "text" in p:
                items.append(("text", p["text"]))
            elif "functionCall" in p:
                fc = p["functionCall"]
                items.append(("call", fc.get("id"), fc["name"], fc["args"],
                              p.get("thoughtSignature")))
            elif "functionResponse" in p:
                fr = p["functionResponse"]
                items.append(("result", fr.get("id"), fr["name"], fr["response"]))
            else:
                items.append((next(iter(p)),))
        turns.append((c["role"], items))
    return system, turns


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_round_trip(ingress: str, model: str, mode: str, gw: Clients,
                         fake: FakeGemini) -> None:
    t1, _, recs, user = tools_cell(gw, fake, ingress, model, mode)
    assert all(CALL_ID[ingress].match(cid) for cid, _, _ in t1.calls), t1.calls
    # 80 prompt tokens (64 cached); output = 25 visible + 6 thought tokens
    assert t1.usage["input"] == 80 and t1.usage["output"] == 31 and t1.usage["cached"] == 64
    check_envelope(recs[0], model, mode)
    system, turns = gemini_view(recs[1])
    assert system == SYSTEM
    assert turns == [
        ("user", [("text", user)]),
        # the signature could not travel through any client dialect: the provider kept it
        ("model", [("text", PREAMBLE),
                   ("call", None, "get_weather", {"city": "Paris"}, GEMINI_SIGNATURE),
                   ("call", None, "get_time", {}, None)]),
        ("user", [("result", None, "get_weather", {"output": TOOL_RESULTS[0]}),
                  ("result", None, "get_time", {"output": TOOL_RESULTS[1]})]),
    ]


def reasoning_kwargs(ingress: str) -> dict[str, Any]:
    if ingress == "chat":
        return {"reasoning_effort": "low", "max_completion_tokens": 4096}
    if ingress == "responses":
        return {"reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 4096}
    return {"thinking": {"type": "enabled", "budget_tokens": 2048}, "max_tokens": 4096}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_thinking(ingress: str, model: str, mode: str, gw: Clients, fake: FakeGemini) -> None:
    user, nonce = prompt("thinking")
    t = call(gw.oai, gw.ant, ingress, model, mode, user, **reasoning_kwargs(ingress))
    assert t.text == THINK_ANSWER
    if ingress == "responses":  # every reasoning item's summary, in order
        items = t.raw[-1].response.output if mode == "stream" else t.raw.output
        thinking = "".join(s.text for i in items if i.type == "reasoning" for s in i.summary)
    else:
        thinking = t.thinking or ""
    assert thinking == THINKING
    # the Gemini signature is never shown as another vendor's proof
    assert t.signature in (None, "")
    assert THINK_SIGNATURE not in str(t.raw)
    assert fake.one(nonce).body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048, "includeThoughts": True}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_images_inline_and_by_url(ingress: str, model: str, gw: Clients,
                                  fake: FakeGemini) -> None:
    user, nonce = prompt("image")
    url = f"{fake.url}/images/red.png"
    data_url = f"data:image/png;base64,{IMAGE_PNG_B64}"
    if ingress == "chat":
        r = gw.oai.chat.completions.create(model=model, messages=[{"role": "user", "content": [
            {"type": "text", "text": user}, {"type": "image_url", "image_url": {"url": data_url}},
            {"type": "image_url", "image_url": {"url": url}}]}])
        text = r.choices[0].message.content
    elif ingress == "responses":
        rr = gw.oai.responses.create(model=model, input=[{"role": "user", "content": [
            {"type": "input_text", "text": user},
            {"type": "input_image", "image_url": data_url, "detail": "auto"},
            {"type": "input_image", "image_url": url, "detail": "auto"}]}])
        text = rr.output_text
    else:
        m = gw.ant.messages.create(model=model, max_tokens=100, messages=[{
            "role": "user", "content": [
                {"type": "text", "text": user},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": IMAGE_PNG_B64}},
                {"type": "image", "source": {"type": "url", "url": url}}]}])
        text = "".join(b.text for b in m.content if b.type == "text")
    # both reached Gemini inline: the URL one fetched by the gateway (allow-listed host)
    assert text == image_answer([image_note(data=IMAGE_PNG)] * 2)
    parts = fake.one(nonce).body["contents"][0]["parts"]
    assert parts[1:] == [{"inlineData": {"mimeType": "image/png", "data": IMAGE_PNG_B64}}] * 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_rate_limit_carries_googles_retry_delay(ingress: str, model: str, mode: str,
                                                gw: Clients, fake: FakeGemini) -> None:
    user, nonce = prompt("error429")
    with pytest.raises(SDK[ingress].RateLimitError) as ei:
        call(gw.oai, gw.ant, ingress, model, mode, user,
             **({"max_tokens": 100} if ingress == "messages" else {}))
    assert ei.value.status_code == 429
    assert ei.value.response.headers.get("retry-after") == "37"
    assert fake.one(nonce).status == 429


@pytest.mark.parametrize("ingress", INGRESS)
def test_bad_gateway_key_is_not_the_clients_fault(ingress: str, gw: Clients,
                                                  fake: FakeGemini) -> None:
    user, nonce = prompt("text")
    with pytest.raises(SDK[ingress].InternalServerError) as ei:
        call(gw.oai, gw.ant, ingress, "gemini-badkey", "json", user,
             **({"max_tokens": 100} if ingress == "messages" else {}))
    assert ei.value.status_code == 502
    assert fake.one(nonce).status == 400  # Gemini's answer to a bad key: 400 API_KEY_INVALID
    assert "AIza" not in str(ei.value.body) and "AIza" not in gw.logs()


@pytest.mark.parametrize("ingress", INGRESS)
def test_stream_cut_midway_surfaces_after_the_partial_text(ingress: str, gw: Clients) -> None:
    user, _ = prompt("cut")
    got = ""
    with pytest.raises((openai.APIError, anthropic.APIError)):
        if ingress == "chat":
            for ch in gw.oai.chat.completions.create(
                    model="vertex-up", stream=True,
                    messages=[{"role": "user", "content": user}]):
                got += "".join(c.delta.content or "" for c in ch.choices)
        elif ingress == "responses":
            for ev in gw.oai.responses.create(model="vertex-up", input=user, stream=True):
                if ev.type == "response.output_text.delta":
                    got += ev.delta
                elif ev.type == "response.failed":
                    raise openai.APIError("failed", request=None, body=None)  # type: ignore[arg-type]
        else:
            for e in gw.ant.messages.create(model="vertex-up", max_tokens=100, stream=True,
                                            messages=[{"role": "user", "content": user}]):
                if e.type == "content_block_delta" and e.delta.type == "text_delta":
                    got += e.delta.text
    assert got == "Hello from the"
