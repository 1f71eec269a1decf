"""A provider stream keeps its upstream connection for the next request when its consumer
stops at the terminal event (as the server's pump does) with the upstream's last bytes
still on the way, and closes it when the consumer leaves before the end (which is what
stops the upstream generating)."""

from __future__ import annotations

import asyncio

from dragoman.core import Finish, TextDelta
from dragoman.dialects import openai_chat
from dragoman.providers.openai import OpenAIChat
from tests.fakes.raw_server import Peer, RawServer

_CHUNK = ('{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":'
          '[{"index":0,"delta":%s,"finish_reason":%s}]}')


def _frame(data: str) -> bytes:
    raw = f"data: {data}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(raw), raw)


async def _stream_answer(p: Peer, *, tail_delay: float, pace: float = 0.0) -> None:
    await p.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    for i in range(3):
        await p.send(_frame(_CHUNK % (f'{{"content":"tok{i} "}}', "null")))
        if pace:
            await asyncio.sleep(pace)
    usage = ('{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
             '"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":3,'
             '"total_tokens":6}}')
    await p.send(_frame(_CHUNK % ("{}", '"stop"')) + _frame(usage) + _frame("[DONE]"))
    await asyncio.sleep(tail_delay)  # the end of the chunked body comes a little later
    await p.send(b"0\r\n\r\n")


def _request() -> object:
    return openai_chat.DIALECT.parse_request(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})


async def test_consumer_stopping_at_finish_keeps_the_connection() -> None:
    async def script(p: Peer) -> None:
        while await p.request() is not None:
            await _stream_answer(p, tail_delay=0.05)

    async with RawServer(script) as srv:
        provider = OpenAIChat(model="m", base_url=srv.url + "/v1", api_key="sk-up")
        try:
            for _ in range(3):
                events = provider.stream(_request())  # type: ignore[arg-type]
                texts = []
                async for ev in events:  # the server's pump stops at the terminal event
                    if isinstance(ev, TextDelta):
                        texts.append(ev.text)
                    if isinstance(ev, Finish):
                        break
                await events.aclose()  # type: ignore[attr-defined]
                assert "".join(texts) == "tok0 tok1 tok2 "
                # the connection is handed back once the end of the body is in
                await asyncio.sleep(0.1)
        finally:
            await provider.aclose()
        assert len(srv.requests) == 3
        assert srv.accepted == 1


async def test_consumer_leaving_mid_stream_closes_the_connection() -> None:
    async def script(p: Peer) -> None:
        while await p.request() is not None:
            await _stream_answer(p, tail_delay=0.0, pace=0.1)

    async with RawServer(script) as srv:
        provider = OpenAIChat(model="m", base_url=srv.url + "/v1", api_key="sk-up")
        try:
            events = provider.stream(_request())  # type: ignore[arg-type]
            async for ev in events:
                if isinstance(ev, TextDelta):
                    break  # the client left after the first token
            await events.aclose()  # type: ignore[attr-defined]
            deadline = asyncio.get_running_loop().time() + 2
            while srv.closed_by_client != [0]:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.01)
            events = provider.stream(_request())  # type: ignore[arg-type]
            assert [ev async for ev in events if isinstance(ev, Finish)]
        finally:
            await provider.aclose()
        assert srv.accepted == 2
