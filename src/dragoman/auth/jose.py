"""JWT verification shared by ``JwtAuth`` and ``OidcAuth``, on top of joserfc.

The order of checks is what makes it fail closed:
1. size bound, then a cheap look at the header (three base64url parts, a JSON object,
   an ``alg`` in the pinned set, no header that names where to fetch a key) — before any
   key lookup, so ``alg=none`` or a garbage token never reaches the JWKS cache;
2. the key is chosen by us from keys we trust (never from the token), and its type must
   match the pinned algorithm, so an HS256 token "signed" with an RSA public key finds no
   usable key;
3. joserfc verifies the signature with exactly that one algorithm allowed;
4. claims: ``iss``, ``aud``, ``exp`` (required), ``nbf``, ``iat`` within a bounded leeway.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import ECKey, JWKRegistry, Key, KeySet, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from .defaults import DEFAULT_MAX_TOKEN_BYTES
from .errors import Invalid

#: The longest clock-skew allowance a deployment may configure: beyond a few minutes a
#: leeway stops being skew tolerance and starts extending token lifetimes.
MAX_LEEWAY = 300.0

_KTY: dict[str, str] = {
    **{f"HS{n}": "oct" for n in (256, 384, 512)},
    **{f"RS{n}": "RSA" for n in (256, 384, 512)},
    **{f"PS{n}": "RSA" for n in (256, 384, 512)},
    "ES256": "EC", "ES384": "EC", "ES512": "EC",
    "EdDSA": "OKP", "Ed25519": "OKP",
}
_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "Ed25519": "Ed25519"}
SUPPORTED_ALGORITHMS = frozenset(_KTY)
ASYMMETRIC_ALGORITHMS = frozenset(a for a, k in _KTY.items() if k != "oct")

#: Headers that tell a verifier where to get a key. We never follow them; a token that
#: carries one is refused outright rather than trusted to be ignored.
_KEY_LOCATING_HEADERS = ("jwk", "jku", "x5u")


class _QuietEdDSA(EdDSAAlgorithm):
    # RFC 9864 deprecates the name "EdDSA" in favour of "Ed25519" but providers still
    # sign with it; joserfc would warn on every single verification.
    security_warning = None  # type: ignore[assignment]


class _Registry(JWSRegistry):
    algorithms = {**JWSRegistry.algorithms, "EdDSA": _QuietEdDSA()}


def key_type(alg: str) -> str:
    try:
        return _KTY[alg]
    except KeyError:
        raise ValueError(f"unsupported JWS algorithm {alg!r} "
                         f"(supported: {', '.join(sorted(_KTY))})") from None


def registry(algorithms: Iterable[str]) -> JWSRegistry:
    return _Registry(algorithms=list(algorithms))


def key_fits(key: Key, alg: str) -> bool:
    """Whether ``key`` may verify ``alg`` tokens: same key type, curve, declared ``alg``
    and ``use`` (a JWK that says ``use: enc`` signs nothing)."""
    if key.key_type != _KTY.get(alg):
        return False
    crv = _CURVE.get(alg)
    if crv is not None and getattr(key, "curve_name", None) != crv:
        return False
    declared = key.get("alg")
    if declared is not None and declared != alg and {declared, alg} != {"EdDSA", "Ed25519"}:
        return False
    use = key.get("use")
    return use is None or use == "sig"


def import_verification_key(material: str | bytes | Mapping[str, Any], alg: str) -> Key:
    """A verification key for ``alg`` from a PEM, a JWK (JSON text or dict) or, for HS*,
    the shared secret itself."""
    kty = key_type(alg)
    if kty == "oct":
        if isinstance(material, Mapping):
            return OctKey.import_key(dict(material))
        raw = material.encode() if isinstance(material, str) else material
        if raw.lstrip().startswith((b"-----BEGIN", b"{")):
            # The HS/RS confusion attack needs a verifier that HMACs with a public key.
            raise ValueError(f"{alg} needs a shared secret, not a public key")
        if len(raw) < int(alg[2:]) // 8:
            raise ValueError(f"an {alg} secret must be at least {int(alg[2:]) // 8} bytes")
        return OctKey.import_key(raw)
    data: Any = material
    if isinstance(material, str | bytes):
        text = material.decode() if isinstance(material, bytes) else material
        data = msgspec.json.decode(text) if text.lstrip().startswith("{") else text
    elif isinstance(material, Mapping):
        data = dict(material)
    if isinstance(data, dict) and data.get("kty") == "oct":
        raise ValueError(f"{alg} needs a public key, not a symmetric JWK")
    try:
        key = JWKRegistry.import_key(data) if isinstance(data, dict) \
            else JWKRegistry.import_key(data, kty)
    except (JoseError, ValueError, TypeError):
        key = None
    if key is None or not key_fits(key, alg):
        raise ValueError(f"the configured key cannot verify {alg} signatures")
    return key


def public_keys(jwks: Any, algorithms: Iterable[str]) -> dict[str, list[Key]]:
    """Usable verification keys of a JWKS document, by ``kid`` ("" for keys without one).
    Keys of unknown or symmetric type, or fit for none of ``algorithms``, are skipped: a
    JWKS is public, so an ``oct`` key in it could only be an attack."""
    out: dict[str, list[Key]] = {}
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        return out
    algs = [a for a in algorithms if _KTY.get(a) != "oct"]
    for raw in jwks["keys"]:
        if not isinstance(raw, dict) or raw.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        public = {k: v for k, v in raw.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            key = JWKRegistry.import_key(public)
        except (JoseError, ValueError, TypeError):
            continue
        if any(key_fits(key, a) for a in algs):
            kid = raw.get("kid")
            out.setdefault(kid if isinstance(kid, str) else "", []).append(key)
    return out


def _b64json(segment: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return msgspec.json.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts, the first a JSON object with an ``alg``. Cheap enough to
    route tokens between signature checking and introspection."""
    if token.count(".") != 2:
        return False
    head = _b64json(token.partition(".")[0][:2048])
    return isinstance(head, dict) and isinstance(head.get("alg"), str)


