"""``reload_mtls_identity`` under load, against a local TLS endpoint that demands a client
certificate and answers introspection with the fingerprint of the certificate it saw: every
request must present one complete identity (old or new), and every request that starts
after a reload must present the new one."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trustme
from aiohttp import web

from dragoman.auth import ClientAuth, OidcAuth, RequestInfo, errors
from dragoman.auth.mtls import MtlsClient

from .infra import Pem, leaf


@dataclass
class TlsIssuer:
    url: str
    ca_pem: str
    ca: trustme.CA
    seen: list[str]


def fingerprint(cert_pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest()


@pytest.fixture
async def issuer() -> AsyncIterator[TlsIssuer]:
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ca.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_OPTIONAL  # discovery without a certificate; checked per route
    seen: list[str] = []
    box: dict[str, str] = {}

    async def discovery(request: web.Request) -> web.Response:
        base = box["url"]
        return web.json_response({"issuer": base, "jwks_uri": base + "/jwks",
                                  "introspection_endpoint": base + "/introspect",
                                  "token_endpoint_auth_methods_supported": ["tls_client_auth"]})

    async def introspect(request: web.Request) -> web.Response:
        tls = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if not der:
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        assert form["client_id"] == "gw"
        fp = hashlib.sha256(der).hexdigest()
        seen.append(fp)
        await asyncio.sleep(0.005)  # keep requests in flight across reloads
        return web.json_response({"active": True, "tenant": fp, "exp": int(time.time()) + 600})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_post("/introspect", introspect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    box["url"] = f"https://127.0.0.1:{port}"
    yield TlsIssuer(box["url"], ca.cert_pem.bytes().decode(), ca, seen)
    await runner.cleanup()


def req(token: str) -> RequestInfo:
    return RequestInfo("POST", "/v1/responses", {"authorization": f"Bearer {token}"})


def resolver(issuer: TlsIssuer, first: Pem) -> OidcAuth:
    mtls = MtlsClient(first.cert, first.key, ca_pem=issuer.ca_pem)
    return OidcAuth(issuer.url, audience="urn:gw", ca_pem=issuer.ca_pem,
                    client=ClientAuth("gw", mtls=mtls), cache_ttl=0)


async def test_no_request_sees_a_torn_client(issuer: TlsIssuer) -> None:
    a, b = leaf(issuer.ca, "gw-a.client.test"), leaf(issuer.ca, "gw-b.client.test")
    fa, fb = fingerprint(a.cert), fingerprint(b.cert)
    auth = resolver(issuer, a)
    assert auth.introspector is not None and auth.introspector.client.mtls is not None
    mtls = auth.introspector.client.mtls
    identities = [mtls._current]
    got: list[tuple[int, str]] = []  # (generation when the request started, cert it used)
    generation = 0

    async def worker(w: int) -> None:
        for i in range(25):
            started = generation
            p = await auth.resolve(req(f"tok-{w}-{i}"))
            got.append((started, p.tenant_id))
            # Paced, so the 25 requests span the reloads (~250 ms against ~180 ms)
            # however fast one exchange is.
            await asyncio.sleep(0.01)

    async def reloader() -> None:
        nonlocal generation
        for k in range(12):
            await asyncio.sleep(0.015)
            nxt = b if k % 2 == 0 else a
            auth.reload_mtls_identity(nxt.cert, nxt.key)
            identities.append(mtls._current)
            generation += 1

    await asyncio.gather(reloader(), *(worker(w) for w in range(12)))
    assert len(got) == 300 and len(issuer.seen) == 300
    assert {fp for _, fp in got} == {fa, fb}  # both identities served requests
    # A request that started after reload n ran with identity n or a later one: it never
    # went back to an identity replaced before it started.
    expected = [fa if g % 2 == 0 else fb for g in range(13)]
    for started, fp in got:
        assert fp in expected[started:], (started, fp)
    await asyncio.sleep(0.05)
    for old in identities[:-1]:  # every replaced pool was closed once idle
        assert old.users == 0
        assert old.client.open_connections == 0
    await auth.aclose()


async def test_a_bad_reload_keeps_the_old_identity(issuer: TlsIssuer) -> None:
    a, b = leaf(issuer.ca, "gw-a.client.test"), leaf(issuer.ca, "gw-b.client.test")
    auth = resolver(issuer, a)
    assert (await auth.resolve(req("t1"))).tenant_id == fingerprint(a.cert)
    with pytest.raises(ValueError, match="cannot load the client certificate"):
        auth.reload_mtls_identity(b.cert, a.key)  # mismatched key: refused whole
    with pytest.raises(ValueError, match="not a PEM certificate"):
        auth.reload_mtls_identity("garbage", b.key)
    assert (await auth.resolve(req("t2"))).tenant_id == fingerprint(a.cert)
    auth.reload_mtls_identity(b.cert, b.key)
    assert (await auth.resolve(req("t3"))).tenant_id == fingerprint(b.cert)
    await auth.aclose()


async def test_without_a_certificate_the_endpoint_refuses(issuer: TlsIssuer) -> None:
    # Same endpoint, secret-based client: the issuer advertises tls_client_auth only.
    auth = OidcAuth(issuer.url, audience="urn:gw", ca_pem=issuer.ca_pem,
                    client=ClientAuth("gw", client_secret="s" * 40))
    with pytest.raises(errors.Provider, match="no client authentication method"):
        await auth.resolve(req("t"))
    await auth.aclose()


async def test_reload_can_add_mtls_to_a_client_without_it(issuer: TlsIssuer) -> None:
    a = leaf(issuer.ca, "gw-a.client.test")
    auth = OidcAuth(issuer.url, audience="urn:gw", ca_pem=issuer.ca_pem,
                    client=ClientAuth("gw", client_secret="s" * 40))
    auth.reload_mtls_identity(a.cert, a.key)
    assert (await auth.resolve(req("t"))).tenant_id == fingerprint(a.cert)
    await auth.aclose()


async def test_reload_from_one_combined_pem(issuer: TlsIssuer) -> None:
    # cert-manager / Vault PKI bundles: key first or certificate first, chain included.
    a, b = leaf(issuer.ca, "gw-a.client.test"), leaf(issuer.ca, "gw-b.client.test")
    auth = resolver(issuer, a)
    assert (await auth.resolve(req("c1"))).tenant_id == fingerprint(a.cert)
    auth.reload_mtls_identity_combined(b.key + b.cert + issuer.ca_pem)
    assert (await auth.resolve(req("c2"))).tenant_id == fingerprint(b.cert)
    auth.reload_mtls_identity_combined(a.cert + a.key)
    assert (await auth.resolve(req("c3"))).tenant_id == fingerprint(a.cert)
    with pytest.raises(ValueError, match="exactly one PRIVATE KEY"):
        auth.reload_mtls_identity_combined(b.cert)  # no key: refused, old identity kept
    assert (await auth.resolve(req("c4"))).tenant_id == fingerprint(a.cert)
    await auth.aclose()


async def test_introspection_method_pinned_or_from_discovery(issuer: TlsIssuer) -> None:
    a = leaf(issuer.ca, "gw-a.client.test")
    mtls = MtlsClient(a.cert, a.key, ca_pem=issuer.ca_pem)
    auth = OidcAuth(issuer.url, audience="urn:gw", ca_pem=issuer.ca_pem, cache_ttl=0,
                    client=ClientAuth("gw", client_secret="s" * 40, mtls=mtls,
                                      methods=["tls_client_auth", "client_secret_basic"]))
    # Pinned: the secret goes over a connection without a certificate, which this
    # issuer (discovery says tls_client_auth only) refuses.
    assert auth.with_introspection_auth_method("client_secret_basic") is auth
    with pytest.raises(errors.Provider, match="refused the gateway's introspection"):
        await auth.resolve(req("p1"))
    assert auth.introspector is not None
    assert auth.introspector.last_method == "client_secret_basic"
    # tako's explicit selector: back to the discovered, strongest common method.
    assert auth.with_introspection_auth_method_from_discovery() is auth
    assert (await auth.resolve(req("p2"))).tenant_id == fingerprint(a.cert)
    assert auth.introspector.last_method == "tls_client_auth"
    with pytest.raises(ValueError, match="cannot serve 'private_key_jwt'"):
        auth.with_introspection_auth_method("private_key_jwt")
    await auth.aclose()
    no_client = OidcAuth(issuer.url, audience="urn:gw", ca_pem=issuer.ca_pem)
    with pytest.raises(ValueError, match="no introspection client"):
        no_client.with_introspection_auth_method_from_discovery()
    await no_client.aclose()
