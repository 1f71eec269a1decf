"""The SSRF-safe fetcher against real sockets: a local aiohttp server on 127.0.0.1 that is
reachable only when the policy allowlists it, and a test resolver for names."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest
from aiohttp import web

from dragoman.core import InvalidRequest
from dragoman.net.fetch import FetchPolicy, address_problem, fetch, parse_ip_host
from tests.fakes.upstream import IMAGE_PNG


@dataclass
class Server:
    url: str
    port: int
    hits: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[Server]:
    srv = Server(url="", port=0)

    async def handler(request: web.Request) -> web.StreamResponse:
        p = unquote(request.path)
        srv.hits.append((p, request.headers.get("host", "")))
        if p == "/img.png":
            return web.Response(body=IMAGE_PNG, content_type="image/png")
        if p == "/page":
            return web.Response(text="<html>hi</html>", content_type="text/html")
        if p == "/missing":
            return web.Response(status=404, text="nope", content_type="text/plain")
        if p.startswith("/to/"):  # /to/<url>: redirect there
            return web.Response(status=302, headers={"location": p[4:]})
        if p == "/loop":
            return web.Response(status=301, headers={"location": "/loop"})
        if p == "/hop":
            return web.Response(status=307, headers={"location": "img.png"})  # relative
        if p == "/big":
            return web.Response(body=b"\x89PNG" + b"0" * 5000, content_type="image/png")
        if p == "/big-chunked":
            resp = web.StreamResponse(headers={"content-type": "image/png"})
            await resp.prepare(request)
            for _ in range(10):
                await resp.write(b"0" * 1000)
            await resp.write_eof()
            return resp
        if p == "/slow":
            await asyncio.sleep(3)
            return web.Response(body=IMAGE_PNG, content_type="image/png")
        return web.Response(status=500)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.url = f"http://127.0.0.1:{srv.port}"
    yield srv
    await runner.cleanup()


LOCAL = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), allowed_content_types=("image/",),
                    timeout=5)
STRICT = FetchPolicy(allowed_content_types=("image/",), timeout=5)


def resolver_for(table: dict[str, list[str]], calls: list[str] | None = None):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError("NXDOMAIN")
        return table[host]
    return resolve


# --- address classes --------------------------------------------------------------------------

REFUSED = {
    "127.0.0.1": "loopback", "127.255.0.9": "loopback", "::1": "loopback",
    "10.0.0.1": "private", "172.16.5.4": "private", "192.168.1.1": "private",
    "fd00::1": "private", "fc00::5": "private",
    "169.254.1.1": "link-local", "fe80::1": "link-local",
    "100.64.0.1": "CGNAT", "100.127.255.254": "CGNAT",
    "224.0.0.1": "multicast", "239.1.2.3": "multicast", "ff02::1": "multicast",
    "0.0.0.0": "unspecified", "::": "unspecified",
    "240.0.0.1": "reserved", "255.255.255.255": "reserved", "192.0.0.8": "reserved",
    "198.18.0.1": "reserved",
    "169.254.169.254": "cloud metadata", "fd00:ec2::254": "cloud metadata",
    "169.254.170.2": "cloud metadata", "100.100.100.200": "cloud metadata",
    "192.0.0.192": "cloud metadata",
    "::ffff:127.0.0.1": "IPv4-mapped", "::ffff:8.8.8.8": "IPv4-mapped",
    "::7f00:1": "IPv4-compatible", "::8.8.8.8": "IPv4-compatible",
    "64:ff9b::a00:1": "private", "64:ff9b::7f00:1": "loopback",
    "2002:a00:1::1": "private", "2002:a9fe:a9fe::": "cloud metadata",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "192.0.2.1": "private", "2001:db8::1": "private",  # documentation ranges
}


@pytest.mark.parametrize(("addr", "why"), sorted(REFUSED.items()))
def test_address_classes_are_refused(addr: str, why: str) -> None:
    problem = address_problem(ipaddress.ip_address(addr))
    assert problem is not None and why in problem, (addr, problem)


@pytest.mark.parametrize("addr", ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700::1111",
                                  "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_pass(addr: str) -> None:
    assert address_problem(ipaddress.ip_address(addr)) is None


@pytest.mark.parametrize(("addr", "why"), sorted(REFUSED.items()))
async def test_every_refused_class_via_url(addr: str, why: str, server: Server) -> None:
    host = f"[{addr}]" if ":" in addr else addr
    with pytest.raises(InvalidRequest, match=why):
        await fetch(f"http://{host}:{server.port}/img.png", STRICT)


# --- numeric spellings --------------------------------------------------------------------------

SPELLINGS = {
    "2130706433": "127.0.0.1", "0x7f.1": "127.0.0.1", "017700000001": "127.0.0.1",
    "0x7f000001": "127.0.0.1", "127.1": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
    "0x7F.0.0.0x1": "127.0.0.1", "127.0.1": "127.0.0.1", "0xa9.0xfe.0xa9.0xfe": "169.254.169.254",
    "2852039166": "169.254.169.254", "012.0.0.1": "10.0.0.1", "0xc0a80001": "192.168.0.1",
    "127.0.0.1.": "127.0.0.1", "8.8.8.8": "8.8.8.8",
}


@pytest.mark.parametrize(("host", "ip"), sorted(SPELLINGS.items()))
def test_ipv4_spellings_are_normalised(host: str, ip: str) -> None:
    assert parse_ip_host(host) == ipaddress.ip_address(ip)


@pytest.mark.parametrize("host", ["example.com", "1.example", "0x7f.example", "a1", "1e3"])
def test_names_are_not_addresses(host: str) -> None:
    assert parse_ip_host(host) is None


@pytest.mark.parametrize("host", ["256.1.1.1", "08.1.1.1", "1.2.3.4.5", "4294967296",
                                  "1.2.65536", "0x100.1.1.1"])
def test_invalid_numeric_hosts_are_refused_not_resolved(host: str) -> None:
    with pytest.raises(InvalidRequest, match="not a valid IPv4"):
        parse_ip_host(host)


@pytest.mark.parametrize("host", [h for h, ip in sorted(SPELLINGS.items()) if ip != "8.8.8.8"])
async def test_numeric_spellings_of_internal_hosts_are_refused(host: str,
                                                              server: Server) -> None:
    before = len(server.hits)
    with pytest.raises(InvalidRequest, match="Refusing"):
        await fetch(f"http://{host}:{server.port}/img.png", STRICT)
    assert len(server.hits) == before  # never connected


# --- names ----------------------------------------------------------------------------------------


async def test_localhost_is_refused_and_the_address_is_not_revealed(server: Server) -> None:
    with pytest.raises(InvalidRequest) as e:
        await fetch(f"http://localhost:{server.port}/img.png", STRICT)
    assert "loopback" in e.value.message and "127.0.0.1" not in e.value.message


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolve = resolver_for({"images.example.test": ["203.0.113.9", "10.1.2.3"],
                            "cdn.example.test": ["172.20.0.4"]})
    for host in ("images.example.test", "cdn.example.test"):
        with pytest.raises(InvalidRequest, match="resolves to a private address") as e:
            await fetch(f"https://{host}/a.png", STRICT, resolver=resolve)
        assert "10.1.2.3" not in e.value.message and "172.20" not in e.value.message


async def test_the_system_resolver_is_used_by_default(server: Server) -> None:
    with pytest.raises(InvalidRequest, match="loopback"):
        await fetch(f"http://ip6-localhost.localhost:{server.port}/", STRICT)
    with pytest.raises(InvalidRequest, match="does not resolve"):
        await fetch("http://no-such-host.invalid/a.png", STRICT)


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.google.internal.",
                                  "metadata.goog"])
async def test_metadata_names_are_refused_before_any_lookup(host: str) -> None:
    calls: list[str] = []
    with pytest.raises(InvalidRequest, match="cloud metadata"):
        await fetch(f"http://{host}/computeMetadata/v1/", STRICT,
                    resolver=resolver_for({}, calls))
    assert calls == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png",
                                 "gopher://example.com/", "http:///nohost", "not a url",
                                 "javascript:alert(1)"])
async def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(InvalidRequest):
        await fetch(url, STRICT)


# --- allowlist, pinning, redirects, limits ------------------------------------------------------------


async def test_an_allowlisted_host_passes(server: Server) -> None:
    got = await fetch(f"{server.url}/img.png", LOCAL)
    assert (got.status, got.content_type, got.body) == (200, "image/png", IMAGE_PNG)
    assert got.url == f"{server.url}/img.png"
    with pytest.raises(InvalidRequest, match="loopback"):  # not without the allowlist
        await fetch(f"{server.url}/img.png", STRICT)


async def test_odd_spellings_of_an_allowlisted_address_are_normalised(server: Server) -> None:
    got = await fetch(f"http://0x7f.1:{server.port}/img.png", LOCAL)
    assert got.body == IMAGE_PNG and got.url == f"{server.url}/img.png"
    assert server.hits[-1] == ("/img.png", f"127.0.0.1:{server.port}")


async def test_the_connection_goes_to_the_vetted_address_with_the_original_host(
        server: Server) -> None:
    calls: list[str] = []
    policy = FetchPolicy(allow_hosts=frozenset({"images.internal.test"}), timeout=5)
    got = await fetch(f"http://images.internal.test:{server.port}/img.png", policy,
                      resolver=resolver_for({"images.internal.test": ["127.0.0.1"]}, calls))
    assert got.body == IMAGE_PNG
    assert calls == ["images.internal.test"]  # resolved once: nothing to rebind
    assert server.hits[-1] == ("/img.png", f"images.internal.test:{server.port}")


async def test_redirects_are_followed_and_each_hop_is_vetted(server: Server) -> None:
    got = await fetch(f"{server.url}/hop", LOCAL)
    assert got.body == IMAGE_PNG and got.url.endswith("/img.png")
    before = len(server.hits)
    targets = (f"http://localhost:{server.port}/img.png", "http://10.0.0.7/img.png",
               f"http://2130706434:{server.port}/img.png",  # 127.0.0.2: not allowlisted
               "http://169.254.169.254/latest/meta-data/",
               f"http://[::ffff:127.0.0.1]:{server.port}/img.png")
    for target in targets:
        with pytest.raises(InvalidRequest, match="Refusing"):
            await fetch(f"{server.url}/to/{target}", LOCAL)
    # each attempt reached only the allowlisted redirector, never the target
    assert [p for p, _ in server.hits[before:]] == [f"/to/{t}" for t in targets]
    with pytest.raises(InvalidRequest, match="Only http and https"):
        await fetch(f"{server.url}/to/file:///etc/passwd", LOCAL)


async def test_redirect_loops_are_bounded(server: Server) -> None:
    with pytest.raises(InvalidRequest, match="Too many redirects"):
        await fetch(f"{server.url}/loop", LOCAL)


async def test_content_type_size_and_time_limits(server: Server) -> None:
    with pytest.raises(InvalidRequest, match="content type 'text/html'"):
        await fetch(f"{server.url}/page", LOCAL)
    small = FetchPolicy(allow_hosts=LOCAL.allow_hosts, max_bytes=2000)
    with pytest.raises(InvalidRequest, match="larger than 2000 bytes"):
        await fetch(f"{server.url}/big", small)  # declared by content-length
    with pytest.raises(InvalidRequest, match="larger than 2000 bytes"):
        await fetch(f"{server.url}/big-chunked", small)  # counted while reading
    quick = FetchPolicy(allow_hosts=LOCAL.allow_hosts, timeout=0.3)
    with pytest.raises(InvalidRequest, match="timed out"):
        await fetch(f"{server.url}/slow", quick)
    # an error status is returned as such (the caller decides); its body is not an image
    got = await fetch(f"{server.url}/missing", LOCAL)
    assert got.status == 404


async def test_a_dead_port_is_a_clear_error(server: Server) -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout=5)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InvalidRequest, match="connection failed"):
        await fetch(f"http://127.0.0.1:{port}/", policy)
