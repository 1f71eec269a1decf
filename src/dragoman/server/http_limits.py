"""Bounds on what one client may make the HTTP/1 server hold or wait for: enforced by
``server.protocol`` (under uvicorn), set by the ``server:`` keys of the config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Sizes in bytes, timeouts in seconds (docs/configuration.md, "Request limits,
    timeouts and the access log")."""

    max_head_bytes: int = 64 * 1024
    """request line and header fields together (431 past it)"""
    max_headers: int = 100
    """header fields per request (431)"""
    max_request_line: int = 8 * 1024
    """the request target, the URL (414)"""
    head_timeout: float = 60.0
    """to deliver a whole request head, from its first byte (a new connection: from
    connecting) (408)"""
    body_timeout: float = 60.0
    """between two reads of a request body (408)"""
    keepalive_timeout: float = 5.0
    """an idle connection between requests is closed after this"""


HTTP_LIMITS = HttpLimits()
"""The defaults."""
