"""The chaos fake checked against the official SDKs (and raw httpx where the wire bytes
matter): each scripted behaviour looks to a real client the way the vendor's own failure
would, and the fake's accounting sees what the client did."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.chaos import (
    ChaosUpstream,
    ContextTooLong,
    Fail,
    Garbage,
    Ok,
    ResetMidStream,
    Stall,
    answer_chunks,
    answer_text,
)

HI: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def module_fake() -> Iterator[ChaosUpstream]:
    with ChaosUpstream() as f:
        yield f


@pytest.fixture
def fake(module_fake: ChaosUpstream) -> ChaosUpstream:
    module_fake.reset()
    return module_fake


@pytest.fixture
def oai(fake: ChaosUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-chaos", max_retries=0) as c:
        yield c


@pytest.fixture
def ant(fake: ChaosUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-chaos", max_retries=0) as c:
        yield c


def sse_frames(fake: ChaosUpstream, path: str, body: dict[str, Any]) -> list[str]:
    """The raw SSE frames of one streamed answer (the body must end cleanly)."""
    with httpx.Client(timeout=10) as c:
        r = c.post(fake.url + path, json=body, headers={"x-api-key": "k",
                                                         "anthropic-version": "2023-06-01"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.endswith("\n\n")
    return r.text.removesuffix("\n\n").split("\n\n")


# --- Ok -----------------------------------------------------------------------------------------


def test_answer_chunks_name_the_model() -> None:
    assert answer_chunks("gpt-x") == ["cha", "os", ":g", "pt", "-x"]
    long = answer_chunks("m", Ok(chunks=20))
    assert len(long) == 20 and all(long) and "".join(long) == answer_text("m", Ok(chunks=20))
    assert answer_text("m", Ok(chunks=20)) == "chaos:m" + "." * 13
    assert answer_chunks("m", Ok(text="abcdef", chunks=3)) == ["ab", "cd", "ef"]
    with pytest.raises(ValueError):
        Ok(text="ab", chunks=3)


def test_openai_ok_json_and_stream(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.default("model-a", Ok(chunks=4, input_tokens=7, output_tokens=9))
    r = oai.chat.completions.create(model="model-a", messages=HI)
    assert r.choices[0].message.content == "chaos:model-a"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and (r.usage.prompt_tokens, r.usage.completion_tokens) == (7, 9)

    chunks = list(oai.chat.completions.create(model="model-a", messages=HI, stream=True,
                                              stream_options={"include_usage": True}))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and
             c.choices[0].delta.content]
    assert texts == answer_chunks("model-a", Ok(chunks=4))
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 16
    fake.wait_for(lambda: fake.streams_completed == 1)
    assert fake.streams_started == 1 and fake.streams_cancelled == 0


def test_openai_stream_wire_format(fake: ChaosUpstream) -> None:
    frames = sse_frames(fake, "/v1/chat/completions",
                        {"model": "m", "messages": HI, "stream": True,
                         "stream_options": {"include_usage": True}})
    assert all(f.startswith("data: ") for f in frames)
    assert frames[-1] == "data: [DONE]"
    usage = json.loads(frames[-2].removeprefix("data: "))
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 5
    first = json.loads(frames[0].removeprefix("data: "))
    assert first["choices"][0]["delta"]["role"] == "assistant" and first["usage"] is None
    # without include_usage: no usage chunk, and no "usage" key on the chunks
    plain = sse_frames(fake, "/v1/chat/completions", {"model": "m", "messages": HI,
                                                      "stream": True})
    assert plain[-1] == "data: [DONE]"
    assert all("usage" not in json.loads(f.removeprefix("data: ")) for f in plain[:-1])


def test_anthropic_ok_json_and_stream(fake: ChaosUpstream, ant: anthropic.Anthropic) -> None:
    m = ant.messages.create(model="claude-b", max_tokens=50, messages=HI)
    assert m.content[0].type == "text" and m.content[0].text == "chaos:claude-b"
    assert m.stop_reason == "end_turn" and m.usage.output_tokens == 5
    with ant.messages.stream(model="claude-b", max_tokens=50, messages=HI) as s:
        texts = list(s.text_stream)
        final = s.get_final_message()
    assert texts == answer_chunks("claude-b")
    assert final.usage.input_tokens == 10 and final.usage.output_tokens == 5
    frames = sse_frames(fake, "/v1/messages", {"model": "claude-b", "max_tokens": 5,
                                               "messages": HI, "stream": True})
    names = [f.split("\n")[0].removeprefix("event: ") for f in frames]
    assert names == ["message_start", "content_block_start", "ping",
                     *["content_block_delta"] * 5,
                     "content_block_stop", "message_delta", "message_stop"]


# --- scripting and the request log ---------------------------------------------------------------


def test_script_runs_in_order_then_default(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.script("model-a", [Fail(503), Fail(429, retry_after=0.2), Ok()])
    fake.default("model-a", Fail(500))
    fake.default(None, ContextTooLong())
    with pytest.raises(openai.InternalServerError) as e503:
        oai.chat.completions.create(model="model-a", messages=HI)
    assert e503.value.status_code == 503
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="model-a", messages=HI)
    assert fake.pending("model-a") == 1
    ok = oai.chat.completions.create(model="model-a", messages=HI)
    assert ok.choices[0].message.content == "chaos:model-a"
    with pytest.raises(openai.InternalServerError) as e500:
        oai.chat.completions.create(model="model-a", messages=HI)
    assert e500.value.status_code == 500
    with pytest.raises(openai.BadRequestError):  # another model: the catch-all default
        oai.chat.completions.create(model="model-z", messages=HI)

    assert fake.count("model-a") == 4 and fake.count() == 5
    reqs = fake.requests("model-a")
    assert [r.behaviour for r in reqs] == [Fail(503), Fail(429, retry_after=0.2), Ok(),
                                           Fail(500)]
    assert all(r.path == "/v1/chat/completions" and r.body["messages"] == HI for r in reqs)
    assert reqs[0].headers["authorization"] == "Bearer sk-chaos"
    fake.reset()
    assert fake.count() == 0 and fake.pending("model-a") == 0
    assert oai.chat.completions.create(model="model-a", messages=HI).choices[0].message.content


def test_request_without_model_is_rejected(fake: ChaosUpstream) -> None:
    r = httpx.post(fake.url + "/v1/messages", content=b"not json", timeout=5)
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert fake.requests()[0].body is None


# --- errors --------------------------------------------------------------------------------------


def test_rate_limit_with_retry_after(fake: ChaosUpstream, oai: openai.OpenAI,
                                     ant: anthropic.Anthropic) -> None:
    fake.script("m", [Fail(429, retry_after=0.2)])
    with pytest.raises(openai.RateLimitError) as oe:
        oai.chat.completions.create(model="m", messages=HI, stream=True)
    assert oe.value.response.headers["retry-after"] == "0.2"
    assert oe.value.response.headers["retry-after-ms"] == "200"
    assert oe.value.code == "rate_limit_exceeded"

    fake.script("c", [Fail(429, retry_after=3)])
    with pytest.raises(anthropic.RateLimitError) as ae:
        ant.messages.create(model="c", max_tokens=5, messages=HI)
    assert ae.value.response.headers["retry-after"] == "3"
    assert ae.value.response.headers["retry-after-ms"] == "3000"
    assert ae.value.body == {"type": "error", "error": {
        "type": "rate_limit_error", "message": "Number of request tokens has exceeded your "
                                              "per-minute rate limit"},
        "request_id": "req_011CchaosRequest"}
    assert fake.streams_started == 0  # an error status never starts a stream


def test_vendor_error_types(fake: ChaosUpstream, oai: openai.OpenAI,
                            ant: anthropic.Anthropic) -> None:
    fake.script("c", [Fail(529), ContextTooLong(), Fail(403, message="nope",
                                                         error_type="billing_error")])
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        ant.messages.create(model="c", max_tokens=5, messages=HI)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
        ant.messages.create(model="c", max_tokens=5, messages=HI, stream=True)
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        ant.messages.create(model="c", max_tokens=5, messages=HI)
    assert denied.value.body["error"] == {"type": "billing_error",  # type: ignore[index]
                                          "message": "nope"}

    fake.script("m", [ContextTooLong()])
    with pytest.raises(openai.BadRequestError) as too_long:
        oai.chat.completions.create(model="m", messages=HI)
    assert too_long.value.code == "context_length_exceeded"
    assert too_long.value.param == "messages"


# --- broken streams ------------------------------------------------------------------------------


def test_reset_mid_stream(fake: ChaosUpstream, oai: openai.OpenAI,
                          ant: anthropic.Anthropic) -> None:
    fake.default("m", ResetMidStream(after_chunks=2))
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for c in oai.chat.completions.create(model="m", messages=HI, stream=True):
            got.append(c.choices[0].delta.content or "")
    assert "".join(got) == "".join(answer_chunks("m", Ok())[:2])
    with pytest.raises(openai.APIConnectionError):  # non-stream: half a body, then the cut
        oai.chat.completions.create(model="m", messages=HI)

    fake.default("c", ResetMidStream(after_chunks=3))
    texts: list[str] = []
    with (pytest.raises(Exception, match="incomplete chunked read"),
          ant.messages.stream(model="c", max_tokens=5, messages=HI) as s):
        texts.extend(s.text_stream)
    assert texts == answer_chunks("c")[:3]
    fake.wait_for(lambda: fake.streams_reset == 2, what="two resets counted")
    assert fake.streams_completed == 0 and fake.streams_cancelled == 0
    assert [r.outcome for r in fake.requests()] == ["reset"] * 3


def test_garbage_frame(fake: ChaosUpstream, oai: openai.OpenAI,
                       ant: anthropic.Anthropic) -> None:
    fake.default("m", Garbage(after_chunks=1))
    got: list[str] = []
    with pytest.raises(json.JSONDecodeError):
        for c in oai.chat.completions.create(model="m", messages=HI, stream=True):
            got.append(c.choices[0].delta.content or "")
    assert "".join(got) == answer_chunks("m")[0]
    with (pytest.raises(json.JSONDecodeError),
          ant.messages.stream(model="m", max_tokens=5, messages=HI) as s):
        list(s.text_stream)

    # on the wire: the bad frame, then (resume=True) the rest and the terminator
    frames = sse_frames(fake, "/v1/chat/completions", {"model": "m", "messages": HI,
                                                       "stream": True})
    assert frames[2] == "data: {this is not json" and frames[-1] == "data: [DONE]"
    fake.default("m", Garbage(after_chunks=2, resume=False))
    frames = sse_frames(fake, "/v1/chat/completions", {"model": "m", "messages": HI,
                                                       "stream": True})
    assert len(frames) == 4 and frames[-1] == "data: {this is not json"

    fake.default("m", Garbage())
    with pytest.raises(json.JSONDecodeError):  # non-stream: a 200 whose body is not JSON
        oai.chat.completions.create(model="m", messages=HI)


def test_stall_before_headers(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.default("m", Stall())
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.3).chat.completions.create(model="m", messages=HI,
                                                              stream=True)
    fake.wait_for(lambda: fake.streams_cancelled == 1, what="the stalled stream cancelled")
    assert fake.streams_started == 1 and fake.requests()[0].outcome == "cancelled"


def test_stall_after_chunks(fake: ChaosUpstream, ant: anthropic.Anthropic) -> None:
    fake.default("c", Stall(after_chunks=2))
    texts: list[str] = []
    # the SDK leaves a read timeout during iteration unwrapped (its HTTP library's ReadTimeout)
    with (pytest.raises(Exception, match="timed out") as timeout,
          ant.with_options(timeout=0.3).messages.stream(model="c", max_tokens=5,
                                                        messages=HI) as s):
        texts.extend(s.text_stream)
    assert type(timeout.value).__name__ == "ReadTimeout"
    assert texts == answer_chunks("c")[:2]
    fake.wait_for(lambda: fake.streams_cancelled == 1, what="the stalled stream cancelled")


def test_latency_delays_the_answer(fake: ChaosUpstream, oai: openai.OpenAI) -> None:
    fake.script("m", [Ok(latency=5), Ok()])
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.2).chat.completions.create(model="m", messages=HI)
    assert oai.chat.completions.create(model="m", messages=HI).choices[0].message.content


# --- accounting ----------------------------------------------------------------------------------


def test_client_disconnect_is_counted(fake: ChaosUpstream) -> None:
    fake.default("slow", Ok(chunks=1000, chunk_delay=0.05))
    with httpx.Client(timeout=10) as c, c.stream(
            "POST", fake.url + "/v1/chat/completions",
            json={"model": "slow", "messages": HI, "stream": True}) as r:
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
        assert fake.open_connections == 1 and fake.streams_started == 1
    fake.wait_for(lambda: fake.streams_cancelled == 1, timeout=3, what="cancel counted")
    fake.wait_for(lambda: fake.open_connections == 0, timeout=3, what="connection closed")
    assert fake.streams_completed == 0 and fake.requests()[0].outcome == "cancelled"


def test_stop_ends_stalled_handlers() -> None:
    fake = ChaosUpstream(fallback=Stall())
    fake.start()
    errors: list[BaseException] = []

    def call(stream: bool) -> None:
        try:
            httpx.post(fake.url + "/v1/messages", timeout=30,
                       json={"model": "c", "max_tokens": 5, "messages": HI, "stream": stream})
        except httpx.HTTPError as e:
            errors.append(e)

    fake.script("c", [Stall(after_chunks=1)])
    threads = [threading.Thread(target=call, args=(s,)) for s in (True, False)]
    for t in threads:
        t.start()
    fake.wait_for(lambda: fake.count() == 2)
    fake.stop()  # must not wait for the stalled handlers
    for t in threads:
        t.join(5)
    assert len(errors) == 2
    assert [r.outcome for r in fake.requests()] == ["stopped", "stopped"]
    assert fake.streams_cancelled == 0
