"""SSRF-safe URL fetching (for images a vendor cannot take by URL, and agents' web_fetch).

INTERFACE ONLY for now: the providers issue implements it. Contract:

    policy = FetchPolicy(max_bytes=..., timeout=..., allowed_content_types=("image/",),
                         allow_hosts=frozenset())
    result = await fetch(url, policy)   # -> FetchResult(url, status, content_type, body)

Refuses (raising ``dragoman.core.InvalidRequest`` with a message that names the reason,
never the resolved address of an internal host): non-http(s) schemes; hosts resolving to
loopback, private, link-local, CGNAT, multicast, unspecified, reserved, cloud-metadata or
IPv4-mapped/compatible IPv6 addresses (every resolved address is vetted; decimal, octal
and hex IPv4 spellings are normalised first); connects to the vetted IP itself (no second
DNS lookup: rebinding defence) with the original Host/SNI; re-vets every redirect (bounded
count); enforces size, time and content-type limits. ``allow_hosts`` lists host names
exempt from the address checks (an explicit config override).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 15.0
    max_redirects: int = 5
    allowed_content_types: tuple[str, ...] = ()  # prefixes; empty = any
    allow_hosts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    status: int
    content_type: str
    body: bytes


async def fetch(url: str, policy: FetchPolicy) -> FetchResult:
    raise NotImplementedError("dragoman.net.fetch is implemented by the providers issue")
