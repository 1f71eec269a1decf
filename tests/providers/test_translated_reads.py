"""A translated Chat stream (Chat client → ``openai`` upstream, ``passthrough: false``)
whose upstream reads carry many frames is read a read at once (``SseDecoder.data_frames``,
the Chat parser's ``feed_data``, the renderer's ``feed_texts``); every read of another
shape — a tool call, usage mid-stream, two choices, an error chunk, a keep-alive comment,
CRLF line ends, frames cut between reads — falls back to a frame at a time. Over real
sockets (a fake upstream writing exact bytes, ``dragoman serve``, a raw HTTP client), the
client must get exactly the bytes a frame-at-a-time translation of the same upstream bytes
gives."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from dragoman.dialects import openai_chat
from dragoman.dialects.contract import RenderContext
from dragoman.net import SseDecoder
from tests.fakes.server import ThreadedServer
from tests.gateway_proc import run_gateway


def _data(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + json.dumps({"id": "up", "object": "chat.completion.chunk",
                                   "created": 1, "model": "up-model", "choices": choices,
                                   **extra}).encode() + b"\n\n"


ROLE = _data({"role": "assistant", "content": ""})
TEXTS = ["Hello", ' "quoted", ', "\\ back", "é 😀", ",", '","', " end"]
WORDS = b"".join(_data({"content": t}) for t in TEXTS)
STOP = _data({}, "stop")
USAGE = _data(None, usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12})
DONE = b"data: [DONE]\n\n"
CALL = (_data({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "lookup", "arguments": ""}}]})
        + _data({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":1}'}}]}))
TWO_CHOICES = b"data: " + json.dumps({"choices": [
    {"index": 0, "delta": {"content": "zero"}, "finish_reason": None},
    {"index": 1, "delta": {"content": "one"}, "finish_reason": None}]}).encode() + b"\n\n"
ERROR = b'data: {"error":{"message":"the upstream is overloaded","type":"server_error"}}\n\n'

_WHOLE = ROLE + WORDS + STOP + USAGE + DONE

#: upstream model name → the body's parts, each in its own write (so its own read)
SCENARIOS: dict[str, list[bytes]] = {
    "one-read": [_WHOLE],
    "tool-call-mid-read": [ROLE + WORDS + CALL + WORDS + _data({}, "tool_calls") + DONE],
    "usage-and-two-choices": [ROLE + WORDS + TWO_CHOICES
                              + _data({"content": "u"}, usage={"prompt_tokens": 1,
                                                               "completion_tokens": 1})
                              + WORDS + STOP + USAGE + DONE],
    "cut-between-reads": [_WHOLE[:31], _WHOLE[31:200], _WHOLE[200:470], _WHOLE[470:]],
    "keep-alive-and-crlf": [ROLE + b": keep-alive\n\n" + WORDS, WORDS,
                            WORDS.replace(b"\n", b"\r\n"), STOP + USAGE + DONE],
    "error-mid-read": [ROLE + WORDS + ERROR + WORDS + STOP + DONE],
}


class _Upstream(ThreadedServer):
    """Answers a streamed Chat request with its model's scenario, part by part."""

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        parts = SCENARIOS[(await request.json())["model"]]
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for part in parts:
            await resp.write(part)
            await asyncio.sleep(0.05)  # (the next part comes in a read of its own)
        await resp.write_eof()
        return resp


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _Upstream() as up:
        models = [{"name": name, "provider": "openai", "model": name,
                   "base_url": up.url + "/v1", "api_key": "sk-up", "passthrough": False}
                  for name in SCENARIOS]
        with run_gateway({"models": models}, tmp_path_factory.mktemp("reads")) as base:
            yield base


def _frame_at_a_time(parts: list[bytes], body: dict[str, Any], ctx_from: bytes) -> bytes:
    """The same upstream bytes translated as before: the SSE decoder's ``feed``, the
    parser's ``feed`` and the renderer's ``feed`` per frame and per event, in the gateway's
    answer's id and time."""
    first = json.loads(ctx_from.split(b"\n", 1)[0].removeprefix(b"data: "))
    renderer = openai_chat.DIALECT.stream_renderer(RenderContext(
        id=first["id"], model=body["model"], created=first["created"],
        request=openai_chat.DIALECT.parse_request(body)))
    decoder, parser = SseDecoder(), openai_chat.DIALECT.stream_parser()
    out = [renderer.start()]
    for part in parts:
        for name, data in decoder.feed(part):
            out += map(renderer.feed, parser.feed(name, data))
    out += map(renderer.feed, parser.close())
    return b"".join(out)


@pytest.mark.parametrize("usage", [True, False])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_translated_reads_give_the_frames_of_a_frame_at_a_time(
        gateway: str, name: str, usage: bool) -> None:
    body: dict[str, Any] = {"model": name, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]}
    if usage:
        body["stream_options"] = {"include_usage": True}
    req = urllib.request.Request(gateway + "/v1/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        got = resp.read()
    assert got == _frame_at_a_time(SCENARIOS[name], body, got)
    # and, independently of any renderer: every word the upstream sent for choice 0
    texts = [json.loads(f[6:])["choices"][0]["delta"].get("content", "")
             for f in got.split(b"\n\n") if f.startswith(b"data: {\"id\"")
             and json.loads(f[6:])["choices"]]
    assert "".join(TEXTS) in "".join(texts)
    if name == "error-mid-read":
        assert b"the upstream is overloaded" in got and "".join(texts) == "".join(TEXTS)
    else:
        assert got.endswith(b"data: [DONE]\n\n")
