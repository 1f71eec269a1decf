"""``VaultAuth``: caller tokens → principals kept in a Vault (or OpenBao) KV v2 store.

Each caller token has an entry at ``<mount>/data/<path>/<sha256(token) hex>`` holding
``{"tenant": …, "subject": …, "scopes": [...], "allowed_models": [...], "limits": {...}}``.
Only the digest ever reaches Vault (its audit log included), never the token.

The gateway's own Vault token comes from a login method (a fixed token, AppRole or
Kubernetes); it is renewed when two thirds of its lease have passed and replaced by a
fresh login when renewal fails or the lease hits its maximum TTL.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..net import HttpClient, Timeouts
from ..net.tls import client_context
from ._http import call_json
from .cache import Refusal, TtlCache
from .claims import ClaimMapping
from .defaults import DEFAULT_MAX_TOKEN_BYTES
from .errors import AuthError, Invalid, PolicyDenied, Provider, missing_credentials
from .principal import Principal, RequestInfo

log = logging.getLogger("dragoman.auth")

_WHAT = "secret store"
K8S_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(frozen=True, slots=True)
class Lease:
    token: str
    ttl: float  # seconds; 0 = never expires
    renewable: bool

    def __repr__(self) -> str:
        return f"Lease(ttl={self.ttl}, renewable={self.renewable})"


class Vault:
    """Raw calls to one Vault server (address, namespace, TLS)."""

    def __init__(self, address: str, *, namespace: str | None = None,
                 ca_file: str | None = None, ca_pem: str | None = None,
                 timeouts: Timeouts | None = None) -> None:
        ctx = client_context(ca_file=ca_file, ca_pem=ca_pem) if (ca_file or ca_pem) else None
        self.address = address.rstrip("/")
        self.namespace = namespace
        self.http = HttpClient(self.address, ssl_context=ctx, limit=64,
                               timeouts=timeouts or Timeouts(connect=5.0, first_byte=10.0,
                                                             idle=10.0))

    async def call(self, method: str, path: str, *, token: str | None = None,
                   json: Any = None) -> tuple[int, Any]:
        headers = {}
        if token is not None:
            headers["x-vault-token"] = token
        if self.namespace:
            headers["x-vault-namespace"] = self.namespace
        return await call_json(self.http, method, f"{self.address}/v1/{path}", json=json,
                               headers=headers, what=_WHAT)


def _auth_lease(status: int, body: Any, how: str) -> Lease:
    auth = body.get("auth") if isinstance(body, dict) else None
    if status != 200 or not isinstance(auth, dict) or not isinstance(auth.get("client_token"),
                                                                      str):
        raise Provider(f"The secret store refused the gateway's {how} (HTTP {status}).")
    return Lease(auth["client_token"], float(auth.get("lease_duration") or 0),
                 bool(auth.get("renewable")))


class VaultLogin(Protocol):
    """How the gateway obtains its own Vault token."""

    async def login(self, vault: Vault) -> Lease: ...


class TokenLogin:
    """A Vault token given directly; renewed if renewable, but it cannot be re-obtained."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "TokenLogin(<token>)"

    async def login(self, vault: Vault) -> Lease:
        status, body = await vault.call("GET", "auth/token/lookup-self", token=self._token)
        data = body.get("data") if isinstance(body, dict) else None
        if status != 200 or not isinstance(data, dict):
            raise Provider(f"The secret store rejected the gateway's token (HTTP {status}).")
        return Lease(self._token, float(data.get("ttl") or 0), bool(data.get("renewable")))


class AppRoleLogin:
    def __init__(self, role_id: str, secret_id: str | None = None, *,
                 mount: str = "approle") -> None:
        self._role_id = role_id
        self._secret_id = secret_id
        self._mount = mount.strip("/")

    def __repr__(self) -> str:
        return f"AppRoleLogin(mount={self._mount!r})"

    async def login(self, vault: Vault) -> Lease:
        body = {"role_id": self._role_id}
        if self._secret_id is not None:
            body["secret_id"] = self._secret_id
        status, answer = await vault.call("POST", f"auth/{self._mount}/login", json=body)
        return _auth_lease(status, answer, "AppRole login")


class KubernetesLogin:
    """The pod's service-account JWT, re-read at every login (the kubelet rotates it)."""

    def __init__(self, role: str, *, jwt_path: str = K8S_TOKEN_PATH,
                 mount: str = "kubernetes") -> None:
        self._role = role
        self._jwt_path = Path(jwt_path)
        self._mount = mount.strip("/")

    def __repr__(self) -> str:
        return f"KubernetesLogin(role={self._role!r}, mount={self._mount!r})"

    async def login(self, vault: Vault) -> Lease:
        try:
            jwt = self._jwt_path.read_text().strip()
        except OSError as e:
            raise Provider(f"Cannot read the Kubernetes service-account token: "
                           f"{e.strerror}.") from None
        status, answer = await vault.call("POST", f"auth/{self._mount}/login",
                                          json={"role": self._role, "jwt": jwt})
        return _auth_lease(status, answer, "Kubernetes login")


