"""SSRF-safe URL fetching (for images a vendor cannot take by URL, and agents' web_fetch).

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

How the pinning works: aiohttp asks its resolver for the address of the URL's host when it
opens a connection. Each fetch gets a resolver that knows only the addresses vetted here,
so the socket goes to exactly those, while the URL (and so the ``Host`` header and TLS
SNI/certificate check) keeps the original name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ..core import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> [ip address text, ...]``: how a name is looked up (tests pass their own;
the default asks the system resolver once)."""


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


# --- address vetting ---------------------------------------------------------------------

_METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack… instance metadata
    "169.254.170.2",    # AWS ECS task metadata
    "fd00:ec2::254",    # AWS IMDS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",      # Oracle Cloud
))
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata",
                             "instance-data", "instance-data.ec2.internal"})

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Special-purpose IPv4 blocks that some Python versions still call global.
_V4_SPECIAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "240.0.0.0/4"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def address_problem(ip: Address) -> str | None:
    """Why ``ip`` must not be fetched from, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if ip in _V4_COMPATIBLE and not (ip.is_unspecified or ip.is_loopback):
            return "an IPv4-compatible IPv6 address"
        if ip in _NAT64:  # a public IPv4 behind a NAT64 gateway is fine; anything else not
            return address_problem(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _NAT64_LOCAL:
            return "a private address"
        if ip.sixtofour is not None:
            return address_problem(ip.sixtofour)
        if ip.teredo is not None:
            return "a Teredo tunnel address"
        if ip.scope_id:
            return "a scoped (link-local) address"
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in _CGNAT:
            return "a carrier-grade NAT (CGNAT) address"
        if any(ip in n for n in _V4_SPECIAL):
            return "a reserved address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a non-public address"
    return None


def parse_ip_host(host: str) -> Address | None:
    """An IP literal in any spelling ``inet_aton`` and browsers accept (``2130706433``,
    ``0x7f.1``, ``017700000001``, ``127.1``, bracket-less IPv6), or None for a name.

    A host that looks numeric but is not a valid address raises ``InvalidRequest``: it is
    never handed to a resolver that might read it differently."""
    h = host.strip("[]")
    if ":" in h:
        try:
            return ipaddress.IPv6Address(h)
        except ValueError:
            raise InvalidRequest("The URL host is not a valid IPv6 address.") from None
    parts = h.split(".")
    if parts and parts[-1] == "":  # a trailing dot (FQDN form)
        parts.pop()
    if not parts or not all(_looks_numeric(p) for p in parts):
        return None
    if len(parts) > 4:
        raise InvalidRequest("The URL host is not a valid IPv4 address.")
    try:
        nums = [_ipv4_part(p) for p in parts]
    except ValueError:
        raise InvalidRequest("The URL host is not a valid IPv4 address.") from None
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        raise InvalidRequest("The URL host is not a valid IPv4 address.")
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _looks_numeric(part: str) -> bool:
    p = part.lower()
    if p.startswith("0x"):
        return all(c in "0123456789abcdef" for c in p[2:])
    return p.isdigit() and p.isascii()


def _ipv4_part(part: str) -> int:
    p = part.lower()
    if p.startswith("0x"):
        return int(p[2:] or "0", 16)
    if len(p) > 1 and p.startswith("0"):
        return int(p, 8)  # raises ValueError for 08, 09
    return int(p)


def _normal_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def _refuse(host: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"Refusing to fetch from {host}: it is {why}.")


# --- resolution and pinning ----------------------------------------------------------------


async def _system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class _PinnedResolver(AbstractResolver):
    """Answers only with addresses vetted by ``fetch``; never asks DNS itself."""

    def __init__(self) -> None:
        self.pins: dict[str, list[Address]] = {}

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addrs = self.pins.get(_normal_host(host))
        if not addrs:  # cannot happen: every hop is vetted and pinned before it is opened
            raise OSError(f"no vetted address for {host}")
        return [ResolveResult(hostname=host, host=str(a), port=port,
                              family=socket.AF_INET6 if a.version == 6 else socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST) for a in addrs]

    async def close(self) -> None:
        pass


async def _vet(url: URL, policy: FetchPolicy, resolver: Resolver,
               pins: _PinnedResolver) -> URL:
    """Check one hop's URL and pin the addresses its connection may use; the URL to
    request (an IP literal in an odd spelling is rewritten to its canonical form)."""
    if url.scheme not in ("http", "https"):
        raise InvalidRequest("Only http and https URLs can be fetched.")
    raw_host = url.raw_host
    if not raw_host:
        raise InvalidRequest("The URL has no host.")
    host = _normal_host(raw_host)
    port = url.port or (443 if url.scheme == "https" else 80)
    allowed = host in policy.allow_hosts
    literal = parse_ip_host(host)
    if literal is not None:
        if not allowed and str(literal) not in policy.allow_hosts:
            why = address_problem(literal)
            if why is not None:
                raise _refuse(host, why)
        canonical = str(literal)
        pins.pins[canonical] = [literal]
        return url if canonical == host else url.with_host(canonical)
    if not allowed:
        if host in _METADATA_NAMES:
            raise _refuse(host, "a cloud metadata host")
        if host == "localhost" or host.endswith(".localhost"):
            raise _refuse(host, "a loopback address")
    try:
        found = await resolver(host, port)
    except OSError:
        raise InvalidRequest(f"Cannot fetch from {host}: the name does not resolve.") from None
    addrs: list[Address] = []
    for text in found:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if not allowed:
            why = address_problem(ip)
            if why is not None:  # one bad answer taints the name (round-robin rebinding)
                raise InvalidRequest(f"Refusing to fetch from {host}: the name resolves to "
                                     f"{why}.")
        addrs.append(ip)
    if not addrs:
        raise InvalidRequest(f"Cannot fetch from {host}: the name does not resolve.")
    pins.pins[host] = addrs
    return url


# --- the fetch -------------------------------------------------------------------------------

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def fetch(url: str, policy: FetchPolicy, *, resolver: Resolver | None = None) -> FetchResult:
    """GET ``url`` under ``policy`` (see the module docstring)."""
    try:
        current = URL(url)
    except (ValueError, TypeError):
        raise InvalidRequest("The URL is not valid.") from None
    host_for_errors = _normal_host(current.raw_host or "") or "the URL"
    try:
        async with asyncio.timeout(policy.timeout):
            return await _fetch(current, policy, resolver or _system_resolve)
    except TimeoutError:
        raise InvalidRequest(f"Fetching from {host_for_errors} timed out.") from None


async def _fetch(current: URL, policy: FetchPolicy, resolver: Resolver) -> FetchResult:
    pins = _PinnedResolver()
    connector = aiohttp.TCPConnector(resolver=pins, use_dns_cache=False, limit=4,
                                     force_close=True)
    async with aiohttp.ClientSession(connector=connector, trust_env=False,
                                     timeout=aiohttp.ClientTimeout(total=None)) as session:
        for _ in range(policy.max_redirects + 1):
            current = await _vet(current, policy, resolver, pins)
            host = _normal_host(current.raw_host or "")
            try:
                async with session.get(current, allow_redirects=False,
                                       headers={"accept": _accept(policy)}) as resp:
                    location = resp.headers.get("location")
                    if resp.status in _REDIRECTS and location:
                        try:
                            current = current.join(URL(location))
                        except (ValueError, TypeError):
                            raise InvalidRequest(f"{host} redirected to an invalid URL.") \
                                from None
                        continue
                    return await _read(resp, current, host, policy)
            except aiohttp.ClientError as e:
                raise InvalidRequest(f"Cannot fetch from {host}: {_why(e)}.") from None
        raise InvalidRequest(f"Too many redirects (more than {policy.max_redirects}).")


async def _read(resp: aiohttp.ClientResponse, url: URL, host: str,
                policy: FetchPolicy) -> FetchResult:
    ctype = resp.content_type.lower()
    ok = 200 <= resp.status < 300
    if ok and policy.allowed_content_types and not ctype.startswith(
            policy.allowed_content_types):
        raise InvalidRequest(f"{host} answered with content type {ctype[:100]!r}, expected "
                             f"{' or '.join(policy.allowed_content_types)}.")
    declared = resp.content_length
    if declared is not None and declared > policy.max_bytes:
        raise _too_large(host, policy)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > policy.max_bytes:  # counted after decompression: no zip bombs
            raise _too_large(host, policy)
        chunks.append(chunk)
    return FetchResult(url=str(url), status=resp.status, content_type=ctype,
                       body=b"".join(chunks))


def _accept(policy: FetchPolicy) -> str:
    if not policy.allowed_content_types:
        return "*/*"
    return ", ".join(t + "*" if t.endswith("/") else t for t in policy.allowed_content_types)


def _too_large(host: str, policy: FetchPolicy) -> InvalidRequest:
    return InvalidRequest(f"The content at {host} is larger than {policy.max_bytes} bytes.")


def _why(e: Any) -> str:
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate is not valid"
    if isinstance(e, aiohttp.ClientConnectorError):
        return "the connection failed"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return "the server disconnected"
    return "the transfer failed"
