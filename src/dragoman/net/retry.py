"""How long an upstream asks us to wait, read from its response headers.

In order of authority: ``retry-after-ms`` (float milliseconds, OpenAI/Azure), then
``retry-after`` (seconds or an HTTP date, RFC 9110), then the vendors' rate-limit reset
headers for a limit that is exhausted (its ``remaining`` header says 0):

* OpenAI / Azure / Mistral-style ``x-ratelimit-reset-{requests,tokens}`` with
  ``x-ratelimit-remaining-{requests,tokens}``; the value is a Go duration (``6m0s``,
  ``20ms``, ``1.5s``) or plain seconds.
* Anthropic ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`` with
  the matching ``-remaining``; the value is an RFC 3339 instant.

When several exhausted limits are reported, the longest wait wins (both must reset before a
retry can succeed). Everything returns seconds (>= 0) or None when absent or unreadable.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from datetime import datetime

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0}

#: (reset header, remaining header, value format) per vendor limit
_RESET_HEADERS: tuple[tuple[str, str, str], ...] = (
    ("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests", "duration"),
    ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens", "duration"),
    ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining", "instant"),
    ("anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining", "instant"),
    ("anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining",
     "instant"),
    ("anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining",
     "instant"),
)


def parse_duration(value: str) -> float | None:
    """A Go-style duration (``6m0s``, ``1h2m3.5s``, ``20ms``) or plain seconds (``7``,
    ``0.5``) → seconds; None if it is neither."""
    v = value.strip()
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    total, pos = 0.0, 0
    for m in _DURATION_PART.finditer(v):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total if pos == len(v) else None


def parse_http_date(value: str, now: float | None = None) -> float | None:
    """Seconds from ``now`` until an HTTP date (``Wed, 21 Oct 2015 07:28:00 GMT``)."""
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def parse_rfc3339(value: str, now: float | None = None) -> float | None:
    """Seconds from ``now`` until an RFC 3339 instant (``2025-01-01T00:00:30Z``)."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # RFC 3339 always has an offset; a naive time is not one
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_after_header(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The standard headers only: ``retry-after-ms``, then ``retry-after``."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        return parse_http_date(ra, now)


def rate_limit_reset(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The longest reset among exhausted vendor rate limits (see the module docstring)."""
    best: float | None = None
    for reset_name, remaining_name, fmt in _RESET_HEADERS:
        reset = headers.get(reset_name)
        if not reset or (headers.get(remaining_name) or "").strip() != "0":
            continue
        secs = parse_duration(reset) if fmt == "duration" else parse_rfc3339(reset, now)
        if secs is not None and (best is None or secs > best):
            best = secs
    return best


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long to wait before retrying, from whichever header the upstream sent."""
    secs = retry_after_header(headers, now)
    return secs if secs is not None else rate_limit_reset(headers, now)