class JwtVerifier:
    """Checks JWS-compact tokens against pinned algorithms and registered claims."""

    def __init__(self, *, algorithms: Iterable[str], issuer: str | None = None,
                 audience: str | Sequence[str] | None = None, leeway: float = 30.0,
                 max_age: float | None = None, token_type: str | None = None,
                 max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> None:
        algs = frozenset(algorithms)
        if not algs:
            raise ValueError("at least one JWS algorithm must be allowed")
        for a in algs:
            key_type(a)
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY:.0f} seconds")
        self.algorithms = algs
        self.issuer = issuer
        self.audience = [audience] if isinstance(audience, str) else list(audience or [])
        self.leeway = leeway
        self.max_age = max_age
        self.token_type = token_type.lower() if token_type else None
        self.max_token_bytes = max_token_bytes
        self._registries = {a: registry([a]) for a in algs}

    def header(self, token: str) -> dict[str, Any]:
        """The protected header, vetted before any key is looked up."""
        if len(token) > self.max_token_bytes:
            raise Invalid("The token is too large.")
        parts = token.split(".")
        if len(parts) == 5:
            raise Invalid("Encrypted tokens (JWE) are not accepted.")
        if len(parts) != 3 or not all(parts):
            raise Invalid("The token is not a well-formed JWT.")
        head = _b64json(parts[0])
        if not isinstance(head, dict):
            raise Invalid("The token is not a well-formed JWT.")
        alg = head.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise Invalid("The token's signing algorithm is not accepted.")
        if any(h in head for h in _KEY_LOCATING_HEADERS):
            raise Invalid("Tokens that carry or point to their own key are not accepted.")
        kid = head.get("kid")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise Invalid("The token's key id is malformed.")
        if self.token_type is not None:
            typ = head.get("typ")
            if not isinstance(typ, str) or typ.lower().removeprefix("application/") \
                    != self.token_type:
                raise Invalid("The token is not of the accepted type.")
        return head

    def verify(self, token: str, head: Mapping[str, Any], key: Key) -> dict[str, Any]:
        """Signature, then claims. ``head`` comes from ``header(token)``; ``key`` was
        chosen by the caller from trusted keys and must fit the header's algorithm."""
        alg = head["alg"]
        if not key_fits(key, alg):
            raise Invalid("The token's signing algorithm does not match its key.")
        try:
            decoded = jwt.decode(token, key, algorithms=[alg], registry=self._registries[alg])
        except JoseError:
            raise Invalid("The token's signature is invalid.") from None
        except (ValueError, TypeError):
            raise Invalid("The token is not a well-formed JWT.") from None
        claims = decoded.claims
        self.check_claims(claims)
        return claims

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        now = time.time()
        lee = self.leeway
        exp = claims.get("exp")
        if not _numeric(exp):
            raise Invalid("The token has no valid expiry ('exp').")
        if exp <= now - lee:
            raise Invalid("The token has expired.")
        nbf = claims.get("nbf")
        if nbf is not None and (not _numeric(nbf) or nbf > now + lee):
            raise Invalid("The token is not valid yet.")
        iat = claims.get("iat")
        if iat is not None and (not _numeric(iat) or iat > now + lee):
            raise Invalid("The token was issued in the future.")
        if self.max_age is not None and (not _numeric(iat) or now - iat > self.max_age + lee):
            raise Invalid("The token is too old.")
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise Invalid("The token was issued by an issuer that is not trusted.")
        if self.audience:
            aud = claims.get("aud")
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not any(a in auds for a in self.audience if isinstance(a, str)):
                raise Invalid("The token is not meant for this service (audience).")


def _numeric(v: Any) -> TypeGuard[float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v \
        and abs(v) != float("inf")


def select_key(candidates: Mapping[str, list[Key]], head: Mapping[str, Any]) -> Key | None:
    """The one trusted key a header names: by ``kid``, or, for a token without one, the
    only key that fits its algorithm (ambiguity is a refusal, not a guess)."""
    alg = head["alg"]
    kid = head.get("kid")
    if kid is not None:
        fit = [k for k in candidates.get(kid, ()) if key_fits(k, alg)]
    else:
        fit = [k for keys in candidates.values() for k in keys if key_fits(k, alg)]
    return fit[0] if len(fit) == 1 else None


__all__ = ["ASYMMETRIC_ALGORITHMS", "MAX_LEEWAY", "SUPPORTED_ALGORITHMS", "ECKey", "JwtVerifier",
           "KeySet", "OKPKey", "RSAKey", "import_verification_key", "key_fits", "looks_like_jwt",
           "public_keys", "registry", "select_key"]
