"""The ``auth:`` section of ``dragoman.yaml`` → a resolver.

One ``type`` per resolver: ``static``, ``jwt``, ``oidc``, ``vault``, or ``chain`` (whose
``children`` are auth sections themselves). Secrets come from ``${ENV}`` (replaced by the
config loader) or from files (``*_file`` keys); reprs never show them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..core.extras import MissingExtra, require_extra
from .chain import ChainedAuth
from .claims import ClaimMapping
from .defaults import DEFAULT_ALGORITHMS, DEFAULT_MAX_TOKEN_BYTES
from .principal import AuthResolver, Principal
from .static import StaticTokens
from .vault import AppRoleLogin, KubernetesLogin, TokenLogin, VaultAuth, VaultLogin

if TYPE_CHECKING:  # imported when such a resolver is built: they need the jwt/oidc extras
    from .client_auth import ClientAuth
    from .jwt_auth import JwtAuth
    from .oidc import OidcAuth


class AuthConfigError(ValueError):
    """A resolver could not be built; ``where`` is the path below ``$.auth``."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, repr_omit_defaults=True):
    pass


class ClaimsConfig(_Section):
    """Claim names (dotted paths reach into nested claims) and defaults; unset keys keep
    the resolver's defaults."""

    tenant_claim: str | None = None
    subject_claim: str | None = None
    scopes_claim: str | None = None
    models_claim: str | None = None
    limits_claim: str | None = None
    default_tenant: str | None = None
    allowed_models: list[str] = msgspec.field(default_factory=list)
    required_scopes: list[str] = msgspec.field(default_factory=list)

    def mapping(self, base: ClaimMapping) -> ClaimMapping:
        return ClaimMapping(
            tenant=self.tenant_claim or base.tenant, subject=self.subject_claim or base.subject,
            scopes=self.scopes_claim or base.scopes, models=self.models_claim or base.models,
            limits=self.limits_claim or base.limits, default_tenant=self.default_tenant,
            allowed_models=frozenset(self.allowed_models),
            required_scopes=frozenset(self.required_scopes))


class StaticTokenConfig(_Section):
    tenant: str
    token: str | None = None
    token_sha256: str | None = None
    subject: str | None = None
    scopes: list[str] = msgspec.field(default_factory=list)
    allowed_models: list[str] = msgspec.field(default_factory=list)
    limits: dict[str, float] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        return f"StaticTokenConfig(tenant={self.tenant!r})"

    def principal(self) -> Principal:
        return Principal(tenant_id=self.tenant, subject=self.subject,
                         scopes=frozenset(self.scopes),
                         allowed_models=frozenset(self.allowed_models), limits=self.limits)


class StaticAuthConfig(_Section, tag="static", tag_field="type"):
    tokens: list[StaticTokenConfig]


class JwtAuthConfig(_Section, tag="jwt", tag_field="type"):
    algorithm: str
    key: str | None = None
    key_file: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_file: str | None = None
    issuer: str | None = None
    audience: str | list[str] | None = None
    leeway: float = 30.0
    max_age: float | None = None
    token_type: str | None = None
    claims: ClaimsConfig = msgspec.field(default_factory=ClaimsConfig)
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES

    def __repr__(self) -> str:
        return f"JwtAuthConfig(algorithm={self.algorithm!r}, issuer={self.issuer!r})"


class IntrospectionConfig(_Section):
    """The gateway's own client credentials at the issuer (for opaque tokens)."""

    client_id: str
    client_secret: str | None = None
    private_key: str | None = None
    private_key_file: str | None = None
    private_key_alg: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    methods: list[str] | None = None
    assertion_audience: str | None = None
    audience: str | list[str] | None = None
    cache_ttl: float = 60.0
    negative_cache_ttl: float = 10.0

    def __repr__(self) -> str:
        return f"IntrospectionConfig(client_id={self.client_id!r})"


