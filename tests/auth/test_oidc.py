"""OidcAuth against a real, certified OpenID provider (node-oidc-provider): discovery,
JWT validation with its JWKS (RS256, ES256, EdDSA), key rotation, opaque-token
introspection with every client auth method it supports, revocation, logout URLs, and
the attacks that need a live issuer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from dragoman.auth import (
    ChainedAuth,
    ClientAuth,
    JwtAuth,
    MtlsClient,
    OidcAuth,
    Principal,
    RequestInfo,
    StaticTokens,
    errors,
)
from dragoman.auth.client_auth import PREFERENCE

from .infra import OIDC_DIR, SECRET, OidcProvider, free_port, http_json

OPAQUE_AUD = "urn:llm-gateway:opaque"


def req(token: str) -> RequestInfo:
    return RequestInfo("POST", "/v1/chat/completions", {"authorization": f"Bearer {token}"})


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def client_key(alg: str) -> str:
    return (OIDC_DIR / f"client-{alg.lower()}.jwk.json").read_text()


def verifier(oidc: OidcProvider, **kw: Any) -> OidcAuth:
    kw.setdefault("audience", "urn:llm-gateway")
    return OidcAuth(oidc.issuer, **kw)


def introspecting(oidc: OidcProvider, client: ClientAuth, **kw: Any) -> OidcAuth:
    return OidcAuth(oidc.issuer, audience="urn:llm-gateway", client=client,
                    introspection_audience=OPAQUE_AUD, ca_pem=oidc.ca_pem, **kw)


# --- discovery and JWT validation -------------------------------------------------------

async def test_discovery_document(oidc: OidcProvider) -> None:
    auth = verifier(oidc)
    doc = await auth.metadata.document()
    assert doc["issuer"] == oidc.issuer
    assert doc["jwks_uri"] == oidc.issuer + "/jwks"
    assert doc["introspection_endpoint"] == oidc.issuer + "/token/introspection"
    assert doc["mtls_endpoint_aliases"]["introspection_endpoint"].startswith(oidc.mtls_base)
    assert set(PREFERENCE) <= set(doc["token_endpoint_auth_methods_supported"])
    await auth.aclose()


@pytest.mark.parametrize(("resource", "alg"), [("urn:llm-gateway", "RS256"),
                                               ("urn:llm-gateway:es256", "ES256"),
                                               ("urn:llm-gateway:eddsa", "EdDSA")])
async def test_provider_jwts_verify_and_map_to_principals(oidc: OidcProvider, resource: str,
                                                          alg: str) -> None:
    token = oidc.token(resource, scope="llm:invoke llm:admin")
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == alg
    auth = verifier(oidc)
    p = await auth.resolve(req(token))
    assert p == Principal(tenant_id="team-a", subject="gw-basic",
                          scopes=frozenset({"llm:invoke", "llm:admin"}),
                          allowed_models=frozenset({"dragoman/echo"}))
    await auth.resolve(req(oidc.token(resource)))
    assert auth.metadata.jwks_fetches == 1  # cached across tokens
    await auth.aclose()


async def test_required_scope_and_audience(oidc: OidcProvider) -> None:
    from dragoman.auth import ClaimMapping

    token = oidc.token(scope="llm:invoke")
    strict = verifier(oidc, claims=ClaimMapping(required_scopes=frozenset({"llm:admin"})))
    with pytest.raises(errors.PolicyDenied):
        await strict.resolve(req(token))
    other = verifier(oidc, audience="urn:someone-else")
    with pytest.raises(errors.Invalid, match="audience"):
        await other.resolve(req(token))
    for a in (strict, other):
        await a.aclose()


async def test_discovery_naming_another_issuer_is_refused(oidc: OidcProvider) -> None:
    # The same server reached under another name: its document names 127.0.0.1.
    auth = OidcAuth(oidc.issuer.replace("127.0.0.1", "localhost"), audience="urn:llm-gateway")
    with pytest.raises(errors.Provider, match="another issuer"):
        await auth.resolve(req(oidc.token()))
    await auth.aclose()


async def test_jwks_rotation_new_key_accepted_old_key_retired(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    provider = OidcProvider(tmp_path_factory.mktemp("oidc-rot")).start()
    try:
        auth = verifier(provider, jwks_min_refresh=0.2)
        old = provider.token()
        assert (await auth.resolve(req(old))).tenant_id == "team-a"
        provider.restart("provider-jwks-rotated.json")  # op-rs256 retired, op-rs256-next new
        new = provider.token()
        assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] \
            == "op-rs256-next"
        await asyncio.sleep(0.25)
        assert (await auth.resolve(req(new))).tenant_id == "team-a"  # unknown kid → refetch
        assert auth.metadata.jwks_fetches == 2
        with pytest.raises(errors.Invalid, match="not trusted"):
            await auth.resolve(req(old))  # signed by a key the issuer no longer publishes
        await auth.aclose()
    finally:
        provider.stop()


async def test_unknown_kid_flood_is_rate_limited(oidc: OidcProvider) -> None:
    auth = verifier(oidc, jwks_min_refresh=30)
    good = oidc.token()
    head, body, sig = good.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))

    async def bogus(i: int) -> None:
        forged = f"{b64({**header, 'kid': f'kid-{i}'})}.{body}.{sig}"
        with pytest.raises(errors.Invalid, match="not trusted"):
            await auth.resolve(req(forged))

    await asyncio.gather(*(bogus(i) for i in range(50)))
    await asyncio.gather(*(bogus(i) for i in range(50, 100)))
    # One fetch to learn the keys, one refetch for the first unknown kid, then none.
    assert auth.metadata.jwks_fetches == 2
    assert (await auth.resolve(req(good))).tenant_id == "team-a"
    await auth.aclose()


def _public_pem_of_provider_rs256() -> bytes:
    jwks = json.loads((OIDC_DIR / "provider-jwks.json").read_text())
    rsa = next(k for k in jwks["keys"] if k["kid"] == "op-rs256")
    public = {k: v for k, v in rsa.items() if k in ("kty", "n", "e", "kid")}
    return RSAKey.import_key(public).as_pem(private=False)


def _claims(oidc: OidcProvider, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": oidc.issuer, "aud": "urn:llm-gateway", "sub": "mallory", "tenant": "team-a",
            "scope": "llm:invoke llm:admin", "iat": now, "exp": now + 300, **over}


def _attacks(oidc: OidcProvider) -> dict[str, str]:
    claims = b64(_claims(oidc))
    hs_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': 'op-rs256'})}.{claims}"
    hs_sig = hmac.new(_public_pem_of_provider_rs256(), hs_input.encode(), hashlib.sha256)
    attacker = RSAKey.generate_key(2048, parameters={"kid": "op-rs256"})
    injected = jwt.encode({"alg": "RS256", "kid": "op-rs256",
                           "jwk": attacker.as_dict(private=False)}, _claims(oidc), attacker)
    good = oidc.token()
    _, body, sig = good.split(".")
    return {
        "alg_none": f"{b64({'alg': 'none', 'kid': 'op-rs256'})}.{claims}.",
        "hs256_with_the_issuers_rsa_public_key": f"{hs_input}.{b64(hs_sig.digest())}",
        "attacker_key_under_the_issuers_kid": jwt.encode({"alg": "RS256", "kid": "op-rs256"},
                                                         _claims(oidc), attacker),
        "attacker_key_embedded_in_header": injected,
        "kid_pointing_to_a_missing_key": f"{b64({'alg': 'RS256', 'kid': 'nope'})}.{body}.{sig}",
        "kid_path_injection": f"{b64({'alg': 'RS256', 'kid': '../../jwks'})}.{body}.{sig}",
        "wrong_issuer": jwt.encode({"alg": "RS256", "kid": "op-rs256"},
                                   _claims(oidc, iss="http://evil.test"), attacker),
        "oversized": good + "A" * 9000,
        "garbage_base64": "%%%." + body + ".***",
        "opaque_garbage_without_introspection": "not-a-jwt-at-all",
    }


ATTACK_NAMES = ["alg_none", "hs256_with_the_issuers_rsa_public_key",
                "attacker_key_under_the_issuers_kid", "attacker_key_embedded_in_header",
                "kid_pointing_to_a_missing_key", "kid_path_injection", "wrong_issuer",
                "oversized", "garbage_base64", "opaque_garbage_without_introspection"]


@pytest.mark.parametrize("attack", ATTACK_NAMES)
async def test_attack_battery_against_the_live_issuer(oidc: OidcProvider, attack: str) -> None:
    token = _attacks(oidc)[attack]
    auth = verifier(oidc)
    with pytest.raises(errors.Invalid) as refused:
        await auth.resolve(req(token))
    assert token not in refused.value.message
    if attack in ("alg_none", "oversized", "garbage_base64", "attacker_key_embedded_in_header",
                  "hs256_with_the_issuers_rsa_public_key"):
        assert auth.metadata.jwks_fetches == 0  # refused before any key lookup
    await auth.aclose()


async def test_expired_and_not_yet_valid_tokens(oidc: OidcProvider) -> None:
    # Signed with the provider's real private key: only the time claims are wrong.
    jwks = json.loads((OIDC_DIR / "provider-jwks.json").read_text())
    key = RSAKey.import_key(next(k for k in jwks["keys"] if k["kid"] == "op-rs256"))
    now = int(time.time())
    auth = verifier(oidc, leeway=5)
    ok = jwt.encode({"alg": "RS256", "kid": "op-rs256"}, _claims(oidc), key)
    assert (await auth.resolve(req(ok))).subject == "mallory"  # the forgery kit works…
    for bad, why in [(_claims(oidc, exp=now - 10), "expired"),
                     (_claims(oidc, nbf=now + 60), "not valid yet"),
                     (_claims(oidc, iat=now + 60), "future")]:
        with pytest.raises(errors.Invalid, match=why):  # …so these fail on time alone
            await auth.resolve(req(jwt.encode({"alg": "RS256", "kid": "op-rs256"}, bad, key)))
    await auth.aclose()


# --- introspection: every client auth method ------------------------------------------

def _clients(oidc: OidcProvider) -> dict[str, ClientAuth]:
    return {
        "client_secret_basic": ClientAuth("gw-rs-basic", client_secret=SECRET("gw-rs-basic"),
                                          methods=["client_secret_basic"]),
        "client_secret_post": ClientAuth("gw-rs-post", client_secret=SECRET("gw-rs-post"),
                                         methods=["client_secret_post"]),
        "client_secret_jwt": ClientAuth("gw-rs-jwt", client_secret=SECRET("gw-rs-jwt")),
        "private_key_jwt RS256": ClientAuth("gw-rs-pk-rs256", private_key=client_key("RS256")),
        "private_key_jwt ES256": ClientAuth("gw-rs-pk-es256", private_key=client_key("ES256")),
        "private_key_jwt EdDSA": ClientAuth("gw-rs-pk-eddsa", private_key=client_key("EdDSA")),
        "tls_client_auth": ClientAuth("gw-rs-tls", mtls=MtlsClient(
            oidc.tls_client.cert, oidc.tls_client.key, ca_pem=oidc.ca_pem)),
        "self_signed_tls_client_auth": ClientAuth("gw-rs-selfsigned", mtls=MtlsClient(
            oidc.self_signed_client.cert, oidc.self_signed_client.key, ca_pem=oidc.ca_pem)),
    }


CLIENT_METHODS = ["client_secret_basic", "client_secret_post", "client_secret_jwt",
                  "private_key_jwt RS256", "private_key_jwt ES256", "private_key_jwt EdDSA",
                  "tls_client_auth", "self_signed_tls_client_auth"]


@pytest.mark.parametrize("method", CLIENT_METHODS)
async def test_opaque_token_introspection_with_each_client_auth_method(
        oidc: OidcProvider, method: str) -> None:
    auth = introspecting(oidc, _clients(oidc)[method])
    token = oidc.token(OPAQUE_AUD, scope="llm:invoke")
    assert "." not in token  # opaque
    p = await auth.resolve(req(token))
    assert (p.tenant_id, p.scopes, p.allowed_models) == \
        ("team-a", frozenset({"llm:invoke"}), frozenset({"dragoman/echo"}))
    assert auth.introspector is not None
    assert auth.introspector.last_method == method.split()[0]
    await auth.resolve(req(token))
    assert auth.introspector.calls == 1  # cached
    with pytest.raises(errors.Invalid, match="not active"):
        await auth.resolve(req("made-up-opaque-token"))
    await auth.aclose()


async def test_automatic_choice_prefers_the_strongest_configured_method(
        oidc: OidcProvider) -> None:
    # Credentials for several methods: the strongest the issuer advertises is used (and
    # the provider accepts only the method each client registered, so success proves it).
    tls = oidc.tls_client
    both = ClientAuth("gw-rs-tls", client_secret="not-registered-" * 3,
                      private_key=client_key("ES256"),
                      mtls=MtlsClient(tls.cert, tls.key, ca_pem=oidc.ca_pem))
    assert both.available()[:2] == ["tls_client_auth", "private_key_jwt"]
    auth = introspecting(oidc, both)
    assert (await auth.resolve(req(oidc.token(OPAQUE_AUD)))).tenant_id == "team-a"
    assert auth.introspector is not None and auth.introspector.last_method == "tls_client_auth"
    key_and_secret = ClientAuth("gw-rs-pk-es256", client_secret="unused-" * 5,
                                private_key=client_key("ES256"))
    auth2 = introspecting(oidc, key_and_secret)
    assert (await auth2.resolve(req(oidc.token(OPAQUE_AUD)))).tenant_id == "team-a"
    assert auth2.introspector is not None
    assert auth2.introspector.last_method == "private_key_jwt"
    for a in (auth, auth2):
        await a.aclose()


async def test_method_choice_follows_what_the_issuer_advertises(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    provider = OidcProvider(tmp_path_factory.mktemp("oidc-basic-only"),
                            auth_methods="client_secret_basic,client_secret_post,none").start()
    try:
        # The secret could also sign a client_secret_jwt assertion, but it is not offered.
        auth = introspecting(provider, ClientAuth("gw-rs-basic",
                                                  client_secret=SECRET("gw-rs-basic")))
        assert (await auth.resolve(req(provider.token(OPAQUE_AUD)))).tenant_id == "team-a"
        assert auth.introspector is not None
        assert auth.introspector.last_method == "client_secret_basic"
        # Only a private key configured, and the issuer does not take private_key_jwt:
        # fail closed, without sending anything.
        keyed = introspecting(provider, ClientAuth("gw-rs-pk-es256",
                                                   private_key=client_key("ES256")))
        with pytest.raises(errors.Provider, match="no client authentication method") as e:
            await keyed.resolve(req(provider.token(OPAQUE_AUD)))
        assert e.value.status == 502
        assert keyed.introspector is not None and keyed.introspector.calls == 0
        for a in (auth, keyed):
            await a.aclose()
    finally:
        provider.stop()


async def test_wrong_client_credentials_are_a_provider_error(oidc: OidcProvider) -> None:
    bad = introspecting(oidc, ClientAuth("gw-rs-basic", client_secret="wrong-secret",
                                         methods=["client_secret_basic"]))
    with pytest.raises(errors.Provider, match="invalid_client") as e:
        await bad.resolve(req(oidc.token(OPAQUE_AUD)))
    assert "wrong-secret" not in e.value.message
    other_cert = introspecting(oidc, ClientAuth("gw-rs-tls", mtls=MtlsClient(
        oidc.tls_client_other.cert, oidc.tls_client_other.key, ca_pem=oidc.ca_pem)))
    with pytest.raises(errors.Provider, match="invalid_client"):
        await other_cert.resolve(req(oidc.token(OPAQUE_AUD)))
    for a in (bad, other_cert):
        await a.aclose()


async def test_revocation_is_seen_once_the_cache_entry_lapses(oidc: OidcProvider) -> None:
    auth = introspecting(oidc, _clients(oidc)["client_secret_basic"], cache_ttl=1.0)
    token = oidc.token(OPAQUE_AUD)
    assert (await auth.resolve(req(token))).tenant_id == "team-a"
    oidc.revoke(token)
    assert (await auth.resolve(req(token))).tenant_id == "team-a"  # still cached (≤ 1 s)
    await asyncio.sleep(1.1)
    with pytest.raises(errors.Invalid, match="not active"):
        await auth.resolve(req(token))
    await auth.aclose()


async def test_introspection_cache_never_outlives_the_token(oidc: OidcProvider) -> None:
    auth = introspecting(oidc, _clients(oidc)["client_secret_post"], cache_ttl=600, leeway=0)
    token = oidc.token("urn:llm-gateway:opaque-short")  # lives 2 s
    assert (await auth.resolve(req(token))).tenant_id == "team-a"
    await asyncio.sleep(2.2)
    with pytest.raises(errors.Invalid):
        await auth.resolve(req(token))
    assert auth.introspector is not None and auth.introspector.calls == 2
    await auth.aclose()


async def test_opaque_token_for_another_audience_is_refused(oidc: OidcProvider) -> None:
    auth = OidcAuth(oidc.issuer, audience="urn:llm-gateway",
                    client=_clients(oidc)["client_secret_basic"],
                    introspection_audience="urn:somewhere-else")
    with pytest.raises(errors.Invalid, match="audience"):
        await auth.resolve(req(oidc.token(OPAQUE_AUD)))
    await auth.aclose()


async def test_introspect_always_never_falls_back_to_local_checks(oidc: OidcProvider) -> None:
    # JWT access tokens cannot be introspected at this provider (by design), so
    # "always" mode turns them away: it never falls back to local checks.
    auth = introspecting(oidc, _clients(oidc)["client_secret_basic"], introspect="always")
    with pytest.raises(errors.Provider, match=r"HTTP 400, unsupported_token_type"):
        await auth.resolve(req(oidc.token()))
    await auth.aclose()


# --- issuer down, with and without short-circuit ------------------------------------------

async def test_issuer_down(oidc: OidcProvider) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    down = OidcAuth(gone, audience="urn:llm-gateway")
    token = oidc.token()
    with pytest.raises(errors.Transport) as e:
        await down.resolve(req(token))
    assert e.value.status == 503 and e.value.code == "auth_unavailable"
    # A fallback that can vouch for the same JWT without the issuer: its published keys,
    # pinned in configuration.
    jwks = json.loads((OIDC_DIR / "provider-jwks.json").read_text())
    pinned = JwtAuth(algorithm="RS256", jwks=jwks, issuer=oidc.issuer, audience="urn:llm-gateway")
    lenient = ChainedAuth([down, pinned])
    assert (await lenient.resolve(req(token))).tenant_id == "team-a"  # fell through
    for strict in (lenient.with_short_circuit_on_transport_error(),
                   lenient.with_short_circuit_on_infrastructure_errors()):
        with pytest.raises(errors.Transport):
            await strict.resolve(req(token))  # halted: the fallback was never asked
    # An introspecting resolver needs the issuer for every non-JWT token, static keys
    # included: whether they still work while it is down is what the switch decides.
    intro_down = OidcAuth(gone, audience="urn:llm-gateway",
                          client=ClientAuth("gw", client_secret="s" * 40))
    static = StaticTokens({"sk-static": Principal(tenant_id="static")})
    chain = ChainedAuth([intro_down, static])
    assert (await chain.resolve(req("sk-static"))).tenant_id == "static"
    with pytest.raises(errors.Transport):
        await chain.with_short_circuit_on_transport_error().resolve(req("sk-static"))
    with pytest.raises(errors.Transport):  # nobody knows it, and the issuer was down
        await chain.resolve(req("sk-unknown"))
    for a in (down, intro_down):
        await a.aclose()


# --- logout ----------------------------------------------------------------------------------

async def test_rp_initiated_logout_uri(oidc: OidcProvider) -> None:
    auth = verifier(oidc)
    with pytest.raises(errors.Provider, match="discovery"):
        auth.build_logout_uri("id.token", "http://127.0.0.1/bye", "s1")
    assert await auth.end_session_endpoint() == oidc.issuer + "/session/end"
    uri = auth.build_logout_uri(None, "http://127.0.0.1/bye", "st&ate", client_id="gw-web")
    parts = urllib.parse.urlsplit(uri)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == oidc.issuer + "/session/end"
    assert urllib.parse.parse_qs(parts.query) == {
        "post_logout_redirect_uri": ["http://127.0.0.1/bye"], "state": ["st&ate"],
        "client_id": ["gw-web"]}
    # The provider itself accepts the URL (it shows its logout confirmation page)…
    status, _ = http_json("GET", uri)
    assert status == 200
    # …and refuses one with a redirect the client never registered.
    bad = auth.build_logout_uri(None, "http://evil.test/", "s", client_id="gw-web")
    assert http_json("GET", bad)[0] == 400
    with_hint = auth.build_logout_uri("eyJ.id.token", None, None)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(with_hint).query) == \
        {"id_token_hint": ["eyJ.id.token"]}
    await auth.aclose()


def test_configuration_mistakes_are_refused_early(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="audience"):
        OidcAuth("http://issuer.test", audience="")
    with pytest.raises(ValueError, match="public keys"):
        OidcAuth("http://issuer.test", audience="a", algorithms=["RS256", "HS256"])
    with pytest.raises(ValueError, match="client credentials"):
        OidcAuth("http://issuer.test", audience="a", introspect="always")
