"""A fake OpenAI Chat upstream that streams at a set pace (for TTFT and chunk pacing).

    python bench/paced_sse.py --port P

``POST /paced/v1/chat/completions`` with ``"model": "paced-<chunks>x<delay_ms>"``: the
first content chunk leaves at once, then one chunk every ``delay_ms``, each in its own
write; then the finish chunk, a usage chunk and ``[DONE]``. The pace travels in the model
name because every target forwards it (dragoman and LiteLLM map their alias to it) while
they may drop unknown body fields. Without ``"stream": true`` the answer is one JSON body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

from aiohttp import web


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()

_PACE = re.compile(r"paced-(\d+)x(\d+)")
_HEAD = ('{"id":"chatcmpl-paced","object":"chat.completion.chunk","created":1700000000,'
         '"model":"paced","choices":[')


def _chunk(i: int) -> bytes:
    role = '"role":"assistant",' if i == 0 else ""
    return (f'data: {_HEAD}{{"index":0,"delta":{{{role}"content":"tok{i} "}},'
            '"finish_reason":null}]}\n\n').encode()


_FINISH = (f'data: {_HEAD}{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}\n\n').encode()


def _usage(n: int) -> bytes:
    return ('data: {"id":"chatcmpl-paced","object":"chat.completion.chunk",'
            '"created":1700000000,"model":"paced","choices":[],"usage":{"prompt_tokens":5,'
            f'"completion_tokens":{n},"total_tokens":{n + 5}}}}}\n\ndata: [DONE]\n\n').encode()


def _completion(n: int) -> bytes:
    text = "".join(f"tok{i} " for i in range(n))
    return json.dumps({
        "id": "chatcmpl-paced", "object": "chat.completion", "created": 1700000000,
        "model": "paced", "choices": [{"index": 0, "message": {"role": "assistant",
                                                               "content": text},
                                       "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5},
    }).encode()


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    m = _PACE.search(str(body.get("model", "")))
    chunks, delay = (int(m.group(1)), int(m.group(2)) / 1000) if m else (20, 0.01)
    if not body.get("stream"):
        await asyncio.sleep(delay * chunks)
        return web.Response(body=_completion(chunks), content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    # Pace against a schedule, not sleep after sleep: a late wake-up does not shift every
    # later chunk, so the gaps the client sees are the upstream's intended pace.
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(chunks):
        if i:
            await asyncio.sleep(max(0.0, t0 + i * delay - loop.time()))
        await resp.write(_chunk(i))
    await resp.write(_FINISH + _usage(chunks))
    await resp.write_eof()
    return resp


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    app = web.Application()
    app.router.add_post("/paced/v1/chat/completions", chat)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None,
                backlog=4096, loop=new_loop())


if __name__ == "__main__":
    main()
