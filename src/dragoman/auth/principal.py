"""Who is calling, as every layer after authentication sees it."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``tenant_id`` scopes every stored object; an empty
    ``allowed_models`` means every model, and an entry may be a glob (``claude-*``)."""

    tenant_id: str
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    allowed_models: frozenset[str] = frozenset()
    limits: Mapping[str, float] = field(default_factory=dict)

    def may_use(self, model: str) -> bool:
        allowed = self.allowed_models
        if not allowed or model in allowed:
            return True
        return any(fnmatch.fnmatchcase(model, p) for p in allowed if _is_glob(p))


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


ANONYMOUS = Principal(tenant_id="default")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The HTTP-agnostic view of an inbound request that resolvers get: lower-cased header
    names, the path, the method and the peer address."""

    method: str
    path: str
    headers: Mapping[str, str]
    client: str | None = None

    def bearer_token(self) -> str | None:
        """The caller's key from ``Authorization: Bearer`` or ``x-api-key``."""
        auth = self.headers.get("authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        key = self.headers.get("x-api-key")
        return key.strip() if key else None


@runtime_checkable
class AuthResolver(Protocol):
    """Resolves every request to a ``Principal``, or raises a ``dragoman.auth.errors``
    error (which the server answers in the caller's dialect)."""

    async def resolve(self, request: RequestInfo) -> Principal: ...
