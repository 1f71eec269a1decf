"""A real OTLP trace receiver for the tests: OTLP/HTTP (protobuf bodies on
``POST /v1/traces``) or OTLP/gRPC (the ``TraceService/Export`` call), on loopback,
decoding with the official ``opentelemetry-proto`` messages. What a collector would get,
kept as ``Span`` records the tests can query as a tree."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from tests.gateway_proc import free_port

KINDS = {PbSpan.SPAN_KIND_SERVER: "server", PbSpan.SPAN_KIND_CLIENT: "client",
         PbSpan.SPAN_KIND_INTERNAL: "internal", PbSpan.SPAN_KIND_PRODUCER: "producer",
         PbSpan.SPAN_KIND_CONSUMER: "consumer"}


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: str
    attributes: dict[str, Any]
    error: bool
    service: str
    start_ns: int
    children: list[Span] = field(default_factory=list)


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


class Received:
    """Every span received so far (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self.exports = 0

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        got = []
        for rs in request.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    got.append(Span(
                        name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(), kind=KINDS.get(s.kind, "unset"),
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        error=s.status.code == Status.STATUS_CODE_ERROR,
                        service=str(resource.get("service.name", "")),
                        start_ns=s.start_time_unix_nano))
        with self._lock:
            self._spans.extend(got)
            self.exports += 1

    def spans(self, trace_id: str | None = None) -> list[Span]:
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    def wait_for(self, predicate: Callable[[list[Span]], bool], timeout: float = 15.0,
                 trace_id: str | None = None) -> list[Span]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.spans(trace_id)
            if predicate(got):
                return got
            if time.monotonic() > deadline:
                names = sorted(s.name for s in got)
                raise AssertionError(f"spans not received in {timeout}s; have {names}")
            time.sleep(0.05)


def tree(spans: list[Span]) -> list[Span]:
    """The roots of ``spans`` (a span whose parent is not among them), children linked
    and ordered by start time."""
    by_id = {s.span_id: s for s in spans}
    for s in spans:
        s.children = []
    roots = []
    for s in sorted(spans, key=lambda s: s.start_ns):
        parent = by_id.get(s.parent_id)
        if parent is None:
            roots.append(s)
        else:
            parent.children.append(s)
    return roots


def render(roots: list[Span], depth: int = 0) -> str:
    """The tree as indented text (for assertion messages)."""
    lines = []
    for s in roots:
        err = " ERROR" if s.error else ""
        lines.append(f"{'  ' * depth}{s.name} [{s.kind}]{err}")
        lines.append(render(s.children, depth + 1))
    return "\n".join(x for x in lines if x)


@contextmanager
def otlp_http_receiver() -> Iterator[tuple[str, Received]]:
    """Yield (base URL, received): an OTLP/HTTP endpoint at ``{base}/v1/traces``."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path != "/v1/traces" or \
                    self.headers.get("content-type") != "application/x-protobuf":
                self.send_response(404)
                self.end_headers()
                return
            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(body)
            received.add(req)
            out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def otlp_grpc_receiver() -> Iterator[tuple[str, Received]]:
    """Yield (endpoint URL, received): an OTLP/gRPC ``TraceService`` (plaintext)."""
    received = Received()

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            received.add(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.stop(grace=None)
