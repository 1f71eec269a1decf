"""``OidcAuth``: access tokens from an OpenID Connect / OAuth 2 issuer.

JWT access tokens are verified locally against the issuer's JWKS (found by discovery);
opaque tokens are introspected (RFC 7662) with the gateway's own client credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..net import HttpClient, Timeouts
from ..net.tls import client_context
from .claims import ClaimMapping
from .client_auth import ClientAuth
from .defaults import DEFAULT_ALGORITHMS, DEFAULT_MAX_TOKEN_BYTES
from .discovery import IssuerMetadata
from .errors import Invalid, Provider, missing_credentials
from .introspection import Introspector
from .jose import ASYMMETRIC_ALGORITHMS, JwtVerifier, looks_like_jwt
from .mtls import MtlsClient, split_combined_pem
from .principal import Principal, RequestInfo


class OidcAuth:
    """Bearer tokens issued by ``issuer``.

    ``audience``: what a token must be meant for (required: without it any token the
    issuer mints for any application would do). ``algorithms``: the asymmetric algorithms
    accepted (HS* never: the keys come from a public JWKS). ``client``: the gateway's
    credentials for introspecting opaque tokens; without it only JWTs are accepted.
    ``introspect="always"`` sends JWTs to the introspection endpoint too (to see
    revocations at the cost of a call per ``cache_ttl``).
    """

    def __init__(self, issuer: str, *, audience: str | Sequence[str],
                 algorithms: Sequence[str] = DEFAULT_ALGORITHMS, leeway: float = 30.0,
                 max_age: float | None = None, token_type: str | None = None,
                 claims: ClaimMapping | None = None, client: ClientAuth | None = None,
                 introspect: Literal["auto", "always"] = "auto",
                 introspection_audience: str | Sequence[str] | None = None,
                 cache_ttl: float = 60.0, negative_cache_ttl: float = 10.0,
                 jwks_min_refresh: float = 30.0, jwks_ttl: float = 3600.0,
                 metadata_ttl: float = 3600.0, discovery_url: str | None = None,
                 ca_file: str | None = None, ca_pem: str | None = None,
                 timeouts: Timeouts | None = None,
                 max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> None:
        if not audience:
            raise ValueError("OidcAuth needs an audience: the value tokens for this gateway "
                             "carry in 'aud'")
        symmetric = set(algorithms) - ASYMMETRIC_ALGORITHMS
        if symmetric:
            raise ValueError(f"algorithms {sorted(symmetric)} cannot be used with an issuer's "
                             "public keys (only RS*, PS*, ES*, EdDSA)")
        if introspect == "always" and client is None:
            raise ValueError("introspect='always' needs client credentials")
        self.issuer = issuer
        self.claims = claims or ClaimMapping()
        self._timeouts = timeouts or Timeouts(connect=5.0, first_byte=10.0, idle=10.0)
        self._ca_file, self._ca_pem = ca_file, ca_pem
        ctx = client_context(ca_file=ca_file, ca_pem=ca_pem) if (ca_file or ca_pem) else None
        self._http = HttpClient(issuer, timeouts=self._timeouts, limit=64, ssl_context=ctx)
        self._verifier = JwtVerifier(algorithms=algorithms, issuer=issuer, audience=audience,
                                     leeway=leeway, max_age=max_age, token_type=token_type,
                                     max_token_bytes=max_token_bytes)
        self.metadata = IssuerMetadata(issuer, self._http, algorithms=algorithms,
                                       discovery_url=discovery_url, metadata_ttl=metadata_ttl,
                                       jwks_ttl=jwks_ttl, jwks_min_refresh=jwks_min_refresh)
        self._always = introspect == "always"
        self.introspector: Introspector | None = None
        if client is not None:
            aud = introspection_audience
            self.introspector = Introspector(
                self.metadata, self._http, client, claims=self.claims,
                audience=[aud] if isinstance(aud, str) else list(aud or ()), leeway=leeway,
                cache_ttl=cache_ttl, negative_ttl=negative_cache_ttl)
        self._max_token_bytes = max_token_bytes

    def __repr__(self) -> str:
        return f"OidcAuth(issuer={self.issuer!r})"

    async def resolve(self, request: RequestInfo) -> Principal:
        token = request.bearer_token()
        if token is None:
            raise missing_credentials()
        if len(token) > self._max_token_bytes:
            raise Invalid("The token is too large.")
        if not self._always and looks_like_jwt(token):
            head = self._verifier.header(token)
            key = await self.metadata.key_for(head)
            return self.claims.principal(self._verifier.verify(token, head, key))
        if self.introspector is None:
            raise Invalid("The token is not a valid JWT (opaque tokens are not accepted).")
        return await self.introspector.principal(token)

    def _introspection(self) -> Introspector:
        if self.introspector is None:
            raise ValueError("this OidcAuth has no introspection client")
        return self.introspector

    def with_introspection_auth_method_from_discovery(self) -> OidcAuth:
        """Choose the introspection client-auth method from the issuer's discovery
        document (``introspection_endpoint_auth_methods_supported``): the strongest one the
        credentials can serve, failing closed when there is none. The default; returns
        ``self`` for chaining."""
        self._introspection().pinned_method = None
        return self

    def with_introspection_auth_method(self, method: str) -> OidcAuth:
        """Always use ``method`` (one the credentials can serve), whatever discovery says."""
        intro = self._introspection()
        if method not in intro.client.available():
            raise ValueError(f"the client credentials cannot serve {method!r} (they serve: "
                             f"{', '.join(intro.client.available())})")
        intro.pinned_method = method
        return self

    def reload_mtls_identity_combined(self, pem: str) -> None:
        """``reload_mtls_identity`` from one PEM holding the certificate (chain) and the
        private key, as cert-manager and Vault PKI bundles do."""
        cert_pem, key_pem = split_combined_pem(pem)
        self.reload_mtls_identity(cert_pem, key_pem)

    def reload_mtls_identity(self, cert_pem: str, key_pem: str) -> None:
        """Swap the TLS client certificate used for introspection, atomically: requests
        in flight finish with the old one, every later request uses the new one. On an
        invalid certificate or key the old identity stays and ``ValueError`` is raised.
        Call it on the event loop's thread (say, from a task watching the cert files)."""
        client = self._introspection().client
        if client.mtls is None:
            client.mtls = MtlsClient(cert_pem, key_pem, ca_file=self._ca_file,
                                     ca_pem=self._ca_pem, timeouts=self._timeouts)
        else:
            client.mtls.reload(cert_pem, key_pem)

    async def end_session_endpoint(self) -> str | None:
        """The issuer's RP-initiated logout endpoint, if it has one."""
        ep = (await self.metadata.document()).get("end_session_endpoint")
        return ep if isinstance(ep, str) else None

    def build_logout_uri(self, id_token: str | None = None,
                         post_logout_redirect_uri: str | None = None,
                         state: str | None = None, *, client_id: str | None = None,
                         ui_locales: str | None = None) -> str:
        """The RP-initiated logout URL (OpenID Connect RP-Initiated Logout 1.0 §2).
        Pure URL building from the discovered endpoint: call ``end_session_endpoint()``
        (or anything that ran discovery) first."""
        doc = self.metadata.cached_document
        ep = doc.get("end_session_endpoint") if doc is not None else None
        if not isinstance(ep, str):
            raise Provider("No end_session_endpoint is known: run discovery first "
                           "(await end_session_endpoint()).")
        params = {"id_token_hint": id_token, "post_logout_redirect_uri": post_logout_redirect_uri,
                  "state": state, "client_id": client_id, "ui_locales": ui_locales}
        parts = urlsplit(ep)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [(k, v) for k, v in params.items() if v is not None]
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def aclose(self) -> None:
        await self._http.aclose()
        if self.introspector is not None and self.introspector.client.mtls is not None:
            await self.introspector.client.mtls.aclose()
