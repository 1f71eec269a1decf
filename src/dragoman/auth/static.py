"""Static bearer tokens → principals."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from .errors import Invalid, missing_credentials
from .principal import Principal, RequestInfo


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class StaticTokens:
    """A fixed token table. Tokens are kept only as SHA-256 digests and compared in
    constant time, so neither a repr nor a timing side channel gives them away.

    ``StaticTokens({"sk-…": Principal(...)})`` maps tokens to principals; a bare list of
    tokens gives each its own tenant (named by a digest prefix, never the token);
    ``digests`` maps hex SHA-256 digests of tokens (``sha256sum`` output) to principals,
    which keeps even the configuration free of the tokens themselves.
    """

    def __init__(self, tokens: Mapping[str, Principal] | Iterable[str] = (), *,
                 digests: Mapping[str, Principal] | None = None) -> None:
        if isinstance(tokens, Mapping):
            pairs = [(token_digest(t), p) for t, p in tokens.items()]
        else:
            pairs = [(token_digest(t), _own_tenant(token_digest(t))) for t in tokens]
        for hexd, p in (digests or {}).items():
            try:
                d = bytes.fromhex(hexd)
            except ValueError:
                d = b""
            if len(d) != 32:
                raise ValueError("a token digest must be 64 hex characters (SHA-256)")
            pairs.append((d, p))
        self._table = pairs

    def __repr__(self) -> str:
        return f"StaticTokens(<{len(self._table)} tokens>)"

    async def resolve(self, request: RequestInfo) -> Principal:
        token = request.bearer_token()
        if token is None:
            raise missing_credentials()
        digest = token_digest(token)
        found: Principal | None = None
        for d, p in self._table:  # no early exit: time does not depend on which matched
            if hmac.compare_digest(d, digest):
                found = p
        if found is None:
            raise Invalid("Incorrect API key provided.")
        return found


def _own_tenant(digest: bytes) -> Principal:
    return Principal(tenant_id="key-" + digest.hex()[:12])
