"""Who is calling, as every layer after authentication sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``tenant_id`` scopes every stored object; an empty
    ``allowed_models`` means every model."""

    tenant_id: str
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    allowed_models: frozenset[str] = frozenset()
    limits: Mapping[str, float] = field(default_factory=dict)

    def may_use(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


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
