"""A controllable fake upstream for routing and resilience tests.

``ChaosUpstream`` speaks two vendor dialects over a real socket (hand-written frames, as in
docs/protocols/*.md; nothing here comes from dragoman's renderers):

* ``POST /v1/chat/completions``  OpenAI Chat Completions (JSON, or ``data:`` SSE ending in
  ``data: [DONE]``; ``stream_options.include_usage`` adds the ``choices: []`` usage chunk)
* ``POST /v1/messages``          Anthropic Messages (JSON, or the ``event:`` SSE sequence
  ``message_start`` … ``message_stop``)

What each request gets is scripted per upstream model (the body's ``model``) from the test
thread::

    fake.script("model-a", [Fail(503), Fail(429, retry_after=0.2), Ok()])  # one per request
    fake.default("model-b", Ok(chunks=50, chunk_delay=0.01))  # once the script runs out
    fake.default(None, Fail(500))                             # every model without a default

With nothing scripted a model answers ``Ok()``. The answer text is ``chaos:<model>`` (see
``answer_chunks``), so a test can tell which upstream model answered.

Behaviours on a *streamed* request (``"stream": true``):

``Ok``             headers after ``latency``, then ``chunks`` text deltas ``chunk_delay`` apart,
                   then the dialect's terminator
``Fail``           the status with the vendor's error envelope (``retry-after`` and
                   ``retry-after-ms`` when ``retry_after`` is set), after ``latency``
``ContextTooLong`` the vendor's 400 for a prompt over the context window
``ResetMidStream`` headers and ``after_chunks`` deltas, then the TCP connection is aborted
``Garbage``        ``after_chunks`` deltas, then one frame whose data is not JSON; with
                   ``resume=True`` (default) the rest of the answer and the terminator follow,
                   with ``resume=False`` the body ends there cleanly (no terminator)
``Stall``          ``after_chunks=None``: never answers (no status line); ``k``: headers and
                   ``k`` deltas, then silence on an open connection. Either way until the
                   client leaves or the fake stops.

On a non-streamed request: ``Ok`` answers one JSON body after ``latency + chunks *
chunk_delay`` (as long as the stream would take); ``ResetMidStream`` sends the headers (with
the full ``content-length``) and half the JSON body, then aborts; ``Garbage`` answers 200 with
a body that is not JSON; ``Stall(k)`` sends the headers and half the body, then goes silent.

Accounting (thread-safe reads from the test thread): ``requests()``, ``count()``, the
``streams_*`` counters (streamed requests given a 200 behaviour, i.e. not ``Fail`` /
``ContextTooLong``) and ``open_connections``. Each ``ChaosRequest`` also carries its
``outcome``, which covers non-streamed requests too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.server import ThreadedServer

# --- behaviours ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ok:
    """A normal answer. ``text=None`` means ``chaos:<model>`` (padded with ``.`` to at least
    ``chunks`` characters); ``output_tokens=None`` means one token per chunk."""

    text: str | None = None
    chunks: int = 5
    latency: float = 0.0
    chunk_delay: float = 0.0
    input_tokens: int = 10
    output_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.chunks < 1:
            raise ValueError("Ok.chunks must be at least 1")
        if self.text is not None and len(self.text) < self.chunks:
            raise ValueError("Ok.text must have at least one character per chunk")


@dataclass(frozen=True)
class Fail:
    """An HTTP error in the vendor's envelope. ``error_type`` overrides the vendor's type
    (Anthropic ``error.type``) / code (OpenAI ``error.code``) derived from ``status``."""

    status: int
    retry_after: float | None = None
    message: str | None = None
    error_type: str | None = None
    latency: float = 0.0


@dataclass(frozen=True)
class ResetMidStream:
    after_chunks: int = 2
    latency: float = 0.0
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class Garbage:
    after_chunks: int = 1
    data: str = "{this is not json"
    resume: bool = True
    latency: float = 0.0
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class Stall:
    after_chunks: int | None = None


@dataclass(frozen=True)
class ContextTooLong:
    pass


Behaviour = Ok | Fail | ResetMidStream | Garbage | Stall | ContextTooLong
Outcome = Literal["completed", "cancelled", "reset", "stopped"]


def answer_chunks(model: str, ok: Ok | None = None) -> list[str]:
    """The text deltas ``ok`` streams for ``model`` (their concatenation is the answer)."""
    ok = ok or Ok()
    text = ok.text if ok.text is not None else f"chaos:{model}".ljust(ok.chunks, ".")
    q, r = divmod(len(text), ok.chunks)
    bounds = list(itertools.accumulate([q + 1] * r + [q] * (ok.chunks - r), initial=0))
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def answer_text(model: str, ok: Ok | None = None) -> str:
    return "".join(answer_chunks(model, ok))


def _partial_chunks(model: str, after: int) -> list[str]:
    """What the broken behaviours stream: the default answer, cut into enough pieces."""
    return answer_chunks(model, Ok(chunks=max(5, after + 1)))


# --- what the fake records ---------------------------------------------------------------------


@dataclass
class ChaosRequest:
    """One request the fake received. ``outcome`` is set by the server thread when the
    exchange ends: ``completed`` (the fake wrote everything it meant to), ``cancelled`` (the
    client left first), ``reset`` (the fake aborted the connection on purpose), ``stopped``
    (the fake was stopped mid-answer); ``None`` while in progress."""

    path: str
    model: str | None
    body: Any
    headers: dict[str, str]
    stream: bool
    behaviour: Behaviour | None
    received_at: float = field(default_factory=time.monotonic)
    outcome: Outcome | None = None


# --- wire formats ------------------------------------------------------------------------------


def _j(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class _Dialect:
    """The bytes one vendor API puts on the wire."""

    path = ""

    def error(self, status: int, message: str | None, error_type: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def context_too_long(self) -> dict[str, Any]:
        raise NotImplementedError

    def message(self, model: str, text: str, usage_in: int, usage_out: int) -> dict[str, Any]:
        raise NotImplementedError

    def head(self, model: str, usage_in: int) -> list[bytes]:
        raise NotImplementedError

    def delta(self, model: str, text: str) -> bytes:
        raise NotImplementedError

    def tail(self, model: str, usage_in: int, usage_out: int) -> list[bytes]:
        raise NotImplementedError

    def garbage(self, data: str) -> bytes:
        raise NotImplementedError

    def request_id_headers(self, rid: str) -> dict[str, str]:
        raise NotImplementedError


class _OpenAIChat(_Dialect):
    path = "/v1/chat/completions"
    _TYPES = {400: ("invalid_request_error", None),
              401: ("invalid_request_error", "invalid_api_key"),
              403: ("invalid_request_error", "unsupported_country_region_territory"),
              404: ("invalid_request_error", "model_not_found"),
              429: ("requests", "rate_limit_exceeded")}
    _MESSAGES = {400: "Invalid request.",
                 401: "Incorrect API key provided: sk-****.",
                 403: "Country, region, or territory not supported.",
                 404: "The model does not exist or you do not have access to it.",
                 429: "Rate limit reached for requests per min (RPM). Please try again later.",
                 503: "The engine is currently overloaded, please try again later."}

    def __init__(self, include_usage: bool = False) -> None:
        self.include_usage = include_usage

    def error(self, status: int, message: str | None, error_type: str | None) -> dict[str, Any]:
        type_, code = self._TYPES.get(status, ("server_error", None) if status >= 500
                                      else ("invalid_request_error", None))
        default = self._MESSAGES.get(status, "The server had an error while processing your "
                                     "request." if status >= 500 else f"HTTP {status}")
        return {"error": {"message": message or default, "type": type_, "param": None,
                          "code": error_type or code}}

    def context_too_long(self) -> dict[str, Any]:
        return {"error": {"message": "This model's maximum context length is 128000 tokens. "
                                     "However, your messages resulted in 130210 tokens. Please "
                                     "reduce the length of the messages.",
                          "type": "invalid_request_error", "param": "messages",
                          "code": "context_length_exceeded"}}

    @staticmethod
    def _usage(usage_in: int, usage_out: int) -> dict[str, Any]:
        return {"prompt_tokens": usage_in, "completion_tokens": usage_out,
                "total_tokens": usage_in + usage_out,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0}}

    def message(self, model: str, text: str, usage_in: int, usage_out: int) -> dict[str, Any]:
        return {"id": "chatcmpl-chaos01", "object": "chat.completion", "created": 1741569952,
                "model": model, "system_fingerprint": "fp_chaos", "service_tier": "default",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                     "refusal": None, "annotations": []},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": self._usage(usage_in, usage_out)}

    def _chunk(self, model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
        c: dict[str, Any] = {"id": "chatcmpl-chaos02", "object": "chat.completion.chunk",
                             "created": 1741569952, "model": model,
                             "system_fingerprint": "fp_chaos", "service_tier": "default",
                             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]}
        if self.include_usage:
            c["usage"] = None
        return f"data: {_j(c)}\n\n".encode()

    def head(self, model: str, usage_in: int) -> list[bytes]:
        return [self._chunk(model, {"role": "assistant", "content": "", "refusal": None})]

    def delta(self, model: str, text: str) -> bytes:
        return self._chunk(model, {"content": text})

    def tail(self, model: str, usage_in: int, usage_out: int) -> list[bytes]:
        frames = [self._chunk(model, {}, "stop")]
        if self.include_usage:
            frames.append(f"data: {_j({'id': 'chatcmpl-chaos02', 'object': 'chat.completion.chunk', 'created': 1741569952, 'model': model, 'system_fingerprint': 'fp_chaos', 'choices': [], 'usage': self._usage(usage_in, usage_out)})}\n\n".encode())
        return [*frames, b"data: [DONE]\n\n"]

    def garbage(self, data: str) -> bytes:
        return f"data: {data}\n\n".encode()

    def request_id_headers(self, rid: str) -> dict[str, str]:
        return {"x-request-id": rid}


class _AnthropicMessages(_Dialect):
    path = "/v1/messages"
    _TYPES = {400: "invalid_request_error", 401: "authentication_error",
              403: "permission_error", 404: "not_found_error", 413: "request_too_large",
              429: "rate_limit_error", 500: "api_error", 504: "timeout_error",
              529: "overloaded_error"}
    _MESSAGES = {"rate_limit_error": "Number of request tokens has exceeded your per-minute "
                                     "rate limit",
                 "overloaded_error": "Overloaded", "api_error": "Internal server error"}

    def error(self, status: int, message: str | None, error_type: str | None) -> dict[str, Any]:
        type_ = error_type or self._TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error",
                "error": {"type": type_, "message": message or self._MESSAGES.get(
                    type_, f"HTTP {status}")},
                "request_id": "req_011CchaosRequest"}

    def context_too_long(self) -> dict[str, Any]:
        return self.error(400, "prompt is too long: 210345 tokens > 200000 maximum",
                          "invalid_request_error")

    @staticmethod
    def _usage(usage_in: int, usage_out: int) -> dict[str, Any]:
        return {"input_tokens": usage_in, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "output_tokens": usage_out,
                "service_tier": "standard"}

    def message(self, model: str, text: str, usage_in: int, usage_out: int) -> dict[str, Any]:
        content = [{"type": "text", "text": text, "citations": None}] if text else []
        return {"id": "msg_01ChaosJson", "type": "message", "role": "assistant",
                "model": model, "content": content,
                "stop_reason": "end_turn" if text else None, "stop_sequence": None,
                "usage": self._usage(usage_in, usage_out)}

    @staticmethod
    def _ev(name: str, **fields: Any) -> bytes:
        return f"event: {name}\ndata: {_j({'type': name, **fields})}\n\n".encode()

    def head(self, model: str, usage_in: int) -> list[bytes]:
        start = {**self.message(model, "", usage_in, 1), "id": "msg_01ChaosStream"}
        return [self._ev("message_start", message=start),
                self._ev("content_block_start", index=0,
                         content_block={"type": "text", "text": ""}),
                self._ev("ping")]

    def delta(self, model: str, text: str) -> bytes:
        return self._ev("content_block_delta", index=0,
                        delta={"type": "text_delta", "text": text})

    def tail(self, model: str, usage_in: int, usage_out: int) -> list[bytes]:
        return [self._ev("content_block_stop", index=0),
                self._ev("message_delta", delta={"stop_reason": "end_turn",
                                                 "stop_sequence": None},
                         usage={"output_tokens": usage_out}),
                self._ev("message_stop")]

    def garbage(self, data: str) -> bytes:
        return f"event: content_block_delta\ndata: {data}\n\n".encode()

    def request_id_headers(self, rid: str) -> dict[str, str]:
        return {"request-id": rid}


# --- the plan a handler plays ------------------------------------------------------------------


class _Step:
    """Markers in a plan: abort the connection, go silent."""


RESET, SILENCE = _Step(), _Step()


@dataclass(frozen=True)
class _Headers:
    """Send the 200 status line and headers (SSE, or JSON of ``content_length`` bytes)."""

    content_length: int | None = None


SSE_HEADERS = _Headers()
PlanItem = bytes | float | _Step | _Headers | web.Response


class _Stopped(Exception):
    """The fake is stopping: a waiting handler gives up."""


# --- the server --------------------------------------------------------------------------------


class ChaosUpstream(ThreadedServer):
    """See the module docstring. ``url`` is the Anthropic base URL; OpenAI's is ``url + "/v1"``.
    Any API key is accepted (the headers are recorded)."""

    # a client that leaves cancels its handler at once: that is how ``streams_cancelled``
    # counts a disconnect promptly even while the handler sleeps between chunks
    handler_cancellation = True

    def __init__(self, fallback: Behaviour | None = None) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._fallback: Behaviour = fallback or Ok()
        self._scripts: dict[str, deque[Behaviour]] = {}
        self._defaults: dict[str | None, Behaviour] = {}
        self._log: list[ChaosRequest] = []
        self._transports: set[Any] = set()
        self._counters = {"started": 0, "completed": 0, "cancelled": 0, "reset": 0,
                          "stopped": 0}
        self._ids = itertools.count(1)
        self._stopping: asyncio.Event | None = None

    # --- scripting (test thread) -------------------------------------------------------------

    def script(self, model: str, behaviours: Iterable[Behaviour]) -> None:
        """Replace ``model``'s pending script: one behaviour per request, in order."""
        with self._lock:
            self._scripts[model] = deque(behaviours)

    def default(self, model: str | None, behaviour: Behaviour) -> None:
        """What ``model`` does once its script is used up (``None``: every model without a
        default of its own; initially ``Ok()``)."""
        with self._lock:
            self._defaults[model] = behaviour

    def reset(self) -> None:
        """Forget scripts, defaults, the request log and the counters (live connections stay)."""
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._log.clear()
            self._counters = dict.fromkeys(self._counters, 0)

    # --- observation (test thread) -----------------------------------------------------------

    def requests(self, model: str | None = None) -> list[ChaosRequest]:
        """Requests received (all, or for one upstream model), in arrival order."""
        with self._lock:
            return [r for r in self._log if model is None or r.model == model]

    def count(self, model: str | None = None) -> int:
        return len(self.requests(model))

    def pending(self, model: str) -> int:
        """Behaviours still scripted for ``model``."""
        with self._lock:
            return len(self._scripts.get(model, ()))

    def _counter(self, name: str) -> int:
        with self._lock:
            return self._counters[name]

    @property
    def streams_started(self) -> int:
        """Streamed requests given a 200 behaviour (counted on arrival, before any latency)."""
        return self._counter("started")

    @property
    def streams_completed(self) -> int:
        """... that the fake played to the end of their script."""
        return self._counter("completed")

    @property
    def streams_cancelled(self) -> int:
        """... whose client went away first."""
        return self._counter("cancelled")

    @property
    def streams_reset(self) -> int:
        """... that the fake aborted on purpose (``ResetMidStream``)."""
        return self._counter("reset")

    @property
    def open_connections(self) -> int:
        """TCP connections to the fake that carried a request and are not closed yet."""
        with self._lock:
            self._transports = {t for t in self._transports if not t.is_closing()}
            return len(self._transports)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0,
                 what: str = "condition") -> None:
        """Poll ``predicate`` until it holds; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what} not met within {timeout}s")
            time.sleep(0.01)

    # --- server thread -----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        self._stopping = asyncio.Event()
        app.on_shutdown.append(self._on_shutdown)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)

    async def _on_shutdown(self, app: web.Application) -> None:
        # runs before aiohttp waits for in-flight handlers: stalled ones end now, so
        # stop() does not sit out the shutdown timeout
        if self._stopping is not None:
            self._stopping.set()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "chat")

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "anthropic")

    def _next(self, model: str) -> Behaviour:
        script = self._scripts.get(model)
        if script:
            return script.popleft()
        for key in (model, None):
            if key in self._defaults:
                return self._defaults[key]
        return self._fallback

    async def _handle(self, request: web.Request, api: str) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fields = body if isinstance(body, dict) else {}
        model = fields.get("model") if isinstance(fields.get("model"), str) else None
        stream = fields.get("stream") is True
        dialect: _Dialect = _AnthropicMessages() if api == "anthropic" else _OpenAIChat(
            bool((fields.get("stream_options") or {}).get("include_usage")))
        rid = f"req_chaos_{next(self._ids):06d}"
        with self._lock:
            if request.transport is not None:
                # forget closed connections as we go: a long run must not pin thousands
                self._transports = {t for t in self._transports if not t.is_closing()}
                self._transports.add(request.transport)
            behaviour = self._next(model) if model is not None else None
            rec = ChaosRequest(path=request.path, model=model, body=body,
                               headers={k.lower(): v for k, v in request.headers.items()},
                               stream=stream, behaviour=behaviour)
            self._log.append(rec)
            counted = stream and isinstance(behaviour, Ok | ResetMidStream | Garbage | Stall)
            if counted:
                self._counters["started"] += 1
        if behaviour is None or model is None:
            plan: list[PlanItem] = [self._json(dialect, dialect.error(
                400, "model: Field required", None), 400, rid)]
        else:
            plan = self._plan(dialect, model, stream, behaviour, rid)
        outcome: Outcome = "completed"
        try:
            resp, outcome = await self._play(request, plan, rid, dialect)
            return resp
        except asyncio.CancelledError:
            outcome = "stopped" if self._is_stopping() else "cancelled"
            raise
        finally:
            rec.outcome = outcome
            if counted:
                with self._lock:
                    self._counters[outcome] += 1

    def _is_stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    @staticmethod
    def _json(dialect: _Dialect, payload: Any, status: int, rid: str,
              extra: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, text=_j(payload), content_type="application/json",
                            headers={**dialect.request_id_headers(rid), **(extra or {})})

    def _plan(self, d: _Dialect, model: str, stream: bool, b: Behaviour,
              rid: str) -> list[PlanItem]:
        """The steps of one answer: bytes to write, pauses (float seconds), markers, or a
        whole ``web.Response`` to return."""
        if isinstance(b, Fail):
            extra = {} if b.retry_after is None else {
                "retry-after": f"{b.retry_after:g}", "retry-after-ms": f"{b.retry_after * 1000:g}"}
            return [b.latency, self._json(d, d.error(b.status, b.message, b.error_type),
                                          b.status, rid, extra)]
        if isinstance(b, ContextTooLong):
            return [self._json(d, d.context_too_long(), 400, rid)]
        if isinstance(b, Ok):
            pieces = answer_chunks(model, b)
            n_in, n_out = b.input_tokens, b.output_tokens or len(pieces)
            if not stream:
                return [b.latency + b.chunk_delay * len(pieces),
                        self._json(d, d.message(model, "".join(pieces), n_in, n_out), 200, rid)]
            return [b.latency, SSE_HEADERS, *d.head(model, n_in),
                    *self._deltas(d, model, pieces, b.chunk_delay), *d.tail(model, n_in, n_out)]
        if isinstance(b, Stall) and b.after_chunks is None:
            return [SILENCE]
        after = b.after_chunks or 0
        pieces = _partial_chunks(model, after)
        if not stream:
            if isinstance(b, Garbage):
                return [b.latency, web.Response(status=200, text=b.data,
                                                content_type="application/json",
                                                headers=d.request_id_headers(rid))]
            full = _j(d.message(model, "".join(pieces), 10, len(pieces))).encode()
            delay = 0.0 if isinstance(b, Stall) else b.latency
            return [delay, _Headers(len(full)), full[:len(full) // 2],
                    RESET if isinstance(b, ResetMidStream) else SILENCE]
        if isinstance(b, Stall):
            return [SSE_HEADERS, *d.head(model, 10), *self._deltas(d, model, pieces[:after], 0.0),
                    SILENCE]
        plan: list[PlanItem] = [b.latency, SSE_HEADERS, *d.head(model, 10),
                                *self._deltas(d, model, pieces[:after], b.chunk_delay)]
        if isinstance(b, ResetMidStream):
            return [*plan, RESET]
        plan.append(d.garbage(b.data))
        if b.resume:
            plan += [*self._deltas(d, model, pieces[after:], b.chunk_delay),
                     *d.tail(model, 10, len(pieces))]
        return plan

    @staticmethod
    def _deltas(d: _Dialect, model: str, pieces: list[str], delay: float) -> list[PlanItem]:
        out: list[PlanItem] = []
        for p in pieces:
            if delay > 0:
                out.append(delay)
            out.append(d.delta(model, p))
        return out

    async def _pause(self, seconds: float | None) -> None:
        """Sleep (``None``: for ever), but give up as soon as the fake is stopping."""
        assert self._stopping is not None
        if seconds is not None and seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise _Stopped

    async def _play(self, request: web.Request, plan: list[PlanItem], rid: str,
                    d: _Dialect) -> tuple[web.StreamResponse, Outcome]:
        resp: web.StreamResponse | None = None
        try:
            for step in plan:
                if isinstance(step, float | int):
                    await self._pause(float(step))
                elif isinstance(step, web.Response):
                    return step, "completed"
                elif isinstance(step, _Headers):
                    headers = {"content-type": "text/event-stream; charset=utf-8",
                               "cache-control": "no-cache"} if step.content_length is None else {
                        # the whole body's length: the half that is sent is visibly short
                        "content-type": "application/json",
                        "content-length": str(step.content_length)}
                    resp = web.StreamResponse(status=200, headers={
                        **headers, **d.request_id_headers(rid)})
                    await resp.prepare(request)
                elif isinstance(step, bytes):
                    assert resp is not None
                    await resp.write(step)
                elif step is RESET:
                    if request.transport is not None:
                        request.transport.abort()
                    assert resp is not None
                    return resp, "reset"
                elif step is SILENCE:
                    await self._pause(None)
            assert resp is not None
            await resp.write_eof()
            return resp, "completed"
        except ConnectionError:
            outcome: Outcome = "cancelled"
        except _Stopped:
            outcome = "stopped"
            if request.transport is not None:
                request.transport.abort()
        # the client (or the fake) is gone: aiohttp's attempt to send this goes nowhere
        return resp or web.Response(status=503), outcome
