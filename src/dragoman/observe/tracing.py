"""OpenTelemetry traces: the ``core.spans`` hooks as OTel spans with the GenAI semantic
conventions, exported over OTLP (HTTP or gRPC).

The tree of one request::

    chat gpt-4o                    SERVER   the client's request (continues its traceparent)
    ├── chat gpt-4o-2024-08-06     CLIENT   routing attempt 1 on deployment "gpt-4o#0"
    │   └── POST                   CLIENT   the upstream HTTP call (traceparent sent along)
    └── chat gpt-4o-2024-08-06     CLIENT   attempt 2 (a retry, or another deployment)
        └── POST

and under an agent's request (``invoke_agent``), per step an ``agent_step`` span holding
that step's routing attempts and an ``execute_tool`` span per tool call.

Which span is the parent follows the running task through our own context variable,
not OTel's attached context: agent steps stay open across ``yield`` in an async generator,
and a generator closed from another task would make OTel's ``detach`` log an error. The
upstream call injects its own span as the W3C parent, so the upstream's spans hang under
it. Importing this module needs the ``otel`` extra; ``install`` is the only entry point.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterable
from enum import Enum
from urllib.parse import urlsplit

import msgspec
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..core import ChatRequest, Usage, spans
from ..core.spans import AttributeValue
from .tracing_settings import TracingSettings

log = logging.getLogger("dragoman.observe")

_PROPAGATOR = TraceContextTextMapPropagator()
_encode = msgspec.json.Encoder().encode

#: ``gen_ai.provider.name`` of each provider module (the semconv's well-known values);
#: any other provider is named by its module.
_PROVIDER_NAMES = {
    "openai": "openai", "anthropic": "anthropic", "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock", "gemini": "gcp.gemini", "mistral": "mistral_ai",
    "codex": "openai", "ollama": "ollama",
}

#: Outcomes that are not errors of the span's own operation.
_NOT_ERRORS = (None, "ok", "client_closed")


class _Span:
    """An OTel span behind the ``core.spans.Span`` protocol."""

    __slots__ = ("_capture", "_ended", "otel")

    def __init__(self, otel: trace.Span, capture: bool) -> None:
        self.otel = otel
        self._capture = capture
        self._ended = False

    def set(self, key: str, value: AttributeValue) -> None:
        self.otel.set_attribute(key, value)

    def content(self, key: str, value: object) -> None:
        if self._capture:
            self.otel.set_attribute(key, value if isinstance(value, str)
                                    else _encode(value).decode())

    def end(self, outcome: object = None) -> None:
        if self._ended:
            return
        self._ended = True
        if isinstance(outcome, Enum):
            outcome = outcome.value
        if outcome not in _NOT_ERRORS:
            self.otel.set_attribute("error.type", str(outcome))
            self.otel.set_status(Status(StatusCode.ERROR))
        elif outcome == "client_closed":
            self.otel.set_attribute("dragoman.outcome", "client_closed")
        self.otel.end()


class _RequestSpan(_Span):
    __slots__ = ()

    @property
    def captures_content(self) -> bool:
        return self._capture

    def answered(self, usage: Usage | None, model: str | None) -> None:
        if model:
            self.otel.set_attribute("gen_ai.response.model", model)
        if usage is not None:
            _set_usage(self.otel, usage)


def _set_usage(span: trace.Span, usage: Usage) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    if usage.cached_tokens:
        span.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens)
    if usage.cache_write_tokens:
        span.set_attribute("gen_ai.usage.cache_creation.input_tokens",
                           usage.cache_write_tokens)


def _request_attributes(req: ChatRequest) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {"gen_ai.request.model": req.model}
    for key, value in (("gen_ai.request.max_tokens", req.max_tokens),
                       ("gen_ai.request.temperature", req.temperature),
                       ("gen_ai.request.top_p", req.top_p),
                       ("gen_ai.request.seed", req.seed)):
        if value is not None:
            attrs[key] = value
    if req.stop:
        attrs["gen_ai.request.stop_sequences"] = req.stop  # type: ignore[assignment]
    return attrs


def _is_agent(provider: object) -> bool:
    """An orchestrator (``dragoman.agents``) rather than an upstream model."""
    return type(provider).__module__.startswith("dragoman.agents")


def provider_name(provider: object) -> str:
    """``gen_ai.provider.name`` for a provider object."""
    module = type(provider).__module__.rsplit(".", 1)[-1]
    return _PROVIDER_NAMES.get(module, module)


class OtelTracer:
    """The ``core.spans.Tracer`` on an OTel tracer."""

    def __init__(self, tracer: trace.Tracer, *, capture_content: bool = False) -> None:
        self._tracer = tracer
        self.capture_content = capture_content
        self._current: contextvars.ContextVar[trace.Span | None] = \
            contextvars.ContextVar("dragoman_span", default=None)

    def _parent(self) -> Context | None:
        span = self._current.get()
        return None if span is None else trace.set_span_in_context(span)

    def _start(self, name: str, kind: SpanKind, attrs: dict[str, AttributeValue],
               context: Context | None = None) -> trace.Span:
        return self._tracer.start_span(name, context=context or self._parent(), kind=kind,
                                       attributes=attrs)

    def request(self, dialect: str, req: ChatRequest, provider: object,
                headers: Iterable[tuple[bytes, bytes]]) -> _RequestSpan:
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers
                   if k in (b"traceparent", b"tracestate")}
        agent = req.model if _is_agent(provider) else None
        operation = "invoke_agent" if agent else "chat"
        attrs = _request_attributes(req)
        attrs["gen_ai.operation.name"] = operation
        attrs["dragoman.client_dialect"] = dialect
        attrs["dragoman.stream"] = req.stream
        if agent:
            attrs["gen_ai.agent.name"] = agent
        span = _RequestSpan(self._start(f"{operation} {req.model}", SpanKind.SERVER, attrs,
                                        _PROPAGATOR.extract(carrier) if carrier else None),
                            self.capture_content)
        if self.capture_content:
            span.content("gen_ai.input.messages", req.messages)
            if req.system:
                span.content("gen_ai.system_instructions", req.system)
        return span

    def attempt(self, route: str, deployment: str, provider: object, n: int) -> _Span:
        is_agent = _is_agent(provider)
        model = getattr(provider, "model", None) or route
        operation = "invoke_agent" if is_agent else "chat"
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": operation, "dragoman.route": route,
            "dragoman.deployment": deployment, "dragoman.attempt": n}
        if is_agent:
            attrs["gen_ai.agent.name"] = route
        else:
            attrs["gen_ai.request.model"] = str(model)
            attrs["gen_ai.provider.name"] = provider_name(provider)
        return _Span(self._start(f"{operation} {route if is_agent else model}",
                                 SpanKind.CLIENT, attrs), self.capture_content)

    def upstream(self, method: str, url: str, headers: dict[str, str]) -> _Span:
        u = urlsplit(url)
        attrs: dict[str, AttributeValue] = {
            "http.request.method": method,
            # never the query: some vendors take the API key there
            "url.full": f"{u.scheme}://{u.netloc.rpartition('@')[2]}{u.path}",
            "server.address": u.hostname or "",
        }
        if u.port is not None:
            attrs["server.port"] = u.port
        span = self._start(method, SpanKind.CLIENT, attrs)
        _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
        return _Span(span, self.capture_content)

    def agent_step(self, agent: str, index: int) -> _Span:
        return _Span(self._start(f"agent_step {agent}", SpanKind.INTERNAL,
                                 {"gen_ai.agent.name": agent, "dragoman.step": index}),
                     self.capture_content)

    def tool_call(self, name: str, call_id: str | None, arguments: object) -> _Span:
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
            "gen_ai.tool.type": "function"}
        if call_id:
            attrs["gen_ai.tool.call.id"] = call_id
        span = _Span(self._start(f"execute_tool {name}", SpanKind.INTERNAL, attrs),
                     self.capture_content)
        span.content("gen_ai.tool.call.arguments", arguments)
        return span

    def enter(self, span: spans.Span) -> object:
        assert isinstance(span, _Span)
        return self._current.set(span.otel)

    def leave(self, token: object) -> None:
        assert isinstance(token, contextvars.Token)
        # A reset from another context (a generator closed by another task) fails: that
        # context's value dies with it, there is nothing to restore.
        with contextlib.suppress(ValueError):
            self._current.reset(token)


_installed: tuple[TracingSettings, TracerProvider] | None = None


def _exporter(settings: TracingSettings) -> SpanExporter | None:
    headers = settings.headers or None
    endpoint = settings.endpoint
    if settings.exporter == "otlp_http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        if endpoint and urlsplit(endpoint).path in ("", "/"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        return HttpExporter(endpoint=endpoint, headers=headers)
    if settings.exporter == "otlp_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        insecure = endpoint.startswith("http://") if endpoint else None
        return GrpcExporter(endpoint=endpoint, headers=headers, insecure=insecure)
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    return None


def install(settings: TracingSettings) -> OtelTracer:
    """Start exporting with ``settings`` (already ``tracing_settings.effective``) and
    install the tracer as ``core.spans.TRACER``. Once per process: installing the same
    settings again keeps the running exporter."""
    global _installed
    current = spans.TRACER
    if _installed is not None and _installed[0] == settings and isinstance(current, OtelTracer):
        return current
    if _installed is not None:
        _installed[1].shutdown()
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name or "dragoman"}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
    exporter = _exporter(settings)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _installed = (settings, provider)
    tracer = OtelTracer(provider.get_tracer("dragoman"),
                        capture_content=settings.capture_content)
    spans.TRACER = tracer
    return tracer


def uninstall() -> None:
    """Flush and stop exporting; tracing is off again."""
    global _installed
    spans.TRACER = None
    if _installed is not None:
        _installed[1].shutdown()
        _installed = None


def flush(timeout_ms: int = 5000) -> None:
    """Export what is queued now (the server's shutdown calls this)."""
    if _installed is not None:
        _installed[1].force_flush(timeout_ms)
