"""VaultAuth against a real Vault-API server (OpenBao dev server): KV v2 lookups, token /
AppRole / Kubernetes login, renewal and re-login, namespaces, caching and outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from dragoman.auth import AppRoleLogin, KubernetesLogin, RequestInfo, TokenLogin, VaultAuth, errors

from .infra import OpenBao, free_port

READ_TOKENS = 'path "secret/data/dragoman/tokens/*" { capabilities = ["read"] }'


def req(token: str) -> RequestInfo:
    return RequestInfo("POST", "/v1/messages", {"x-api-key": token})


@dataclass
class Setup:
    bao: OpenBao
    role_id: str
    secret_id: str

    def put(self, caller_token: str, entry: dict[str, Any], namespace: str | None = None
            ) -> None:
        self.bao.ok("POST", f"secret/data/dragoman/tokens/{VaultAuth.entry_name(caller_token)}",
                    {"data": entry}, namespace=namespace)

    def delete(self, caller_token: str) -> None:
        self.bao.ok("DELETE",
                    f"secret/metadata/dragoman/tokens/{VaultAuth.entry_name(caller_token)}")

    def gateway_token(self, **extra: Any) -> str:
        body = {"policies": ["gateway"], "ttl": "1h", "no_default_policy": False, **extra}
        return str(self.bao.ok("POST", "auth/token/create", body)["auth"]["client_token"])

    def approle(self, name: str, **role: Any) -> tuple[str, str]:
        self.bao.ok("POST", f"auth/approle/role/{name}", {"token_policies": ["gateway"], **role})
        rid = self.bao.ok("GET", f"auth/approle/role/{name}/role-id")["data"]["role_id"]
        sid = self.bao.ok("POST", f"auth/approle/role/{name}/secret-id")["data"]["secret_id"]
        return rid, sid


@pytest.fixture(scope="module")
def vault(bao: OpenBao) -> Setup:
    bao.ok("PUT", "sys/policies/acl/gateway", {"policy": READ_TOKENS})
    if "approle/" not in bao.ok("GET", "sys/auth")["data"]:
        bao.ok("POST", "sys/auth/approle", {"type": "approle"})
    s = Setup(bao, "", "")
    s.role_id, s.secret_id = s.approle("gw", token_ttl="1h")
    return s


async def test_kv_v2_lookup_maps_entries_to_principals(vault: Setup) -> None:
    vault.put("sk-alice", {"tenant": "team-a", "subject": "alice", "scopes": ["llm:invoke"],
                           "allowed_models": ["gpt-4o", "claude-*"], "limits": {"rpm": 60}})
    vault.put("sk-notenant", {"subject": "nobody"})
    auth = VaultAuth(vault.bao.address, TokenLogin(vault.gateway_token()))
    p = await auth.resolve(req("sk-alice"))
    assert (p.tenant_id, p.subject, p.scopes, p.allowed_models, dict(p.limits)) == \
        ("team-a", "alice", {"llm:invoke"}, {"gpt-4o", "claude-*"}, {"rpm": 60.0})
    with pytest.raises(errors.Invalid) as unknown:
        await auth.resolve(req("sk-mallory"))
    assert unknown.value.status == 401 and "sk-mallory" not in unknown.value.message
    with pytest.raises(errors.PolicyDenied):
        await auth.resolve(req("sk-notenant"))
    with pytest.raises(errors.Invalid):
        await auth.resolve(RequestInfo("GET", "/v1/models", {}))
    with pytest.raises(errors.Invalid, match="too large"):
        await auth.resolve(req("x" * 9000))
    await auth.aclose()


async def test_lookups_are_cached_for_their_ttl(vault: Setup) -> None:
    vault.put("sk-cached", {"tenant": "before"})
    auth = VaultAuth(vault.bao.address, vault.gateway_token(), cache_ttl=0.5,
                     negative_cache_ttl=0.5)
    assert (await auth.resolve(req("sk-cached"))).tenant_id == "before"
    vault.put("sk-cached", {"tenant": "after"})
    results = await asyncio.gather(*(auth.resolve(req("sk-cached")) for _ in range(20)))
    assert {p.tenant_id for p in results} == {"before"} and auth.lookups == 1
    for _ in range(3):
        with pytest.raises(errors.Invalid):
            await auth.resolve(req("sk-unknown"))
    assert auth.lookups == 2  # the refusal is cached too
    await asyncio.sleep(0.6)
    assert (await auth.resolve(req("sk-cached"))).tenant_id == "after"
    vault.delete("sk-cached")
    await asyncio.sleep(0.6)
    with pytest.raises(errors.Invalid):  # a deleted entry is a revoked key
        await auth.resolve(req("sk-cached"))
    await auth.aclose()


async def test_approle_login_then_renewal_then_relogin_at_max_ttl(vault: Setup) -> None:
    vault.put("sk-renew", {"tenant": "team-r"})
    role_id, secret_id = vault.approle("short", token_ttl="2s", token_max_ttl="3s")
    auth = VaultAuth(vault.bao.address, AppRoleLogin(role_id, secret_id), cache_ttl=0)
    session = auth.session
    seen: list[tuple[str, int, int]] = []  # (gateway token, renewals, logins) per request
    deadline = time.monotonic() + 6
    while session.logins < 2 and time.monotonic() < deadline:
        # Every lookup reads the KV store with the gateway's token: each success proves
        # the token was valid when used.
        assert (await auth.resolve(req("sk-renew"))).tenant_id == "team-r"
        assert session._lease is not None
        seen.append((session._lease.token, session.renewals, session.logins))
        await asyncio.sleep(0.1)
    # Login; at 2/3 of the 2 s lease a renewal (same token; Vault caps it at the 3 s max
    # TTL); before the max TTL a fresh login (a new token).
    first = seen[0][0]
    renewed = [t for t, r, n in seen if r >= 1 and n == 1]
    assert renewed and set(renewed) == {first}
    assert session.logins == 2 and seen[-1][0] != first
    await auth.aclose()


async def test_a_revoked_gateway_token_is_replaced_by_a_new_login(vault: Setup) -> None:
    vault.put("sk-relogin", {"tenant": "team-x"})
    auth = VaultAuth(vault.bao.address, AppRoleLogin(vault.role_id, vault.secret_id),
                     cache_ttl=0)
    assert (await auth.resolve(req("sk-relogin"))).tenant_id == "team-x"
    assert auth.session._lease is not None
    vault.bao.ok("POST", "auth/token/revoke", {"token": auth.session._lease.token})
    assert (await auth.resolve(req("sk-relogin"))).tenant_id == "team-x"
    assert auth.session.logins == 2
    await auth.aclose()


async def test_wrong_approle_secret_and_missing_policy_are_provider_errors(vault: Setup) -> None:
    bad = VaultAuth(vault.bao.address, AppRoleLogin(vault.role_id, "wrong-secret-id"))
    with pytest.raises(errors.Provider, match="AppRole") as e:
        await bad.resolve(req("sk-alice"))
    assert "wrong-secret-id" not in e.value.message and e.value.status == 502
    no_policy = vault.bao.ok("POST", "auth/token/create",
                             {"policies": ["default"], "ttl": "1h"})["auth"]["client_token"]
    blind = VaultAuth(vault.bao.address, no_policy)
    with pytest.raises(errors.Provider, match="denied"):
        await blind.resolve(req("sk-alice"))
    for a in (bad, blind):
        await a.aclose()


async def test_vault_down_is_a_transport_error() -> None:
    auth = VaultAuth(f"http://127.0.0.1:{free_port()}", "any-token")
    with pytest.raises(errors.Transport) as e:
        await auth.resolve(req("sk-alice"))
    assert e.value.status == 503
    await auth.aclose()


async def test_enterprise_namespace_header(vault: Setup) -> None:
    bao = vault.bao
    bao.ok("POST", "sys/namespaces/team-ns")
    bao.ok("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}},
           namespace="team-ns")
    bao.ok("PUT", "sys/policies/acl/gateway", {"policy": READ_TOKENS}, namespace="team-ns")
    bao.ok("POST", "sys/auth/approle", {"type": "approle"}, namespace="team-ns")
    bao.ok("POST", "auth/approle/role/gw", {"token_policies": ["gateway"]}, namespace="team-ns")
    rid = bao.ok("GET", "auth/approle/role/gw/role-id", namespace="team-ns")["data"]["role_id"]
    sid = bao.ok("POST", "auth/approle/role/gw/secret-id",
                 namespace="team-ns")["data"]["secret_id"]
    vault.put("sk-in-namespace", {"tenant": "ns-tenant"}, namespace="team-ns")
    auth = VaultAuth(bao.address, AppRoleLogin(rid, sid), namespace="team-ns")
    assert (await auth.resolve(req("sk-in-namespace"))).tenant_id == "ns-tenant"
    # Outside the namespace the same role does not exist and the entry is not visible.
    root_ns = VaultAuth(bao.address, vault.gateway_token())
    with pytest.raises(errors.Invalid):
        await root_ns.resolve(req("sk-in-namespace"))
    for a in (auth, root_ns):
        await a.aclose()


# --- Kubernetes login ------------------------------------------------------------------------

@dataclass
class TokenReview:
    url: str
    expected: str = ""
    reviewed: list[str] = field(default_factory=list)


@pytest.fixture
async def token_review() -> AsyncIterator[TokenReview]:
    """The one Kubernetes API call OpenBao makes during a kubernetes login (TokenReview),
    served locally: there is no cluster here. It vouches only for the expected JWT."""
    state = TokenReview(url="")

    async def review(request: web.Request) -> web.Response:
        token = (await request.json())["spec"]["token"]
        state.reviewed.append(token)
        ok = token == state.expected
        user = {"username": "system:serviceaccount:default:gateway", "uid": "uid-1",
                "groups": ["system:serviceaccounts"]}
        return web.json_response({"apiVersion": "authentication.k8s.io/v1",
                                  "kind": "TokenReview",
                                  "status": {"authenticated": ok, "user": user if ok else {}}},
                                 status=201)

    app = web.Application()
    app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", review)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def service_account_jwt(key: ec.EllipticCurvePrivateKey) -> str:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return jwt.encode({"alg": "ES256"}, {
        "iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:default:gateway",
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/service-account.name": "gateway",
        "kubernetes.io/serviceaccount/service-account.uid": "uid-1",
        "kubernetes.io/serviceaccount/secret.name": "gateway-token"}, ECKey.import_key(pem))


async def test_kubernetes_login(vault: Setup, token_review: TokenReview, tmp_path: Path) -> None:
    bao = vault.bao
    sa_key = ec.generate_private_key(ec.SECP256R1())
    pub = sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    if "kubernetes/" not in bao.ok("GET", "sys/auth")["data"]:
        bao.ok("POST", "sys/auth/kubernetes", {"type": "kubernetes"})
    bao.ok("POST", "auth/kubernetes/config", {
        "kubernetes_host": token_review.url, "pem_keys": [pub.decode()],
        "disable_local_ca_jwt": True,
        "kubernetes_ca_cert": trustme.CA().cert_pem.bytes().decode()})  # unused: plain http
    bao.ok("POST", "auth/kubernetes/role/gateway", {
        "bound_service_account_names": ["gateway"],
        "bound_service_account_namespaces": ["default"], "token_policies": ["gateway"],
        "ttl": "1h"})
    sa_jwt = service_account_jwt(sa_key)
    token_review.expected = sa_jwt
    jwt_file = tmp_path / "token"
    jwt_file.write_text(sa_jwt + "\n")  # the kubelet's file ends with a newline
    vault.put("sk-k8s", {"tenant": "from-k8s"})
    auth = VaultAuth(bao.address, KubernetesLogin("gateway", jwt_path=str(jwt_file)))
    assert (await auth.resolve(req("sk-k8s"))).tenant_id == "from-k8s"
    assert token_review.reviewed == [sa_jwt] and auth.session.logins == 1
    # A rotated-away (unknown) service-account token: the login is refused.
    jwt_file.write_text(service_account_jwt(ec.generate_private_key(ec.SECP256R1())))
    stale = VaultAuth(bao.address, KubernetesLogin("gateway", jwt_path=str(jwt_file)))
    with pytest.raises(errors.Provider, match="Kubernetes login"):
        await stale.resolve(req("sk-k8s"))
    missing = VaultAuth(bao.address, KubernetesLogin("gateway", jwt_path=str(tmp_path / "no")))
    with pytest.raises(errors.Provider, match="service-account token"):
        await missing.resolve(req("sk-k8s"))
    for a in (auth, stale, missing):
        await a.aclose()
