"""RFC 7662 token introspection, for opaque tokens the gateway cannot verify itself.

Answers are cached by token digest for ``cache_ttl`` seconds but never past the token's
own ``exp``; refusals (inactive, wrong audience…) for ``negative_ttl``. A revoked token
is therefore refused at the latest ``cache_ttl`` seconds after revocation: that is the
price of not calling the issuer on every request, and the knob to turn.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from ..net import HttpClient
from ._http import call_json
from .cache import Refusal, TtlCache
from .claims import ClaimMapping
from .client_auth import MTLS_METHODS, ClientAuth
from .discovery import IssuerMetadata
from .errors import PolicyDenied, Provider
from .principal import Principal

_WHAT = "identity provider"


def _oauth_error(body: Any) -> str:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, str) and err.isascii() and err.replace("_", "").isalnum():
        return err[:64]
    return "no error code"


class Introspector:
    def __init__(self, meta: IssuerMetadata, http: HttpClient, client: ClientAuth, *,
                 claims: ClaimMapping, audience: Sequence[str] = (), leeway: float = 30.0,
                 cache_ttl: float = 60.0, negative_ttl: float = 10.0,
                 max_entries: int = 10_000) -> None:
        self._meta = meta
        self._http = http
        self.client = client
        self._claims = claims
        self._audience = list(audience)
        self._leeway = leeway
        self._ttl = cache_ttl
        self._negative_ttl = negative_ttl
        self._cache: TtlCache[Principal | Refusal] = TtlCache(max_entries)
        #: Calls made to the introspection endpoint, and the auth method of the last one.
        self.calls = 0
        self.last_method: str | None = None
        #: A method fixed by the operator; None: chosen from the issuer's discovery document
        self.pinned_method: str | None = None

    async def principal(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).digest()
        got = await self._cache.get_or_load(key, lambda: self._introspect(token))
        if isinstance(got, Refusal):
            raise got.error()
        return got

    async def _introspect(self, token: str) -> tuple[Principal | Refusal, float]:
        doc = await self._meta.document()
        endpoint = doc.get("introspection_endpoint")
        if not isinstance(endpoint, str):
            raise Provider("The identity provider has no introspection endpoint.")
        advertised = doc.get("introspection_endpoint_auth_methods_supported") \
            or doc.get("token_endpoint_auth_methods_supported")
        method = self.pinned_method or \
            self.client.choose(advertised if isinstance(advertised, list) else None)
        form = {"token": token, "token_type_hint": "access_token"}
        headers: dict[str, str] = {}
        self.client.apply(method, form, headers, audience=self._meta.issuer)
        self.calls += 1
        self.last_method = method
        if method in MTLS_METHODS:
            mtls = self.client.mtls
            assert mtls is not None
            aliases = doc.get("mtls_endpoint_aliases")
            alias = aliases.get("introspection_endpoint") if isinstance(aliases, dict) else None
            url = alias if isinstance(alias, str) else endpoint
            async with mtls.use() as http:
                status, body = await call_json(http, "POST", url, form=form, headers=headers,
                                               what=_WHAT)
        else:
            status, body = await call_json(self._http, "POST", endpoint, form=form,
                                           headers=headers, what=_WHAT)
        if status != 200:
            raise Provider(f"The identity provider refused the gateway's introspection request "
                           f"(HTTP {status}, {_oauth_error(body)}).")
        if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
            raise Provider("The identity provider's introspection answer is malformed.")
        return self._judge(body)

    def _judge(self, body: Mapping[str, Any]) -> tuple[Principal | Refusal, float]:
        neg = self._negative_ttl
        if body["active"] is not True:
            return Refusal(False, "The token is not active (expired, revoked or unknown)."), neg
        now = time.time()
        exp = body.get("exp")
        if exp is not None and (not _numeric(exp) or exp <= now - self._leeway):
            return Refusal(False, "The token has expired."), neg
        nbf = body.get("nbf")
        if nbf is not None and (not _numeric(nbf) or nbf > now + self._leeway):
            return Refusal(False, "The token is not valid yet."), neg
        iss = body.get("iss")
        if iss is not None and iss != self._meta.issuer:
            return Refusal(False, "The token was issued by an issuer that is not trusted."), neg
        if body.get("token_type") == "refresh_token":
            return Refusal(False, "A refresh token is not an access token."), neg
        if self._audience:
            aud = body.get("aud")
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(a in auds for a in self._audience):
                return Refusal(False, "The token is not meant for this service (audience)."), neg
        try:
            principal = self._claims.principal(body)
        except PolicyDenied as e:
            return Refusal(True, e.message, e.scope, e.code), neg
        ttl = self._ttl
        if exp is not None:
            ttl = min(ttl, exp - now)  # never cached past the token's own expiry
        return principal, ttl


def _numeric(v: Any) -> TypeGuard[float]:
    return isinstance(v, int | float) and not isinstance(v, bool)
