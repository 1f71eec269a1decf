"""When tracing is on and with what: the ``tracing`` section and the standard ``OTEL_*``
variables (``observe.tracing_settings.effective``), and the config loader's view."""

from __future__ import annotations

import pytest

from dragoman.config import ConfigError, parse_config
from dragoman.observe.tracing_settings import TracingSettings, effective


def test_off_without_section_or_exporter_variable() -> None:
    assert effective(None, {}) is None
    assert effective(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) is None
    assert effective(None, {"OTEL_TRACES_EXPORTER": "none"}) is None


def test_on_from_the_environment_alone() -> None:
    s = effective(None, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "gw-1"})
    assert s is not None and s.exporter == "otlp_http" and s.service_name == "gw-1"
    s = effective(None, {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert s is not None and s.exporter == "otlp_grpc"
    s = effective(None, {"OTEL_TRACES_EXPORTER": "console"})
    assert s is not None and s.exporter == "console" and s.service_name == "dragoman"


def test_section_wins_over_variables_and_can_turn_tracing_off() -> None:
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}
    s = effective(TracingSettings(exporter="otlp_http", service_name="mine"), env)
    assert s is not None and (s.exporter, s.service_name) == ("otlp_http", "mine")
    s = effective(TracingSettings(), env)  # exporter unset: the variables choose
    assert s is not None and s.exporter == "otlp_grpc"
    assert effective(TracingSettings(enabled=False), env) is None
    assert effective(TracingSettings(), {"OTEL_SDK_DISABLED": "true"}) is None


def test_config_section_is_validated() -> None:
    cfg = parse_config({"tracing": {"exporter": "otlp_grpc", "sample_ratio": 0.25,
                                    "headers": {"x-key": "secret-value"}}})
    assert cfg.tracing is not None and cfg.tracing.sample_ratio == 0.25
    assert "secret-value" not in repr(cfg.tracing)  # export headers may hold a key
    with pytest.raises(ConfigError, match="exporter"):
        parse_config({"tracing": {"exporter": "zipkin"}})
    with pytest.raises(ConfigError, match="sample_ratio"):
        parse_config({"tracing": {"sample_ratio": 2}})
