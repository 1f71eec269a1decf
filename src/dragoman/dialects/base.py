"""What every dialect module provides, and the small shared helpers they use.

A dialect is pure (no I/O) and symmetric:

ingress (a client speaks this dialect to dragoman)
    ``parse_request(body: dict) -> ChatRequest``            raises ``InvalidRequest``
    ``render_response(resp, ctx) -> bytes``                 JSON body
    ``StreamRenderer(ctx)``: ``.start() -> bytes``, ``.feed(event) -> bytes``
    ``render_error(err) -> (status, body bytes)``

egress (dragoman speaks this dialect to an upstream)
    ``render_request(req) -> dict``                         JSON-ready body
    ``parse_response(body: dict) -> ChatResponse``
    ``StreamParser()``: ``.feed(event_name, data) -> list[StreamEvent]``, ``.close() -> list``
    ``parse_error(status, body bytes) -> DragomanError``

The ``Dialect`` record bundles them so the server and providers can treat dialects alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from ..core import ChatRequest, ChatResponse, DragomanError, InvalidRequest, StreamEvent

_encode = msgspec.json.Encoder().encode


class RenderContext(msgspec.Struct, kw_only=True):
    """What a renderer needs besides the response itself.

    ``id`` is the response id in this dialect's shape (``chatcmpl-…``, ``resp_…``,
    ``msg_…``), ``model`` the model name the client asked for, ``created`` a unix time,
    ``request`` the parsed client request (Responses echoes its settings, Chat reads
    ``include_usage``).
    """

    id: str
    model: str
    created: int
    request: ChatRequest | None = None


class StreamRenderer(Protocol):
    def start(self) -> bytes: ...

    def feed(self, event: StreamEvent) -> bytes: ...


class StreamParser(Protocol):
    def feed(self, event: str | None, data: str) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


@dataclass(frozen=True, slots=True)
class UpstreamDialect:
    """The egress half: all an HTTP provider needs. Upstream-only wire formats (Bedrock
    Converse, Gemini…) provide just this; client-facing dialects are full ``Dialect``s."""

    name: str
    render_request: Callable[[ChatRequest], dict[str, Any]]
    parse_response: Callable[[Any], ChatResponse]
    stream_parser: Callable[[], StreamParser]
    parse_error: Callable[[int, bytes], DragomanError]


@dataclass(frozen=True, slots=True)
class Dialect(UpstreamDialect):
    parse_request: Callable[[Any], ChatRequest]
    render_response: Callable[[ChatResponse, RenderContext], bytes]
    stream_renderer: Callable[[RenderContext], StreamRenderer]
    render_error: Callable[[DragomanError], tuple[int, bytes]]
    id_prefix: str


# --- framing --------------------------------------------------------------------------


def sse(event: str | None, payload: Any) -> bytes:
    """One SSE frame. ``event`` None gives a data-only frame (OpenAI Chat)."""
    body = _encode(payload)
    if event is None:
        return b"data: " + body + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"


def dumps(payload: Any) -> bytes:
    return _encode(payload)


# --- input validation helpers (raise InvalidRequest naming the field) -------------------


def require(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str = "") -> Any:
    val = obj.get(key)
    name = f"{where}{key}"
    if val is None:
        raise InvalidRequest(f"Missing required parameter: '{name}'.", param=name)
    if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
        raise InvalidRequest(f"Invalid type for '{name}': expected {_tname(typ)}.", param=name)
    return val


def optional(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...],
             where: str = "") -> Any:
    val = obj.get(key)
    if val is None:
        return None
    if not isinstance(val, typ) or (isinstance(val, bool) and bool not in _as_tuple(typ)):
        raise InvalidRequest(f"Invalid type for '{where}{key}': expected {_tname(typ)}.",
                             param=f"{where}{key}")
    return val


def optional_number(obj: Mapping[str, Any], key: str, where: str = "") -> float | None:
    val = obj.get(key)
    if val is None:
        return None
    if isinstance(val, bool) or not isinstance(val, (int, float)):
        raise InvalidRequest(f"Invalid type for '{where}{key}': expected a number.",
                             param=f"{where}{key}")
    return val


def _as_tuple(typ: type | tuple[type, ...]) -> tuple[type, ...]:
    return typ if isinstance(typ, tuple) else (typ,)


def _tname(typ: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "an array", dict: "an object"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(typ))


def expect_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


# --- data URLs ----------------------------------------------------------------------------


def split_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<data>`` → (mime, data); None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidRequest("Image data URLs must be base64 encoded (data:<mime>;base64,...).")
    return head[5:-7] or "application/octet-stream", data


def data_url(mime: str | None, data: str) -> str:
    return f"data:{mime or 'application/octet-stream'};base64,{data}"


def compact_json(obj: Any) -> str:
    """JSON text with no spaces (how tool arguments are written when an object must
    become a string)."""
    return _encode(obj).decode()


# --- reasoning effort <-> thinking budget (one table for every dialect) --------------------

#: OpenAI-style effort level → Anthropic-style thinking budget. ``none`` means thinking off.
EFFORT_BUDGET: dict[str, int] = {
    "minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768, "max": 32768,
}


def budget_for_effort(effort: str, max_tokens: int | None) -> int | None:
    """Thinking budget for an effort level, kept >= 1024 and < ``max_tokens``; None when
    the effort means no thinking or no budget fits."""
    budget = EFFORT_BUDGET.get(effort)
    if budget is None:
        return None
    if max_tokens is not None:
        budget = min(budget, max_tokens - 1)
    return budget if budget >= 1024 else None


def effort_for_budget(budget: int) -> str:
    """The smallest effort level whose budget covers ``budget``."""
    for effort, b in EFFORT_BUDGET.items():
        if budget <= b:
            return effort
    return "xhigh"