class OidcAuthConfig(_Section, tag="oidc", tag_field="type"):
    issuer: str
    audience: str | list[str]
    algorithms: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    leeway: float = 30.0
    max_age: float | None = None
    token_type: str | None = None
    claims: ClaimsConfig = msgspec.field(default_factory=ClaimsConfig)
    introspection: IntrospectionConfig | None = None
    introspect: Literal["auto", "always"] = "auto"
    jwks_min_refresh: float = 30.0
    jwks_ttl: float = 3600.0
    metadata_ttl: float = 3600.0
    discovery_url: str | None = None
    ca_file: str | None = None
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES


class VaultLoginConfig(_Section):
    method: Literal["token", "approle", "kubernetes"]
    token: str | None = None
    role_id: str | None = None
    secret_id: str | None = None
    role: str | None = None
    jwt_path: str | None = None
    mount: str | None = None

    def __repr__(self) -> str:
        return f"VaultLoginConfig(method={self.method!r})"


class VaultAuthConfig(_Section, tag="vault", tag_field="type"):
    address: str
    login: VaultLoginConfig
    namespace: str | None = None
    mount: str = "secret"
    path: str = "dragoman/tokens"
    cache_ttl: float = 60.0
    negative_cache_ttl: float = 10.0
    ca_file: str | None = None
    claims: ClaimsConfig = msgspec.field(default_factory=ClaimsConfig)


class ChainAuthConfig(_Section, tag="chain", tag_field="type"):
    children: list[AuthConfig]
    short_circuit: Literal["none", "transport", "infrastructure"] = "none"


AuthConfig = StaticAuthConfig | JwtAuthConfig | OidcAuthConfig | VaultAuthConfig | \
    ChainAuthConfig


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise AuthConfigError(f"cannot read {what} file {path}: {e.strerror}") from None


def _one(inline: Any, file: str | None, what: str) -> Any:
    if inline is not None and file is not None:
        raise AuthConfigError(f"give `{what}` or `{what}_file`, not both")
    return _read(file, what) if file is not None else inline


def _static(cfg: StaticAuthConfig) -> StaticTokens:
    plain: dict[str, Principal] = {}
    hashed: dict[str, Principal] = {}
    for i, t in enumerate(cfg.tokens):
        if (t.token is None) == (t.token_sha256 is None):
            raise AuthConfigError("each token needs exactly one of `token` or `token_sha256`",
                                  f".tokens[{i}]")
        if t.token is not None:
            plain[t.token] = t.principal()
        else:
            assert t.token_sha256 is not None
            hashed[t.token_sha256.lower()] = t.principal()
    try:
        return StaticTokens(plain, digests=hashed)
    except ValueError as e:
        raise AuthConfigError(str(e), ".tokens") from None


def _jwt(cfg: JwtAuthConfig) -> JwtAuth:
    require_extra("jwt", "auth type `jwt`")
    from .jwt_auth import JwtAuth

    key = _one(cfg.key, cfg.key_file, "key")
    jwks_text = _one(cfg.jwks, cfg.jwks_file, "jwks")
    jwks = msgspec.json.decode(jwks_text) if isinstance(jwks_text, str) else jwks_text
    return JwtAuth(algorithm=cfg.algorithm, key=key, jwks=jwks, issuer=cfg.issuer,
                   audience=cfg.audience, leeway=cfg.leeway, max_age=cfg.max_age,
                   token_type=cfg.token_type, claims=cfg.claims.mapping(ClaimMapping()),
                   max_token_bytes=cfg.max_token_bytes)


def _client(cfg: IntrospectionConfig, ca_file: str | None) -> ClientAuth:
    from .client_auth import ClientAuth
    from .mtls import MtlsClient

    mtls = None
    if (cfg.tls_cert_file is None) != (cfg.tls_key_file is None):
        raise AuthConfigError("mTLS needs both `tls_cert_file` and `tls_key_file`",
                              ".introspection")
    if cfg.tls_cert_file is not None and cfg.tls_key_file is not None:
        mtls = MtlsClient(_read(cfg.tls_cert_file, "tls_cert"),
                          _read(cfg.tls_key_file, "tls_key"), ca_file=ca_file)
    return ClientAuth(cfg.client_id, client_secret=cfg.client_secret,
                      private_key=_one(cfg.private_key, cfg.private_key_file, "private_key"),
                      private_key_alg=cfg.private_key_alg, mtls=mtls, methods=cfg.methods,
                      assertion_audience=cfg.assertion_audience)


