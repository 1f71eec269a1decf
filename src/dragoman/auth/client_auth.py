"""How the gateway authenticates itself to an authorization server (OAuth client auth):
client_secret_basic / _post (RFC 6749 §2.3.1), client_secret_jwt / private_key_jwt
(RFC 7523 §2.2, OIDC Core §9) and tls_client_auth / self_signed_tls_client_auth
(RFC 8705 §2).

The method is chosen per call: the strongest one that both the server advertises and the
configured credentials can serve, in the order of ``PREFERENCE``; none in common is an
error, never a silent downgrade.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote_plus

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey

from .errors import Provider
from .jose import key_fits, registry
from .mtls import MtlsClient

PREFERENCE = ("tls_client_auth", "self_signed_tls_client_auth", "private_key_jwt",
              "client_secret_jwt", "client_secret_basic", "client_secret_post")
MTLS_METHODS = frozenset(PREFERENCE[:2])
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_PRIVATE_KEY_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                               "ES256", "ES384", "ES512", "EdDSA", "Ed25519"})


def load_private_key(material: str | Mapping[str, Any], alg: str | None = None
                     ) -> tuple[Key, str]:
    """A signing key from a PEM or a private JWK (JSON text or dict) and the algorithm it
    signs with: ``alg`` if given, else the JWK's own ``alg``, else the natural one for its
    type (RSA → RS256, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA)."""
    key: Key
    if isinstance(material, str) and not material.lstrip().startswith("{"):
        try:
            pk = load_pem_private_key(material.encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("the private key is not an unencrypted PEM private key") from None
        if isinstance(pk, rsa.RSAPrivateKey):
            key = RSAKey.import_key(material)
        elif isinstance(pk, ec.EllipticCurvePrivateKey):
            key = ECKey.import_key(material)
        elif isinstance(pk, ed25519.Ed25519PrivateKey):
            key = OKPKey.import_key(material)
        else:
            raise ValueError("the private key must be RSA, EC or Ed25519")
    else:
        data = msgspec.json.decode(material) if isinstance(material, str) else dict(material)
        if not isinstance(data, dict) or data.get("kty") not in ("RSA", "EC", "OKP") \
                or "d" not in data:
            raise ValueError("the private key must be a private RSA, EC or OKP JWK")
        kty = data["kty"]
        key = RSAKey.import_key(data) if kty == "RSA" else ECKey.import_key(data) \
            if kty == "EC" else OKPKey.import_key(data)
    chosen = alg or key.get("alg") or _natural_alg(key)
    if chosen not in _PRIVATE_KEY_ALGS or not key_fits(key, chosen):
        raise ValueError(f"the private key cannot sign {chosen}")
    return key, chosen


def _natural_alg(key: Key) -> str:
    if key.key_type == "RSA":
        return "RS256"
    if key.key_type == "OKP":
        return "EdDSA"
    return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(
        getattr(key, "curve_name", ""), "ES256")


class ClientAuth:
    """The gateway's credentials at an authorization server.

    Any combination of ``client_secret``, ``private_key`` and ``mtls`` may be given;
    ``methods`` restricts which methods they may be used with (default: every method the
    credentials allow, the mTLS one following from whether the certificate is self-signed).
    """

    def __init__(self, client_id: str, *, client_secret: str | None = None,
                 private_key: str | Mapping[str, Any] | None = None,
                 private_key_alg: str | None = None, mtls: MtlsClient | None = None,
                 methods: Sequence[str] | None = None, secret_jwt_alg: str = "HS256",
                 assertion_audience: str | None = None, assertion_lifetime: int = 60) -> None:
        unknown = set(methods or ()) - set(PREFERENCE)
        if unknown:
            raise ValueError(f"unknown client auth method(s): {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(PREFERENCE)})")
        self.client_id = client_id
        self._secret = client_secret
        self._key: Key | None = None
        self._key_alg = ""
        if private_key is not None:
            self._key, self._key_alg = load_private_key(private_key, private_key_alg)
        if secret_jwt_alg not in ("HS256", "HS384", "HS512"):
            raise ValueError("secret_jwt_alg must be HS256, HS384 or HS512")
        self._secret_alg = secret_jwt_alg
        self.mtls = mtls
        self._methods = tuple(methods) if methods else None
        self._audience = assertion_audience
        self._lifetime = assertion_lifetime
        if not self.available():
            raise ValueError("the client credentials serve none of the allowed auth methods")

    def __repr__(self) -> str:
        return f"ClientAuth(client_id={self.client_id!r}, methods={self.available()!r})"

    def available(self) -> list[str]:
        """Methods these credentials can serve, strongest first."""
        have: set[str] = set()
        if self.mtls is not None:
            if self._methods is not None:
                have |= MTLS_METHODS  # explicitly allowed: the operator knows the registration
            else:
                have.add("self_signed_tls_client_auth" if self.mtls.self_signed
                         else "tls_client_auth")
        if self._key is not None:
            have.add("private_key_jwt")
        if self._secret:
            have |= {"client_secret_jwt", "client_secret_basic", "client_secret_post"}
        if self._methods is not None:
            have &= set(self._methods)
        return [m for m in PREFERENCE if m in have]

    def choose(self, advertised: Sequence[str] | None) -> str:
        """The strongest method both sides support. A server that advertises nothing
        supports client_secret_basic only (RFC 8414 §2)."""
        offered = set(advertised) if advertised else {"client_secret_basic"}
        for m in self.available():
            if m in offered:
                return m
        raise Provider("The identity provider offers no client authentication method the "
                       f"gateway is configured for (it offers: "
                       f"{', '.join(sorted(m for m in offered if isinstance(m, str))[:10])}; "
                       f"configured: {', '.join(self.available())}).",
                       code="no_common_client_auth_method")

    def apply(self, method: str, form: dict[str, str], headers: dict[str, str],
              audience: str) -> None:
        """Add ``method``'s credentials to an outgoing form POST (``audience``: the
        assertion audience when none is configured — the issuer)."""
        if method == "client_secret_basic":
            assert self._secret is not None
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._secret)}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif method == "client_secret_post":
            assert self._secret is not None
            form["client_id"] = self.client_id
            form["client_secret"] = self._secret
        elif method in ("client_secret_jwt", "private_key_jwt"):
            form["client_id"] = self.client_id
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = self._assertion(method, self._audience or audience)
        elif method in MTLS_METHODS:
            form["client_id"] = self.client_id  # the certificate on the connection proves it
        else:  # pragma: no cover (choose() returns only known methods)
            raise ValueError(method)

    def _assertion(self, method: str, audience: str) -> str:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": audience,
                  "jti": secrets.token_urlsafe(24), "iat": now, "exp": now + self._lifetime}
        key: Key
        if method == "client_secret_jwt":
            assert self._secret is not None
            alg, key = self._secret_alg, OctKey.import_key(self._secret.encode())
        else:
            assert self._key is not None
            alg, key = self._key_alg, self._key
        header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if key.kid:
            header["kid"] = key.kid
        return jwt.encode(header, claims, key, algorithms=[alg], registry=registry([alg]))
