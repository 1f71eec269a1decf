"""Reading how long an upstream asks us to wait (``dragoman.net.retry``)."""

from __future__ import annotations

import email.utils

import pytest

from dragoman.net.retry import (
    parse_duration,
    parse_http_date,
    parse_rfc3339,
    rate_limit_reset,
    retry_after_header,
    retry_after_seconds,
)

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z


@pytest.mark.parametrize(("text", "seconds"), [
    ("6m0s", 360.0), ("20ms", 0.02), ("1.5s", 1.5), ("1h2m3.5s", 3723.5), ("7", 7.0),
    ("0.25", 0.25), ("250us", 0.00025), ("3µs", 3e-6), ("10ns", 1e-8), ("2h", 7200.0),
    (".5s", 0.5), ("0s", 0.0),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "6m0", "m6s", "6 m", "1d", "-5s", "6m0sx"])
def test_bad_durations(text: str) -> None:
    assert parse_duration(text) is None


def test_http_date_and_rfc3339_are_relative_to_now() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_http_date(date, NOW) == pytest.approx(30)
    assert parse_http_date(email.utils.formatdate(NOW - 30, usegmt=True), NOW) == 0.0
    assert parse_http_date("not a date", NOW) is None
    assert parse_rfc3339("2025-06-15T15:07:10Z", NOW) == pytest.approx(30)
    assert parse_rfc3339("2025-06-15T17:07:10.5+02:00", NOW) == pytest.approx(30.5)
    assert parse_rfc3339("2025-06-15T15:07:10", NOW) is None  # no offset: not RFC 3339
    assert parse_rfc3339("tomorrow", NOW) is None


def test_standard_headers() -> None:
    assert retry_after_header({"retry-after": "7"}) == 7.0
    assert retry_after_header({"retry-after": "1.5"}) == 1.5
    assert retry_after_header({"retry-after-ms": "250", "retry-after": "7"}) == 0.25
    assert retry_after_header({"retry-after-ms": "junk", "retry-after": "7"}) == 7.0
    assert retry_after_header({"retry-after": "-3"}) == 0.0
    date = email.utils.formatdate(NOW + 12, usegmt=True)
    assert retry_after_header({"retry-after": date}, NOW) == pytest.approx(12)
    assert retry_after_header({"retry-after": "garbage"}) is None
    assert retry_after_header({}) is None


def test_openai_reset_headers_count_only_for_exhausted_limits() -> None:
    h = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s",
         "x-ratelimit-remaining-tokens": "1500", "x-ratelimit-reset-tokens": "20ms"}
    assert rate_limit_reset(h) == 360.0
    h["x-ratelimit-remaining-tokens"] = "0"
    assert rate_limit_reset(h) == 360.0  # both exhausted: the longer wait
    h["x-ratelimit-reset-requests"] = "10ms"
    assert rate_limit_reset(h) == pytest.approx(0.02)
    assert rate_limit_reset({"x-ratelimit-remaining-requests": "3",
                             "x-ratelimit-reset-requests": "6m0s"}) is None


def test_anthropic_reset_headers() -> None:
    h = {"anthropic-ratelimit-tokens-remaining": "0",
         "anthropic-ratelimit-tokens-reset": "2025-06-15T15:07:00Z",
         "anthropic-ratelimit-requests-remaining": "49",
         "anthropic-ratelimit-requests-reset": "2025-06-15T15:08:00Z",
         "anthropic-ratelimit-output-tokens-remaining": "0",
         "anthropic-ratelimit-output-tokens-reset": "2025-06-15T15:06:50Z"}
    assert rate_limit_reset(h, NOW) == pytest.approx(20)


def test_precedence_standard_headers_first_then_resets() -> None:
    resets = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m"}
    assert retry_after_seconds({**resets, "retry-after": "7"}) == 7.0
    assert retry_after_seconds(resets) == 60.0
    assert retry_after_seconds({"x-ratelimit-reset-requests": "1m"}) is None
    assert retry_after_seconds({}) is None