class VaultSession:
    """The gateway's current Vault token, renewed or re-obtained before it expires."""

    def __init__(self, vault: Vault, login: VaultLogin, *, renew_fraction: float = 2 / 3
                 ) -> None:
        if not 0 < renew_fraction < 1:
            raise ValueError("renew_fraction must be between 0 and 1")
        self._vault = vault
        self._login = login
        self._fraction = renew_fraction
        self._lease: Lease | None = None
        self._login_ttl = 0.0
        self._expires = 0.0
        self._refresh_at = 0.0
        self._relogin = False
        self._lock = asyncio.Lock()
        #: Counters (observability; the tests read them too).
        self.logins = 0
        self.renewals = 0

    async def token(self) -> str:
        lease = self._lease
        if lease is not None and time.monotonic() < self._refresh_at:
            return lease.token
        async with self._lock:
            lease = self._lease
            if lease is not None and time.monotonic() < self._refresh_at:
                return lease.token
            return (await self._refresh()).token

    async def invalidate(self, token: str) -> None:
        """The store refused ``token``: log in afresh next time (unless already done)."""
        async with self._lock:
            if self._lease is not None and self._lease.token == token:
                self._lease = None

    async def _refresh(self) -> Lease:
        now = time.monotonic()
        lease = self._lease
        if lease is not None and lease.renewable and not self._relogin and now < self._expires:
            try:
                renewed, capped = await self._renew(lease)
                return self._adopt(renewed, renewed=True, capped=capped)
            except AuthError:
                # Whatever went wrong (Vault answers 500 to a renewal past the max TTL),
                # a fresh login is the remedy; if Vault is down, the login says so.
                log.info("renewing the Vault token failed; logging in again")
        new = await self._login.login(self._vault)
        self.logins += 1
        self._login_ttl = new.ttl
        return self._adopt(new, renewed=False, capped=False)

    async def _renew(self, lease: Lease) -> tuple[Lease, bool]:
        """The renewed lease, and whether Vault capped it at the token's max TTL."""
        status, body = await self._vault.call("POST", "auth/token/renew-self",
                                              token=lease.token, json={})
        self.renewals += 1
        warnings = body.get("warnings") if isinstance(body, dict) else None
        capped = isinstance(warnings, list) and any("max_ttl" in str(w) for w in warnings)
        return _auth_lease(status, body, "token renewal"), capped

    def _adopt(self, lease: Lease, *, renewed: bool, capped: bool) -> Lease:
        now = time.monotonic()
        self._lease = lease
        if lease.ttl <= 0:
            self._expires = self._refresh_at = math.inf  # a token that never expires
        else:
            self._expires = now + lease.ttl
            self._refresh_at = now + lease.ttl * self._fraction
        # A renewal capped by the token's max TTL (Vault warns, or grants less than a login
        # does): the next refresh logs in rather than renewing into an ever shorter lease.
        self._relogin = renewed and (capped or lease.ttl < self._login_ttl * 0.9)
        return lease

    async def aclose(self) -> None:
        self._lease = None


class VaultAuth:
    def __init__(self, address: str, login: VaultLogin | str, *, mount: str = "secret",
                 path: str = "dragoman/tokens", namespace: str | None = None,
                 claims: ClaimMapping | None = None, cache_ttl: float = 60.0,
                 negative_cache_ttl: float = 10.0, renew_fraction: float = 2 / 3,
                 ca_file: str | None = None, ca_pem: str | None = None,
                 timeouts: Timeouts | None = None,
                 max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> None:
        self.vault = Vault(address, namespace=namespace, ca_file=ca_file, ca_pem=ca_pem,
                           timeouts=timeouts)
        self.session = VaultSession(self.vault, TokenLogin(login) if isinstance(login, str)
                                    else login, renew_fraction=renew_fraction)
        self._prefix = f"{mount.strip('/')}/data/{path.strip('/')}"
        self.claims = claims or ClaimMapping(subject="subject", scopes="scopes")
        self._ttl = cache_ttl
        self._negative_ttl = negative_cache_ttl
        self._cache: TtlCache[Principal | Refusal] = TtlCache()
        self._max_token_bytes = max_token_bytes
        #: KV reads made (cache misses).
        self.lookups = 0

    def __repr__(self) -> str:
        return f"VaultAuth(address={self.vault.address!r}, path={self._prefix!r})"

    @staticmethod
    def entry_name(token: str) -> str:
        """The KV entry name for a caller token: its SHA-256, hex."""
        return hashlib.sha256(token.encode()).hexdigest()

    async def resolve(self, request: RequestInfo) -> Principal:
        token = request.bearer_token()
        if token is None:
            raise missing_credentials()
        if len(token) > self._max_token_bytes:
            raise Invalid("The token is too large.")
        digest = hashlib.sha256(token.encode())
        got = await self._cache.get_or_load(digest.digest(),
                                            lambda: self._lookup(digest.hexdigest()))
        if isinstance(got, Refusal):
            raise got.error()
        return got

    async def _lookup(self, name: str) -> tuple[Principal | Refusal, float]:
        self.lookups += 1
        path = f"{self._prefix}/{name}"
        for attempt in (1, 2):
            vault_token = await self.session.token()
            status, body = await self.vault.call("GET", path, token=vault_token)
            if status == 403 and attempt == 1:
                # Expired or revoked under us: log in again once, then believe the answer.
                await self.session.invalidate(vault_token)
                continue
            break
        if status == 404:
            return Refusal(False, "Incorrect API key provided."), self._negative_ttl
        if status == 403:
            raise Provider("The secret store denied the gateway access to the token table "
                           "(check its policy).")
        data = body.get("data") if isinstance(body, dict) else None
        entry = data.get("data") if isinstance(data, dict) else None
        if status != 200 or not isinstance(entry, dict):
            raise Provider(f"The secret store's answer is malformed (HTTP {status}).")
        try:
            return self.claims.principal(entry), self._ttl
        except PolicyDenied as e:
            return Refusal(True, e.message, e.scope, e.code), self._negative_ttl

    async def aclose(self) -> None:
        await self.session.aclose()
        await self.vault.http.aclose()
