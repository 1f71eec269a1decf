"""Static bearer tokens → principals."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from ..core import AuthenticationFailed
from .principal import Principal, RequestInfo


class StaticTokens:
    """A fixed token table. Tokens are kept only as SHA-256 digests and compared in
    constant time, so neither a repr nor a timing side channel gives them away."""

    def __init__(self, tokens: Mapping[str, Principal] | Iterable[str]) -> None:
        if isinstance(tokens, Mapping):
            pairs = list(tokens.items())
        else:
            # Bare keys: one tenant per key, named by a digest prefix (never the key).
            pairs = [(t, Principal(tenant_id="key-" + hashlib.sha256(t.encode()).hexdigest()[:12]))
                     for t in tokens]
        self._table = [(hashlib.sha256(t.encode()).digest(), p) for t, p in pairs]

    def __repr__(self) -> str:
        return f"StaticTokens(<{len(self._table)} tokens>)"

    async def resolve(self, request: RequestInfo) -> Principal:
        token = request.bearer_token()
        if token is None:
            raise AuthenticationFailed("Missing API key: send it as 'Authorization: Bearer' "
                                       "or 'x-api-key'.", code="invalid_api_key")
        digest = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        for d, p in self._table:  # no early exit: time does not depend on which matched
            if hmac.compare_digest(d, digest):
                found = p
        if found is None:
            raise AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
        return found
