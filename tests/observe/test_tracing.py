"""OpenTelemetry traces from a real ``dragoman serve``, received by a real OTLP receiver
(tests/infra/otlp.py): the span tree of a streamed, retried, tool-using agent request, the
client's ``traceparent`` continued and passed upstream, both exporters (OTLP/HTTP and
gRPC), prompt capture only when opted in, and nothing exported with tracing off."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY
from tests.cross_dialect.clients import UPSTREAM_MODEL
from tests.fakes.upstream import FOLLOWUP, OPENAI_KEY, FakeUpstream
from tests.gateway_proc import free_port, run_gateway
from tests.infra.otlp import Span, otlp_grpc_receiver, otlp_http_receiver, render, tree

ROOT = Path(__file__).resolve().parents[2]
FAKE_TEXT = "Hello from the fake upstream."
TOOLS_PROMPT = "scenario:tools please answer (n-tracing-tools)"
#: Exports every 50 ms, so a test waits for spans briefly.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def _config(fake: FakeUpstream, tracing: dict[str, Any] | None) -> dict[str, Any]:
    working = {"provider": "openai", "model": UPSTREAM_MODEL["chat-up"],
               "base_url": fake.url + "/v1", "api_key": OPENAI_KEY, "weight": 0.0001}
    # Closed port: connecting is refused. Weighted so heavily that it is tried first.
    dead = {"provider": "openai", "model": "dead-model", "api_key": "sk-up",
            "base_url": f"http://127.0.0.1:{free_port()}/v1", "weight": 10000}
    cfg: dict[str, Any] = {
        "server": {"api_keys": [API_KEY]},
        "models": [{"name": "chat-up", "deployments": [dead, working]},
                   {"name": "plain", **{k: v for k, v in working.items() if k != "weight"}},
                   {"name": "translated", "passthrough": False,
                    **{k: v for k, v in working.items() if k != "weight"}}],
        "agents": [{"name": "weather-agent", "model": "chat-up", "max_steps": 3,
                    "tools": [{"python": "tests.agents.sample_tools:get_weather"},
                              {"python": "tests.agents.sample_tools:get_time"}]}],
    }
    if tracing is not None:
        cfg["tracing"] = tracing
    return cfg


def _traceparent() -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent, f"00-{trace_id}-{parent}-01"


def _stream_chat(base: str, model: str, content: str, traceparent: str) -> str:
    """Stream a Chat Completions request; the text the client got."""
    text = []
    with httpx.stream("POST", base + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {API_KEY}",
                               "traceparent": traceparent},
                      json={"model": model, "stream": True,
                            "messages": [{"role": "user", "content": content}]}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices", []):
                    text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text)


def _named(spans: list[Span], prefix: str) -> list[Span]:
    return sorted((s for s in spans if s.name.startswith(prefix)), key=lambda s: s.start_ns)


def test_streamed_retried_tool_using_agent_request(upstream: FakeUpstream,
                                                   tmp_path: Path) -> None:
    with otlp_http_receiver() as (endpoint, received), \
            run_gateway(_config(upstream, {"exporter": "otlp_http", "endpoint": endpoint,
                                           "service_name": "gw-under-test"}),
                        tmp_path, env=FAST_EXPORT) as base:
        trace_id, client_parent, traceparent = _traceparent()
        upstream.clear()
        text = _stream_chat(base, "weather-agent", TOOLS_PROMPT, traceparent)
        assert FOLLOWUP in text

        spans = received.wait_for(
            lambda got: any(s.kind == "server" for s in got), trace_id=trace_id)
        roots = tree(spans)
        shape = render(roots)
        # One trace, continued from the client's traceparent: the request span's parent is
        # the client's span; everything else hangs under the request span.
        assert len(roots) == 1, shape
        request = roots[0]
        assert request.parent_id == client_parent
        assert request.name == "invoke_agent weather-agent" and request.kind == "server"
        assert request.service == "gw-under-test"
        a = request.attributes
        assert a["gen_ai.operation.name"] == "invoke_agent"
        assert a["gen_ai.request.model"] == "weather-agent"
        assert a["gen_ai.agent.name"] == "weather-agent"
        assert a["dragoman.client_dialect"] == "openai_chat" and a["dragoman.stream"] is True
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert "gen_ai.input.messages" not in a  # content only when opted in
        assert not request.error

        # The agent's request is routed to the agent (one attempt), which runs two steps
        # (two tool calls, then the answer) with the tool calls between them.
        (agent_attempt,) = request.children
        assert agent_attempt.attributes["gen_ai.operation.name"] == "invoke_agent"
        steps = _named(agent_attempt.children, "agent_step")
        tools = _named(agent_attempt.children, "execute_tool")
        assert [s.attributes["dragoman.step"] for s in steps] == [0, 1], shape
        assert sorted(t.name for t in tools) == ["execute_tool get_time",
                                                 "execute_tool get_weather"], shape
        for tool in tools:
            assert tool.attributes["gen_ai.tool.name"] in tool.name
            assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
            assert tool.attributes["gen_ai.tool.call.id"]
            assert "gen_ai.tool.call.arguments" not in tool.attributes
            assert steps[0].start_ns < tool.start_ns < steps[1].start_ns

        # Each step's model call was routed: the dead deployment first (a transport
        # failure), then a retry on the working one; each attempt holds its HTTP call.
        upstream_parents = []
        for step in steps:
            attempts = _named(step.children, "chat ")
            assert [x.attributes["dragoman.attempt"] for x in attempts] == [1, 2], shape
            failed, ok = attempts
            assert failed.attributes["gen_ai.request.model"] == "dead-model"
            assert failed.error and failed.attributes["error.type"] == "transport"
            assert ok.attributes["gen_ai.request.model"] == UPSTREAM_MODEL["chat-up"]
            assert ok.attributes["gen_ai.provider.name"] == "openai"
            assert ok.kind == "client" and not ok.error
            (failed_call,) = failed.children
            assert failed_call.name == "POST" and failed_call.error
            (call,) = ok.children
            assert call.name == "POST" and call.kind == "client"
            assert call.attributes["http.response.status_code"] == 200
            assert call.attributes["url.full"] == upstream.url + "/v1/chat/completions"
            upstream_parents.append(call.span_id)

        # traceparent out: the upstream got the same trace id, its parent the HTTP span.
        sent = {r.headers.get("traceparent", "") for r in upstream.find("n-tracing-tools")}
        assert len(sent) == 2 and "" not in sent, sent  # one per step
        for header in sent:
            version, tid, parent, _flags = header.split("-")
            assert (version, tid) == ("00", trace_id)
            assert parent in upstream_parents


def test_plain_model_stream_over_grpc_with_content_capture(upstream: FakeUpstream,
                                                           tmp_path: Path) -> None:
    """gRPC exporter; a plain (pass-through) model: request → attempt → HTTP call; prompts
    recorded because the operator opted in; a request without traceparent starts a
    trace of its own."""
    with otlp_grpc_receiver() as (endpoint, received), \
            run_gateway(_config(upstream, {"exporter": "otlp_grpc", "endpoint": endpoint,
                                           "capture_content": True}),
                        tmp_path, env=FAST_EXPORT) as base:
        trace_id, _, traceparent = _traceparent()
        assert _stream_chat(base, "plain", "hello there", traceparent)
        spans = received.wait_for(lambda got: any(s.kind == "server" for s in got),
                                  trace_id=trace_id)
        (request,) = tree(spans)
        assert request.name == "chat plain"
        assert request.attributes["gen_ai.operation.name"] == "chat"
        assert request.attributes["gen_ai.response.model"] == UPSTREAM_MODEL["chat-up"]
        assert "hello there" in request.attributes["gen_ai.input.messages"]
        (attempt,) = request.children
        assert attempt.attributes["dragoman.attempt"] == 1
        (call,) = attempt.children
        assert call.attributes["http.request.method"] == "POST"
        # the key never appears in any attribute
        assert all("sk-" not in str(v) for s in spans for v in s.attributes.values())

        # No traceparent from the client: a new trace, rooted at the request span.
        with httpx.Client(timeout=30) as client:
            r = client.post(base + "/v1/chat/completions",
                            headers={"authorization": f"Bearer {API_KEY}"},
                            json={"model": "plain",
                                  "messages": [{"role": "user", "content": "no parent"}]})
        assert r.status_code == 200
        spans = received.wait_for(
            lambda got: any(s.kind == "server" and s.parent_id == "" and
                            "no parent" in s.attributes.get("gen_ai.input.messages", "")
                            for s in got))
        roots = [s for s in spans if "no parent" in s.attributes.get("gen_ai.input.messages",
                                                                     "")]
        assert len(roots) == 1 and roots[0].trace_id != trace_id
        # the completion too (opted in): a whole pass-through answer as the upstream's JSON
        assert FAKE_TEXT in roots[0].attributes["gen_ai.output.messages"]

        # a translated stream: the streamed text, recorded when the stream finished
        trace_id, _, traceparent = _traceparent()
        assert _stream_chat(base, "translated", "stream it", traceparent) == FAKE_TEXT
        spans = received.wait_for(lambda got: any(s.kind == "server" for s in got),
                                  trace_id=trace_id)
        (request,) = tree(spans)
        output = json.loads(request.attributes["gen_ai.output.messages"])
        assert output == [{"role": "assistant", "finish_reason": "end_turn",
                           "parts": [{"type": "text", "content": FAKE_TEXT}]}]


def test_tracing_off_exports_nothing(upstream: FakeUpstream, tmp_path: Path) -> None:
    """No ``tracing`` section and no OTEL_TRACES_EXPORTER: the receiver (where the OTLP
    variables point) gets nothing, and the upstream gets no traceparent."""
    with otlp_http_receiver() as (endpoint, received), \
            run_gateway(_config(upstream, None), tmp_path,
                        env={**FAST_EXPORT, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}) as base:
        upstream.clear()
        assert _stream_chat(base, "plain", "untraced", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")
        (rec,) = upstream.find("untraced")
        assert "traceparent" not in {k.lower() for k in rec.headers}
        time.sleep(0.5)  # ten export intervals: a span would have arrived by now
        assert received.spans() == [] and received.exports == 0


def test_on_from_the_standard_variables_alone(upstream: FakeUpstream, tmp_path: Path) -> None:
    """No ``tracing`` section: ``OTEL_TRACES_EXPORTER`` turns tracing on, and the
    exporter finds the collector and the service name in the usual variables."""
    with otlp_http_receiver() as (endpoint, received), \
            run_gateway(_config(upstream, None), tmp_path,
                        env={**FAST_EXPORT, "OTEL_TRACES_EXPORTER": "otlp",
                             "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                             "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                             "OTEL_SERVICE_NAME": "from-env"}) as base:
        trace_id, _, traceparent = _traceparent()
        assert _stream_chat(base, "plain", "via env", traceparent)
        spans = received.wait_for(lambda got: any(s.kind == "server" for s in got),
                                  trace_id=trace_id)
        (request,) = tree(spans)
        assert request.service == "from-env" and request.name == "chat plain"
