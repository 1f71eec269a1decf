"""``Gateway``: the model table, stores and settings one server process answers with."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from ..core import AuthenticationFailed
from ..router import ModelTable
from ..sessions.memory import MemoryResponseStore
from .http import Scope, header

DEFAULT_MAX_BODY = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. The auth issue extends this (subject, scopes, allowed models)."""

    tenant_id: str


ANONYMOUS = Principal(tenant_id="default")


def bearer_token(scope: Scope) -> str | None:
    """The caller's key from ``Authorization: Bearer`` or ``x-api-key``."""
    auth = header(scope, b"authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = header(scope, b"x-api-key")
    return key.strip() if key else None


class StaticKeys:
    """Accept a fixed set of keys. Keys are kept only as SHA-256 digests and compared in
    constant time, so neither a repr nor a timing side channel gives them away."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]

    def __repr__(self) -> str:
        return f"StaticKeys(<{len(self._digests)} keys>)"

    def resolve(self, scope: Scope) -> Principal:
        token = bearer_token(scope)
        if token is None:
            raise AuthenticationFailed("Missing API key: send it as 'Authorization: Bearer' "
                                       "or 'x-api-key'.", code="invalid_api_key")
        digest = hashlib.sha256(token.encode()).digest()
        ok = False
        for d in self._digests:
            ok |= hmac.compare_digest(d, digest)
        if not ok:
            raise AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
        # One tenant per key, named by a digest prefix (never the key itself).
        return Principal(tenant_id="key-" + digest[:6].hex())


class Gateway:
    def __init__(self, models: ModelTable, *, api_keys: Iterable[str] | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY,
                 response_store: MemoryResponseStore | None = None) -> None:
        self.models = models
        keys = list(api_keys or ())
        self.auth: StaticKeys | None = StaticKeys(keys) if keys else None
        self.max_body_bytes = max_body_bytes
        self.responses = response_store or MemoryResponseStore()

    def authenticate(self, scope: Scope) -> Principal:
        return self.auth.resolve(scope) if self.auth is not None else ANONYMOUS

    def app(self) -> object:
        from .app import App

        return App(self)

    async def aclose(self) -> None:
        for p in self.models.providers():
            await p.aclose()
