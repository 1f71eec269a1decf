"""A fake upstream whose streams break: the three vendor stream grammars (hand-written
frames, as in docs/protocols/*.md), stopped part-way.

``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/messages`` (streaming only) send
their opening frames and one text delta (``PARTIAL``), then, depending on the last user
message:

``scenario:cut``         the TCP connection is aborted (no clean end of the body)
``scenario:noterminal``  the body ends cleanly but without the terminal event
                         (``[DONE]`` / ``response.completed`` / ``message_stop``)
``scenario:split``       the whole stream, complete, written in 7-byte pieces (frames cut
                         anywhere, CRLF line ends): a scanner must reassemble them
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

PARTIAL = "Partial ans"
CHAT_ID, RESP_ID, MSG_ID = "chatcmpl-cut01", "resp_cut01", "msg_cut01"
USAGE = {"in": 17, "out": 5}


def _j(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def chat_frames() -> tuple[list[bytes], list[bytes]]:
    """(frames up to the partial text, the frames that complete the stream)."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return f"data: {_j({'id': CHAT_ID, 'object': 'chat.completion.chunk', 'created': 1, 'model': 'm', 'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish}], 'usage': None})}\n\n".encode()
    head = [chunk({"role": "assistant", "content": ""}), chunk({"content": PARTIAL})]
    usage = {"prompt_tokens": USAGE["in"], "completion_tokens": USAGE["out"],
             "total_tokens": USAGE["in"] + USAGE["out"]}
    rest = [chunk({}, "stop"),
            f"data: {_j({'id': CHAT_ID, 'object': 'chat.completion.chunk', 'created': 1, 'model': 'm', 'choices': [], 'usage': usage})}\n\n".encode(),
            b"data: [DONE]\n\n"]
    return head, rest


def responses_frames() -> tuple[list[bytes], list[bytes]]:
    seq = iter(range(100))

    def ev(type_: str, **fields: Any) -> bytes:
        return f"event: {type_}\ndata: {_j({'type': type_, 'sequence_number': next(seq), **fields})}\n\n".encode()

    resp = {"id": RESP_ID, "object": "response", "created_at": 1, "status": "in_progress",
            "model": "m", "output": [], "usage": None, "error": None,
            "incomplete_details": None, "instructions": None, "tools": [],
            "parallel_tool_calls": True, "tool_choice": "auto", "metadata": {}}
    item = {"id": "msg_c1", "type": "message", "status": "in_progress", "role": "assistant",
            "content": []}
    head = [ev("response.created", response=resp), ev("response.in_progress", response=resp),
            ev("response.output_item.added", output_index=0, item=item),
            ev("response.content_part.added", item_id="msg_c1", output_index=0,
               content_index=0, part={"type": "output_text", "text": "", "annotations": []}),
            ev("response.output_text.delta", item_id="msg_c1", output_index=0,
               content_index=0, delta=PARTIAL, logprobs=[])]
    done_item = {**item, "status": "completed", "content": [
        {"type": "output_text", "text": PARTIAL, "annotations": []}]}
    rest = [ev("response.output_text.done", item_id="msg_c1", output_index=0, content_index=0,
               text=PARTIAL, logprobs=[]),
            ev("response.content_part.done", item_id="msg_c1", output_index=0,
               content_index=0, part=done_item["content"][0]),
            ev("response.output_item.done", output_index=0, item=done_item),
            ev("response.completed", response={
                **resp, "status": "completed", "output": [done_item],
                "usage": {"input_tokens": USAGE["in"], "output_tokens": USAGE["out"],
                          "total_tokens": USAGE["in"] + USAGE["out"],
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}})]
    return head, rest


def messages_frames() -> tuple[list[bytes], list[bytes]]:
    def ev(type_: str, **fields: Any) -> bytes:
        return f"event: {type_}\ndata: {_j({'type': type_, **fields})}\n\n".encode()

    head = [ev("message_start", message={
                "id": MSG_ID, "type": "message", "role": "assistant", "content": [],
                "model": "claude-x", "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": USAGE["in"], "output_tokens": 1,
                          "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}),
            ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            ev("ping"),
            ev("content_block_delta", index=0, delta={"type": "text_delta", "text": PARTIAL})]
    rest = [ev("content_block_stop", index=0),
            ev("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None},
               usage={"output_tokens": USAGE["out"]}),
            ev("message_stop")]
    return head, rest


FRAMES = {"/v1/chat/completions": chat_frames, "/v1/responses": responses_frames,
          "/v1/messages": messages_frames}


class CutUpstream(ThreadedServer):
    def add_routes(self, app: web.Application) -> None:
        for path in FRAMES:
            app.router.add_post(path, self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        text = (await request.read()).decode()
        head, rest = FRAMES[request.path]()
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        if "scenario:split" in text:
            blob = b"".join(head + rest).replace(b"\n", b"\r\n")
            for i in range(0, len(blob), 7):
                await resp.write(blob[i:i + 7])
            await resp.write_eof()
            return resp
        for f in head:
            await resp.write(f)
            await asyncio.sleep(0.01)
        if "scenario:cut" in text:
            if request.transport is not None:
                request.transport.abort()
            return resp
        await resp.write_eof()
        return resp