def _oidc(cfg: OidcAuthConfig) -> OidcAuth:
    require_extra("oidc", "auth type `oidc`")
    from .oidc import OidcAuth

    intro = cfg.introspection
    client = _client(intro, cfg.ca_file) if intro is not None else None
    return OidcAuth(cfg.issuer, audience=cfg.audience, algorithms=cfg.algorithms,
                    leeway=cfg.leeway, max_age=cfg.max_age, token_type=cfg.token_type,
                    claims=cfg.claims.mapping(ClaimMapping()), client=client,
                    introspect=cfg.introspect,
                    introspection_audience=intro.audience if intro else None,
                    cache_ttl=intro.cache_ttl if intro else 60.0,
                    negative_cache_ttl=intro.negative_cache_ttl if intro else 10.0,
                    jwks_min_refresh=cfg.jwks_min_refresh, jwks_ttl=cfg.jwks_ttl,
                    metadata_ttl=cfg.metadata_ttl, discovery_url=cfg.discovery_url,
                    ca_file=cfg.ca_file, max_token_bytes=cfg.max_token_bytes)


def _vault_login(cfg: VaultLoginConfig) -> VaultLogin:
    def need(value: str | None, key: str) -> str:
        if not value:
            raise AuthConfigError(f"`{key}` is required for the {cfg.method} login", ".login")
        return value

    if cfg.method == "token":
        return TokenLogin(need(cfg.token, "token"))
    if cfg.method == "approle":
        return AppRoleLogin(need(cfg.role_id, "role_id"), cfg.secret_id,
                            mount=cfg.mount or "approle")
    kw: dict[str, str] = {"mount": cfg.mount or "kubernetes"}
    if cfg.jwt_path:
        kw["jwt_path"] = cfg.jwt_path
    return KubernetesLogin(need(cfg.role, "role"), **kw)


_VAULT_CLAIMS = ClaimMapping(subject="subject", scopes="scopes")


def _vault(cfg: VaultAuthConfig) -> VaultAuth:
    return VaultAuth(cfg.address, _vault_login(cfg.login), mount=cfg.mount, path=cfg.path,
                     namespace=cfg.namespace, claims=cfg.claims.mapping(_VAULT_CLAIMS),
                     cache_ttl=cfg.cache_ttl, negative_cache_ttl=cfg.negative_cache_ttl,
                     ca_file=cfg.ca_file)


def build_resolver(cfg: AuthConfig) -> AuthResolver:
    """The resolver an ``auth:`` section describes. Raises ``AuthConfigError``."""
    try:
        if isinstance(cfg, StaticAuthConfig):
            return _static(cfg)
        if isinstance(cfg, JwtAuthConfig):
            return _jwt(cfg)
        if isinstance(cfg, OidcAuthConfig):
            return _oidc(cfg)
        if isinstance(cfg, VaultAuthConfig):
            return _vault(cfg)
    except AuthConfigError:
        raise
    except MissingExtra as e:
        raise AuthConfigError(str(e)) from None
    except (ValueError, msgspec.DecodeError) as e:
        raise AuthConfigError(str(e)) from None
    children = []
    for i, child in enumerate(cfg.children):
        try:
            children.append(build_resolver(child))
        except AuthConfigError as e:
            raise AuthConfigError(e.message, f".children[{i}]{e.where}") from None
    if not children:
        raise AuthConfigError("a chain needs at least one child", ".children")
    chain = ChainedAuth(children)
    if cfg.short_circuit == "transport":
        return chain.with_short_circuit_on_transport_error()
    if cfg.short_circuit == "infrastructure":
        return chain.with_short_circuit_on_infrastructure_errors()
    return chain
