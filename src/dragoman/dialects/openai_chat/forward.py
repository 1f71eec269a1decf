"""OpenAI Chat forwarded as is: always, except that a streaming request asks the upstream
for usage (``stream_options.include_usage``). When the client did not ask for it, the
final usage-only chunk is withheld from the client (the other chunks then carry
``"usage": null``, which the SDKs read as absent)."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core import ChatRequest, DragomanError, StreamError, Usage
from ..forwarding import NO_CONTEXT, ForwardRules, StreamRules
from .render_stream import StreamRenderer
from .wire import parse_usage


class _Chunk(msgspec.Struct):
    usage: Any = None
    choices: list[msgspec.Raw] | None = None


_CHUNK = msgspec.json.Decoder(_Chunk)


class ChatForward(ForwardRules):
    def request(self, body: dict[str, Any], req: ChatRequest,
                model: str) -> tuple[dict[str, Any], bool] | None:
        up = dict(body)
        up["model"] = model
        withhold = False
        if body.get("stream") is True:
            so = body.get("stream_options")
            if not (isinstance(so, dict) and so.get("include_usage") is True):
                up["stream_options"] = {**(so if isinstance(so, dict) else {}),
                                        "include_usage": True}
                withhold = True
        return up, withhold

    def usage_of(self, raw: Any) -> Usage | None:
        return parse_usage(raw)

    def stream(self, withhold_usage: bool) -> ChatStream:
        return ChatStream(withhold_usage)


class ChatStream(StreamRules):
    __slots__ = ("withhold_usage",)

    def __init__(self, withhold_usage: bool) -> None:
        self.usage = None
        self.withhold_usage = withhold_usage

    def read(self, data: bytes) -> bool:
        try:  # (``forwarding.decoded``, inline: this rule's stream calls nothing there)
            chunk = _CHUNK.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return True
        if chunk.usage is None:
            return True
        usage = parse_usage(chunk.usage)
        if usage is not None:
            self.usage = usage
        return not (self.withhold_usage and not chunk.choices)

    def is_terminal(self, event: bytes | None, data: bytes) -> bool:
        return data == b"[DONE]"

    def ended_in_error(self, event: bytes | None, data: bytes | None) -> bool:
        # Asked only once the stream reached its terminal frame, and Chat's one terminal
        # frame is ``[DONE]``: never the error frame ``StreamRules``' check looks for.
        return False

    def failure(self, err: DragomanError, first: bytes | None, last: bytes | None) -> bytes:
        if last is not None and last.startswith(b'{"error"'):
            return b"data: [DONE]\n\n"  # the upstream said why; only the end is missing
        return StreamRenderer(NO_CONTEXT).feed(StreamError(error=err))


FORWARD = ChatForward()
