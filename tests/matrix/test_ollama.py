"""The matrix for ``ollama``: every ingress dialect's SDK, streaming and not, with a tool
round trip (Ollama sends calls without ids: dragoman's ids must come back as
``tool_call_id`` with the ``tool_name``), and URL images fetched by the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.cross_dialect.clients import SYSTEM, TOOL_RESULTS, call, prompt
from tests.fakes.ollama import EVAL, OLLAMA_MODEL, PROMPT_EVAL, FakeOllama
from tests.fakes.upstream import IMAGE_PNG, PREAMBLE, Recorded, image_answer, image_note

from .common import INGRESS, MODES, Clients, gateway, text_cell, tools_cell


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as f:
        yield f


@pytest.fixture(scope="module")
def gw(fake: FakeOllama, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    config = {"fetch": {"allow_hosts": ["127.0.0.1"]}, "models": [
        {"name": "llama", "provider": "ollama", "model": OLLAMA_MODEL, "base_url": fake.url},
    ]}
    with gateway(config, tmp_path_factory.mktemp("ollama-gw")) as c:
        yield c


def ollama_view(rec: Recorded) -> tuple[str, list[tuple[str, list[Any]]]]:
    system = ""
    turns: list[tuple[str, list[Any]]] = []
    for m in rec.body["messages"]:
        if m["role"] == "system":
            system += m["content"]
        elif m["role"] == "tool":
            item = ("result", m.get("tool_call_id"), m.get("tool_name"), m["content"])
            if turns and turns[-1][0] == "tool":
                turns[-1][1].append(item)
            else:
                turns.append(("tool", [item]))
        else:
            items: list[Any] = [("text", m["content"])] if m["content"] else []
            items += [("call", tc.get("id"), tc["function"]["name"], tc["function"]["arguments"])
                      for tc in m.get("tool_calls") or ()]
            turns.append((m["role"], items))
    return system, turns


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_text(ingress: str, mode: str, gw: Clients, fake: FakeOllama) -> None:
    t, rec = text_cell(gw, fake, ingress, "llama", mode)
    assert rec.body["stream"] is (mode == "stream")
    assert ollama_view(rec)[0] == SYSTEM
    assert t.usage.get("input") == PROMPT_EVAL and t.usage.get("output") == EVAL


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_round_trip(ingress: str, mode: str, gw: Clients, fake: FakeOllama) -> None:
    t1, _, recs, user = tools_cell(gw, fake, ingress, "llama", mode)
    system, turns = ollama_view(recs[1])
    (weather, _, _), (clock, _, _) = t1.calls
    assert system == SYSTEM
    assert turns == [
        ("user", [("text", user)]),
        ("assistant", [("text", PREAMBLE), ("call", weather, "get_weather", {"city": "Paris"}),
                       ("call", clock, "get_time", {})]),
        ("tool", [("result", weather, "get_weather", TOOL_RESULTS[0]),
                  ("result", clock, "get_time", TOOL_RESULTS[1])]),
    ]


@pytest.mark.parametrize("ingress", ["chat", "messages"])
def test_url_image_fetched_by_the_gateway(ingress: str, gw: Clients, fake: FakeOllama) -> None:
    user, nonce = prompt("image")
    url = fake.url + "/images/red.png"
    if ingress == "chat":
        r = gw.oai.chat.completions.create(model="llama", messages=[{"role": "user", "content": [
            {"type": "text", "text": user}, {"type": "image_url", "image_url": {"url": url}}]}])
        text = r.choices[0].message.content
    else:
        m = gw.ant.messages.create(model="llama", max_tokens=100, messages=[
            {"role": "user", "content": [{"type": "text", "text": user},
                                         {"type": "image", "source": {"type": "url",
                                                                      "url": url}}]}])
        text = m.content[0].text  # type: ignore[union-attr]
    assert text == image_answer([image_note(data=IMAGE_PNG)])
    assert fake.one(nonce).body["messages"][-1]["images"]


@pytest.mark.parametrize("ingress", ["chat", "messages"])
def test_private_url_refused_with_a_400(ingress: str, gw: Clients, fake: FakeOllama) -> None:
    user, nonce = prompt("image")
    # The same loopback server, named "localhost": not on the fetch allowlist (which names
    # 127.0.0.1), so its loopback address is refused.
    url = fake.url.replace("127.0.0.1", "localhost") + "/images/red.png"
    if ingress == "chat":
        with pytest.raises(openai.BadRequestError) as ei:
            gw.oai.chat.completions.create(model="llama", messages=[
                {"role": "user", "content": [{"type": "text", "text": user},
                                             {"type": "image_url", "image_url": {"url": url}}]}])
        assert "loopback" in ei.value.message
    else:
        with pytest.raises(anthropic.BadRequestError) as ai:
            gw.ant.messages.create(model="llama", max_tokens=100, messages=[
                {"role": "user", "content": [{"type": "text", "text": user},
                                             {"type": "image", "source": {"type": "url",
                                                                          "url": url}}]}])
        assert "loopback" in ai.value.message
    assert fake.find(nonce) == []


def test_midstream_error_reaches_the_client(gw: Clients) -> None:
    user, _ = prompt("midstream_error")
    with pytest.raises(openai.APIError):
        call(gw.oai, gw.ant, "chat", "llama", "stream", user)
