"""Field-level mapping across dialects (mapping.md): stop reasons, more error kinds,
tool_choice / parallel calls, images, stop sequences and sampling, developer messages, and
Responses ``previous_response_id`` served from the gateway's own store."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.upstream import (
    CHAT_CALL_IDS,
    FOLLOWUP,
    RESP_CALL_IDS,
    TEXT,
    TRUNCATED,
    FakeUpstream,
)

from .clients import (
    INGRESS,
    SYSTEM,
    TOOL_RESULTS,
    UPSTREAMS,
    call,
    prompt,
    tool_results,
    upstream_view,
)

ERRORS = {"chat": openai, "responses": openai, "messages": anthropic}

# --- stop reason: the output cap -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["json", "stream"])
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_truncated_maps_to_each_dialects_length_stop(ingress: str, up: str, mode: str,
                                                     oai: openai.OpenAI,
                                                     ant: anthropic.Anthropic) -> None:
    user, _ = prompt("truncated")
    t = call(oai, ant, ingress, up, mode, user)
    assert t.text == TRUNCATED
    if ingress == "chat":
        assert t.stop == "length"
    elif ingress == "messages":
        assert t.stop == "max_tokens"
    else:
        assert t.stop == "incomplete"
        final = t.raw[-1].response if mode == "stream" else t.raw
        assert final.incomplete_details is not None
        assert final.incomplete_details.reason == "max_output_tokens"
        if mode == "stream":
            assert t.raw[-1].type == "response.incomplete"


# --- more error kinds ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["json", "stream"])
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_context_length_error(ingress: str, up: str, mode: str, oai: openai.OpenAI,
                              ant: anthropic.Anthropic) -> None:
    user, _ = prompt("error400")
    with pytest.raises(ERRORS[ingress].BadRequestError) as ei:
        call(oai, ant, ingress, up, mode, user)
    assert ei.value.status_code == 400
    body = ei.value.body
    if ingress == "messages":
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["message"]
    else:
        assert body["type"] == "invalid_request_error"
        assert body["code"] == "context_length_exceeded"


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_overloaded(ingress: str, up: str, oai: openai.OpenAI,
                    ant: anthropic.Anthropic) -> None:
    user, _ = prompt("overloaded")
    with pytest.raises(ERRORS[ingress].InternalServerError) as ei:
        call(oai, ant, ingress, up, "json", user)
    if ingress == "messages":
        assert ei.value.status_code == 529
        assert ei.value.body["error"]["type"] == "overloaded_error"
    else:
        assert ei.value.status_code == 503


# --- tool_choice and parallel calls ------------------------------------------------------------

#: neutral choice → how each client dialect says it
CHOICES: dict[str, dict[str, Any]] = {
    "required": {"chat": "required", "responses": "required", "messages": {"type": "any"}},
    "named": {"chat": {"type": "function", "function": {"name": "get_weather"}},
              "responses": {"type": "function", "name": "get_weather"},
              "messages": {"type": "tool", "name": "get_weather"}},
    "none": {"chat": "none", "responses": "none", "messages": {"type": "none"}},
}


def upstream_choice(rec: Any) -> tuple[str | None, bool | None]:
    """(neutral tool choice, parallel calls allowed?) as the upstream received them."""
    b = rec.body
    tc = b.get("tool_choice")
    if rec.api == "anthropic":
        parallel = None if not isinstance(tc, dict) or "disable_parallel_tool_use" not in tc \
            else not tc["disable_parallel_tool_use"]
        if tc is None:
            return ("none" if not b.get("tools") else None), parallel
        kind = {"any": "required", "tool": "named", "none": "none", "auto": "auto"}[tc["type"]]
        if kind == "named":
            assert tc["name"] == "get_weather"
        return kind, parallel
    parallel = b.get("parallel_tool_calls")
    if tc is None:
        return None, parallel
    if isinstance(tc, str):
        return tc, parallel
    name = tc["function"]["name"] if rec.api == "chat" else tc["name"]
    assert name == "get_weather"
    return "named", parallel


@pytest.mark.parametrize("choice", list(CHOICES))
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_tool_choice(ingress: str, up: str, choice: str, oai: openai.OpenAI,
                     ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    t = call(oai, ant, ingress, up, "json", user, tools=True,
             tool_choice=CHOICES[choice][ingress])
    assert t.text == TEXT
    got, _ = upstream_choice(upstream.one(nonce))
    assert got == choice


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_parallel_tool_calls_off(ingress: str, up: str, oai: openai.OpenAI,
                                 ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    kw: dict[str, Any] = ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}
                          if ingress == "messages" else {"parallel_tool_calls": False})
    call(oai, ant, ingress, up, "json", user, tools=True, **kw)
    choice, parallel = upstream_choice(upstream.one(nonce))
    assert parallel is False
    assert choice in ("auto", None)


# --- images --------------------------------------------------------------------------------

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
       "AAAABJRU5ErkJggg==")
IMAGE_URL = "https://example.com/cat.png"


def client_images(ingress: str, text: str) -> list[dict[str, Any]]:
    if ingress == "chat":
        return [{"role": "user", "content": [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}}]}]
    if ingress == "responses":
        return [{"role": "user", "content": [
            {"type": "input_text", "text": text},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}",
             "detail": "auto"},
            {"type": "input_image", "image_url": IMAGE_URL, "detail": "auto"}]}]
    return [{"role": "user", "content": [
        {"type": "text", "text": text},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": IMAGE_URL}}]}]


def upstream_images(rec: Any) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def from_url(url: str) -> tuple[str, ...]:
        if url.startswith("data:"):
            head, _, data = url.partition(",")
            assert head.endswith(";base64")
            return ("b64", head[5:-7], data)
        return ("url", url)

    b = rec.body
    if rec.api == "anthropic":
        for m in b["messages"]:
            for blk in m["content"] if isinstance(m["content"], list) else []:
                if blk["type"] == "image":
                    src = blk["source"]
                    out.append(("b64", src["media_type"], src["data"])
                               if src["type"] == "base64" else ("url", src["url"]))
    elif rec.api == "chat":
        for m in b["messages"]:
            for p in m["content"] if isinstance(m.get("content"), list) else []:
                if p["type"] == "image_url":
                    out.append(from_url(p["image_url"]["url"]))
    else:
        for it in b["input"] if isinstance(b["input"], list) else []:
            for p in it.get("content") if isinstance(it.get("content"), list) else []:
                if p["type"] == "input_image":
                    out.append(from_url(p["image_url"]))
    return out


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_images(ingress: str, up: str, oai: openai.OpenAI, ant: anthropic.Anthropic,
                upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    t = call(oai, ant, ingress, up, "json", "", history=client_images(ingress, user))
    assert t.text == TEXT
    rec = upstream.one(nonce)
    assert upstream_images(rec) == [("b64", "image/png", PNG), ("url", IMAGE_URL)]
    _, turns = upstream_view(rec)
    assert turns[0][0] == "user" and ("text", user) in turns[0][1]


# --- stop sequences and sampling ---------------------------------------------------------------


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", ["chat", "messages"])
def test_stop_sequences_and_sampling(ingress: str, up: str, oai: openai.OpenAI,
                                     ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    if ingress == "chat":
        kw: dict[str, Any] = {"stop": ["END", "STOP"], "temperature": 0.5, "top_p": 0.9}
    else:
        # anthropic 2.12 has no temperature/top_p arguments any more: send them raw
        kw = {"stop_sequences": ["END", "STOP"],
              "extra_body": {"temperature": 0.5, "top_p": 0.9}}
    call(oai, ant, ingress, up, "json", user, **kw)
    b = upstream.one(nonce).body
    assert b["temperature"] == 0.5 and b["top_p"] == 0.9
    if up == "claude-up":
        assert b["stop_sequences"] == ["END", "STOP"]
    elif up == "chat-up":
        assert b["stop"] == ["END", "STOP"]
    else:
        assert "stop" not in b and "stop_sequences" not in b  # Responses has no stop


# --- system and developer messages ---------------------------------------------------------------


@pytest.mark.parametrize("up", UPSTREAMS)
def test_chat_developer_and_system_messages(up: str, oai: openai.OpenAI,
                                            upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    r = oai.chat.completions.create(model=up, messages=[
        {"role": "developer", "content": "Rule one."},
        {"role": "system", "content": [{"type": "text", "text": "Rule two."}]},
        {"role": "user", "content": user}])
    assert r.choices[0].message.content == TEXT
    rec = upstream.one(nonce)
    system, turns = upstream_view(rec)
    assert system == "Rule one.\n\nRule two."
    assert turns == [("user", [("text", user)])]
    if up == "claude-up":
        assert all(m["role"] in ("user", "assistant") for m in rec.body["messages"])


@pytest.mark.parametrize("up", UPSTREAMS)
def test_anthropic_system_blocks(up: str, ant: anthropic.Anthropic,
                                 upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    m = ant.messages.create(model=up, max_tokens=50, messages=[{"role": "user", "content": user}],
                            system=[{"type": "text", "text": "Block one."},
                                    {"type": "text", "text": "Block two.",
                                     "cache_control": {"type": "ephemeral"}}])
    assert m.content[0].type == "text" and m.content[0].text == TEXT
    rec = upstream.one(nonce)
    system, _ = upstream_view(rec)
    assert system == "Block one.\n\nBlock two."
    if up == "claude-up":  # same family: the cache marker survives
        assert rec.body["system"][1].get("cache_control") == {"type": "ephemeral"}


# --- tool results with is_error, Anthropic client ----------------------------------------------


@pytest.mark.parametrize("up", UPSTREAMS)
def test_anthropic_tool_error_result(up: str, ant: anthropic.Anthropic, oai: openai.OpenAI,
                                     upstream: FakeUpstream) -> None:
    user, nonce = prompt("tools")
    t1 = call(oai, ant, "messages", up, "json", user, tools=True)
    history = [{"role": "user", "content": user}, *t1.history, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": t1.calls[0][0], "is_error": True,
         "content": [{"type": "text", "text": "city not found"}]},
        {"type": "tool_result", "tool_use_id": t1.calls[1][0], "content": "12:00"}]}]
    t2 = call(oai, ant, "messages", up, "json", "", tools=True, history=history)
    assert t2.text == FOLLOWUP
    rec = upstream.find(nonce)[1]
    _, turns = upstream_view(rec)
    results = turns[-1]
    assert results[0] == "tool"
    assert [r[1] for r in results[1]] == [t1.calls[0][0], t1.calls[1][0]]
    assert "city not found" in results[1][0][2]
    if up == "claude-up":
        assert rec.body["messages"][-1]["content"][0]["is_error"] is True


# --- Responses: previous_response_id served by the gateway's store ------------------------------


@pytest.mark.parametrize("mode", ["json", "stream"])
@pytest.mark.parametrize("up", UPSTREAMS)
def test_previous_response_id_tool_round_trip(up: str, mode: str, oai: openai.OpenAI,
                                              ant: anthropic.Anthropic,
                                              upstream: FakeUpstream) -> None:
    user, nonce = prompt("tools")
    t1 = call(oai, ant, "responses", up, mode, user, tools=True)
    assert len(t1.calls) == 2
    rid = (t1.raw[-1].response if mode == "stream" else t1.raw).id
    assert rid != "resp_68a0fake01", "the client must see the gateway's response id"
    # turn 2: only the tool outputs; the history comes from the gateway's store.
    # instructions are not inherited through previous_response_id: send them again.
    t2 = call(oai, ant, "responses", up, mode, "", tools=True,
              history=tool_results("responses", t1.calls), previous_response_id=rid)
    assert t2.text == FOLLOWUP
    rec = upstream.find(nonce)[1]
    assert "previous_response_id" not in rec.body, "the upstream never saw the gateway's id"
    system, turns = upstream_view(rec)
    assert system == SYSTEM
    ids = [c[0] for c in t1.calls]
    assert turns[0] == ("user", [("text", user)])
    assert turns[1][0] == "assistant"
    assert [i for i in turns[1][1] if i[0] == "call"] == [
        ("call", ids[0], "get_weather", {"city": "Paris"}), ("call", ids[1], "get_time", {})]
    assert turns[2] == ("tool", [("result", ids[0], TOOL_RESULTS[0]),
                                 ("result", ids[1], TOOL_RESULTS[1])])
    if up == "chat-up":
        assert ids == list(CHAT_CALL_IDS)
    elif up == "resp-up":
        assert ids == list(RESP_CALL_IDS)


# --- structured output ---------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"],
          "additionalProperties": False}


def client_json_schema(ingress: str) -> dict[str, Any]:
    if ingress == "chat":
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": SCHEMA, "strict": True}}}
    if ingress == "responses":
        return {"text": {"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA,
                                    "strict": True}}}
    return {"extra_body": {"output_config": {"format": {"type": "json_schema",
                                                        "schema": SCHEMA}}}}


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_json_schema_output(ingress: str, up: str, oai: openai.OpenAI, ant: anthropic.Anthropic,
                            upstream: FakeUpstream) -> None:
    user, nonce = prompt("text")
    t = call(oai, ant, ingress, up, "json", user, **client_json_schema(ingress))
    assert t.text == TEXT
    b = upstream.one(nonce).body
    if up == "chat-up":
        rf = b["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["schema"] == SCHEMA
        assert rf["json_schema"]["name"]
    elif up == "resp-up":
        f = b["text"]["format"]
        assert f["type"] == "json_schema" and f["schema"] == SCHEMA and f["name"]
    else:
        assert b["output_config"]["format"] == {"type": "json_schema", "schema": SCHEMA}
