"""The ``tracing`` section of the config, and how the standard ``OTEL_*`` variables fill
in what it leaves out. Plain data: importing this needs no OpenTelemetry."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

Exporter = Literal["otlp_http", "otlp_grpc", "console", "none"]


class TracingSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """OpenTelemetry traces (``pip install 'dragoman[otel]'``). A span per request, per
    routing attempt, per upstream call, per agent step and per tool call, with the GenAI
    semantic-convention attributes; a client's W3C ``traceparent`` is continued and passed
    upstream. Unset keys fall back to the standard ``OTEL_*`` variables."""

    enabled: bool = True
    """False turns tracing off even when ``OTEL_TRACES_EXPORTER`` is set."""
    exporter: Exporter | None = None
    """Where spans go. Default: ``OTEL_TRACES_EXPORTER`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``
    (``grpc`` → ``otlp_grpc``), else ``otlp_http``."""
    endpoint: str | None = None
    """The collector, e.g. ``http://otel-collector:4318`` (OTLP/HTTP: ``/v1/traces`` is
    added when the URL has no path) or ``http://otel-collector:4317`` (gRPC). Default:
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``, else the
    exporter's own default (localhost)."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """Extra headers on every export (a collector's API key: write it as ``${VAR}``)."""
    service_name: str | None = None
    """``service.name`` of the spans. Default: ``OTEL_SERVICE_NAME``, else ``dragoman``."""
    sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    """Share of new traces recorded; a client's ``traceparent`` decides for its own trace."""
    capture_content: bool = False
    """Also record prompts, completions and tool arguments/results on the spans
    (``gen_ai.input.messages``, ``gen_ai.output.messages``, ...). Off: they may hold
    personal data."""

    def __repr__(self) -> str:  # export headers may hold a collector's key
        return f"TracingSettings(exporter={self.exporter!r}, endpoint={self.endpoint!r})"


def effective(section: TracingSettings | None,
              environ: Mapping[str, str] = os.environ) -> TracingSettings | None:
    """The settings tracing runs with, or None when it is off: on with a ``tracing``
    section (unless ``enabled: false``), or with only ``OTEL_TRACES_EXPORTER`` set to an
    exporter (not ``none``); never when ``OTEL_SDK_DISABLED=true``."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    env_exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if section is None:
        if not env_exporter or env_exporter == "none":
            return None
        section = TracingSettings()
    if not section.enabled:
        return None
    exporter = section.exporter
    if exporter is None:
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") \
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
        if env_exporter == "console":
            exporter = "console"
        elif env_exporter == "none":
            exporter = "none"
        else:
            exporter = "otlp_grpc" if protocol.strip().lower() == "grpc" else "otlp_http"
    return msgspec.structs.replace(
        section, exporter=exporter,
        service_name=section.service_name or environ.get("OTEL_SERVICE_NAME") or "dragoman")
