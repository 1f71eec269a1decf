"""A fast, dependency-free token estimate (about four bytes of text per token), used for
``count_tokens`` when the upstream has no counting endpoint and for the echo model."""

from __future__ import annotations

import msgspec

from .content import File, Image, Text, Thinking, ToolCall, ToolResult
from .request import ChatRequest, Message

_IMAGE_TOKENS = 1000  # a typical mid-size image; only an estimate


def estimate_text(text: str) -> int:
    return (len(text.encode()) + 3) // 4


def estimate_messages(messages: list[Message]) -> int:
    n = 0
    for m in messages:
        n += 4  # role and framing
        for p in m.content:
            if isinstance(p, Text):
                n += estimate_text(p.text)
            elif isinstance(p, ToolCall):
                n += estimate_text(p.name) + estimate_text(p.arguments)
            elif isinstance(p, ToolResult):
                n += sum(estimate_text(c.text) if isinstance(c, Text) else _IMAGE_TOKENS
                         for c in p.content)
            elif isinstance(p, Thinking):
                n += estimate_text(p.text)
            elif isinstance(p, (Image, File)):
                n += _IMAGE_TOKENS
    return n


def estimate_request(req: ChatRequest) -> int:
    n = estimate_messages(req.messages)
    if req.system:
        n += sum(estimate_text(t.text) for t in req.system)
    if req.tools:
        n += estimate_text(msgspec.json.encode(req.tools).decode())
    return max(n, 1)
