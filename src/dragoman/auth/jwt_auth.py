"""``JwtAuth``: self-contained JWTs checked against keys given at construction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .claims import ClaimMapping
from .defaults import DEFAULT_MAX_TOKEN_BYTES
from .errors import Invalid, missing_credentials
from .jose import (
    JwtVerifier,
    import_verification_key,
    public_keys,
    select_key,
)
from .principal import Principal, RequestInfo


class JwtAuth:
    """Bearer JWTs signed with one pinned algorithm (HS256/384/512, RS*, PS*, ES256/384/512,
    EdDSA/Ed25519).

    ``key`` is the verification key (a PEM or JWK public key; the shared secret for HS*),
    or ``jwks`` a JWKS document whose keys are chosen by ``kid``. Tokens signed with any
    other algorithm (``none`` included) are refused before their signature is looked at.
    ``exp`` is required; ``iss``/``aud`` are checked when configured, ``nbf``/``iat`` when
    present, all within ``leeway`` seconds (at most 300).
    """

    def __init__(self, *, algorithm: str, key: str | bytes | Mapping[str, Any] | None = None,
                 jwks: Mapping[str, Any] | None = None, issuer: str | None = None,
                 audience: str | Sequence[str] | None = None, leeway: float = 30.0,
                 max_age: float | None = None, token_type: str | None = None,
                 claims: ClaimMapping | None = None,
                 max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> None:
        if (key is None) == (jwks is None):
            raise ValueError("JwtAuth needs exactly one of `key` or `jwks`")
        self._verifier = JwtVerifier(algorithms=[algorithm], issuer=issuer, audience=audience,
                                     leeway=leeway, max_age=max_age, token_type=token_type,
                                     max_token_bytes=max_token_bytes)
        if key is not None:
            k = import_verification_key(key, algorithm)
            self._keys = {k.kid or "": [k]}
        else:
            self._keys = public_keys(jwks, [algorithm])
            if not self._keys:
                raise ValueError(f"the JWKS has no key that can verify {algorithm} signatures")
        self.algorithm = algorithm
        self.claims = claims or ClaimMapping()

    def __repr__(self) -> str:
        return f"JwtAuth(algorithm={self.algorithm!r}, issuer={self._verifier.issuer!r})"

    async def resolve(self, request: RequestInfo) -> Principal:
        token = request.bearer_token()
        if token is None:
            raise missing_credentials()
        head = self._verifier.header(token)
        key = select_key(self._keys, head)
        if key is None and len(self._keys) == 1 and "" in self._keys:
            # One configured key without a kid: it verifies whatever kid the token names.
            key = select_key(self._keys, {"alg": head["alg"]})
        if key is None:
            raise Invalid("The token names a signing key that is not trusted.")
        return self.claims.principal(self._verifier.verify(token, head, key))
