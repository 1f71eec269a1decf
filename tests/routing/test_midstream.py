"""Failures after the first event: the client gets the text streamed so far and then its
dialect's error (Chat error frame, Responses ``response.failed``, Anthropic ``event:
error``) — never a clean finish, never a hang — and nothing is retried, although the
routes allow retries.

Every ingress dialect is driven through its official SDK, on an upstream of each dialect:
``chat → ms-oai`` and ``messages → ms-ant`` take the same-dialect pass-through, the other
pairs are translated. Raw httpx checks the frames the SDKs hide.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import anthropic
import httpx
import openai
import pytest

from tests.fakes.chaos import (
    Behaviour,
    ChaosUpstream,
    Garbage,
    Ok,
    ResetMidStream,
    Stall,
    answer_chunks,
    answer_text,
)

from .support import CLIENT_TIMEOUT, HI, Config, ant_dep, oai_dep

IDLE, TOTAL = 0.4, 0.8
RETRY = {"retries": 2, "backoff": 0.01}
#: A stream that outlives ``TOTAL`` without ever being idle for ``IDLE``.
LONG = Ok(chunks=40, chunk_delay=0.05)


@pytest.fixture(scope="module")
def gateway(chaos: ChaosUpstream, gateways: Callable[[Config], str]) -> str:
    timeouts = {"idle": IDLE, "total": TOTAL}
    return gateways({"models": [
        {"name": "ms-oai", **oai_dep(chaos, "ms-oai-up", timeouts=timeouts), "retry": RETRY},
        {"name": "ms-oai-tr", **oai_dep(chaos, "ms-oai-tr-up", timeouts=timeouts,
                                        passthrough=False), "retry": RETRY},
        {"name": "ms-ant", **ant_dep(chaos, "ms-ant-up", timeouts=timeouts), "retry": RETRY},
    ]})


@dataclass
class Got:
    """What a client read from a stream that broke: the text, and how it ended."""

    text: str
    error: str  # the dialect's error: its type (Anthropic) or code/event


def via_chat(oai: openai.OpenAI, model: str) -> Got:
    text = []
    # the SDK raises on the error frame
    with (pytest.raises(openai.APIError) as e,
          oai.chat.completions.create(model=model, messages=HI, stream=True) as s):
        for c in s:
            if c.choices:
                text.append(c.choices[0].delta.content or "")
    assert not isinstance(e.value, openai.APIConnectionError)  # an answer, not a cut
    assert isinstance(e.value.body, dict)
    return Got("".join(text), f"{e.value.body['type']}/{e.value.code}")


def via_responses(oai: openai.OpenAI, model: str) -> Got:
    text, types = [], []
    with oai.responses.create(model=model, input="hi", stream=True, store=False) as s:
        for ev in s:
            types.append(ev.type)
            if ev.type == "response.output_text.delta":
                text.append(ev.delta)
            if ev.type == "response.failed":
                failed = ev
    assert types[0] == "response.created" and types[-1] == "response.failed"
    assert "response.completed" not in types
    assert failed.response.status == "failed" and failed.response.error is not None
    return Got("".join(text), f"response.failed/{failed.response.error.code}")


def via_messages(ant: anthropic.Anthropic, model: str) -> Got:
    text = []
    # the SDK raises on event: error
    with (pytest.raises(anthropic.APIStatusError) as e,
          ant.messages.create(model=model, max_tokens=50, messages=HI, stream=True) as s):
        for ev in s:
            assert ev.type != "message_stop"
            if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                text.append(ev.delta.text)
    assert isinstance(e.value.body, dict)
    return Got("".join(text), e.value.body["error"]["type"])


INGRESS = ["chat", "responses", "messages"]
#: (ingress, route): every ingress dialect on both upstream dialects
PATHS = [("chat", "ms-oai"), ("chat", "ms-ant"), ("responses", "ms-oai"),
         ("responses", "ms-ant"), ("messages", "ms-ant"), ("messages", "ms-oai")]
#: the error each ingress dialect shows for a broken connection / a timeout
BROKEN = {"chat": "server_error/None", "responses": "response.failed/server_error",
          "messages": "api_error"}
TIMED_OUT = {"chat": "server_error/timeout", "responses": "response.failed/server_error",
             "messages": "timeout_error"}


@dataclass(frozen=True)
class Break:
    behaviour: Behaviour
    errors: dict[str, str]


BREAKS = {
    "reset": Break(ResetMidStream(after_chunks=2), BROKEN),
    "idle": Break(Stall(after_chunks=2), TIMED_OUT),
    "total": Break(LONG, TIMED_OUT),
}


def run(ingress: str, oai: openai.OpenAI, ant: anthropic.Anthropic, route: str) -> Got:
    if ingress == "chat":
        return via_chat(oai, route)
    if ingress == "responses":
        return via_responses(oai, route)
    return via_messages(ant, route)


def partial(up: str) -> str:
    """The text a broken behaviour with ``after_chunks=2`` streams before it breaks (the
    fake cuts its default answer in five)."""
    return "".join(answer_chunks(up, Ok(chunks=5))[:2])


def check_single_upstream_request(fake: ChaosUpstream, up: str) -> None:
    """No retry once the stream started, and the upstream request is over."""
    assert fake.count() == 1 and fake.count(up) == 1
    req = fake.requests(up)[0]
    assert req.stream
    fake.wait_for(lambda: req.outcome is not None, what="the upstream request ended")


@pytest.mark.parametrize("kind", list(BREAKS))
@pytest.mark.parametrize(("ingress", "route"), PATHS, ids=[f"{i}-{r}" for i, r in PATHS])
def test_failure_after_the_first_event(fake: ChaosUpstream, oai: openai.OpenAI,
                                       ant: anthropic.Anthropic, ingress: str, route: str,
                                       kind: str) -> None:
    up = f"{route}-up"
    brk = BREAKS[kind]
    fake.default(up, brk.behaviour)
    got = run(ingress, oai, ant, route)
    assert got.error == brk.errors[ingress]
    if kind == "total":
        # cut off by the total time limit, after some text and before the end
        full = answer_text(up, LONG)
        assert got.text and full.startswith(got.text) and got.text != full
    else:
        assert got.text == partial(up)
    check_single_upstream_request(fake, up)
    if kind != "reset":  # the gateway gave up on the upstream and closed its connection
        fake.wait_for(lambda: fake.requests(up)[0].outcome == "cancelled",
                      what="the upstream stream closed")


@pytest.mark.parametrize("ingress", INGRESS)
def test_garbage_frame_after_the_first_event(fake: ChaosUpstream, oai: openai.OpenAI,
                                             ant: anthropic.Anthropic, ingress: str) -> None:
    """A frame that is not JSON, then the rest of a good stream: the translating path reads
    every frame, so the stream ends there with an error (the pass-through forwards frames
    unread: see passthrough.py)."""
    up = "ms-oai-tr-up"
    fake.default(up, Garbage(after_chunks=2))
    got = run(ingress, oai, ant, "ms-oai-tr")
    assert got.error == BROKEN[ingress]
    assert got.text == partial(up)
    check_single_upstream_request(fake, up)


def test_garbage_on_the_pass_through_is_no_clean_finish(fake: ChaosUpstream,
                                                        oai: openai.OpenAI) -> None:
    """The pass-through forwards frames unread (its point: no decode per chunk), so the
    client's SDK meets the bad frame itself and refuses it; what it must not get is a
    stream that quietly ends well without it."""
    fake.default("ms-oai-up", Garbage(after_chunks=2))
    text = []
    with (pytest.raises(json.JSONDecodeError),
          oai.chat.completions.create(model="ms-oai", messages=HI, stream=True) as s):
        for c in s:
            if c.choices:
                text.append(c.choices[0].delta.content or "")
    assert "".join(text) == partial("ms-oai-up")
    check_single_upstream_request(fake, "ms-oai-up")


def test_garbage_from_an_anthropic_upstream_ends_in_error(fake: ChaosUpstream,
                                                         oai: openai.OpenAI,
                                                         ant: anthropic.Anthropic) -> None:
    fake.default("ms-ant-up", Garbage(after_chunks=2))
    got = via_chat(oai, "ms-ant")  # translated: the gateway parses every upstream frame
    assert got.error == BROKEN["chat"]


# --- the frames on the wire ------------------------------------------------------------------


def frames(gateway: str, path: str, body: dict[str, object]) -> list[tuple[str | None, str]]:
    """(event name, data) of each SSE frame of one streamed answer."""
    headers = {"authorization": "Bearer sk-client", "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=CLIENT_TIMEOUT) as c:
        r = c.post(gateway + path, json=body, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    out = []
    for frame in r.text.strip().split("\n\n"):
        event = None
        data = []
        for line in frame.split("\n"):
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        out.append((event, "\n".join(data)))
    return out


@pytest.mark.parametrize("route", ["ms-oai", "ms-ant"])
def test_chat_frames(fake: ChaosUpstream, gateway: str, route: str) -> None:
    fake.default(f"{route}-up", ResetMidStream(after_chunks=2))
    got = frames(gateway, "/v1/chat/completions",
                 {"model": route, "messages": HI, "stream": True})
    (_, error), (_, done) = got[-2:]
    assert json.loads(error)["error"]["type"] == "server_error" and done == "[DONE]"
    finishes = [json.loads(d)["choices"][0]["finish_reason"] for _, d in got[:-2]]
    assert set(finishes) == {None}  # nothing said the answer was complete


@pytest.mark.parametrize("route", ["ms-oai", "ms-ant"])
def test_responses_frames(fake: ChaosUpstream, gateway: str, route: str) -> None:
    fake.default(f"{route}-up", ResetMidStream(after_chunks=2))
    got = frames(gateway, "/v1/responses",
                 {"model": route, "input": "hi", "stream": True, "store": False})
    events = [e for e, _ in got]
    assert events[0] == "response.created" and events[-1] == "response.failed"
    assert "response.completed" not in events and "response.incomplete" not in events
    failed = json.loads(got[-1][1])
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    seqs = [json.loads(d)["sequence_number"] for _, d in got]
    assert seqs == list(range(len(got)))


@pytest.mark.parametrize("route", ["ms-ant", "ms-oai"])
def test_messages_frames(fake: ChaosUpstream, gateway: str, route: str) -> None:
    fake.default(f"{route}-up", ResetMidStream(after_chunks=2))
    got = frames(gateway, "/v1/messages",
                 {"model": route, "messages": HI, "max_tokens": 50, "stream": True})
    events = [e for e, _ in got]
    assert events[0] == "message_start" and events[-1] == "error"
    assert "message_stop" not in events and "message_delta" not in events
    error = json.loads(got[-1][1])
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert "upstream stream broke" in error["error"]["message"]
