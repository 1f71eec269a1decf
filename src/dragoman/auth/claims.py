"""Claims → ``Principal``: one mapping shared by JWTs, introspection answers and Vault
entries, so every resolver turns "who is this" into the same shape the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PolicyDenied
from .principal import Principal

_MAX_TENANT = 200


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (``realm_access.roles``).
    A name that exists literally (URIs with dots, as some IdPs use) wins over the path."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def string_set(value: Any) -> frozenset[str] | None:
    """A space-separated string (OAuth ``scope``) or a list of strings; None if absent or
    of another shape."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return None


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Which claims name the tenant, subject, scopes, allowed models and limits.

    ``default_tenant`` applies when the tenant claim is absent (without it, a token with no
    tenant is refused); ``allowed_models`` applies when the token names none;
    ``required_scopes`` must all be granted or the caller gets 403 ``insufficient_scope``.
    """

    tenant: str = "tenant"
    subject: str = "sub"
    scopes: str = "scope"
    models: str = "allowed_models"
    limits: str = "limits"
    default_tenant: str | None = None
    allowed_models: frozenset[str] = frozenset()
    required_scopes: frozenset[str] = frozenset()

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        tenant = claim(claims, self.tenant)
        if isinstance(tenant, int) and not isinstance(tenant, bool):
            tenant = str(tenant)
        if tenant is None or tenant == "":
            tenant = self.default_tenant
        if not isinstance(tenant, str) or not tenant:
            raise PolicyDenied(f"The credentials carry no tenant (claim '{self.tenant}').",
                               code="no_tenant")
        if len(tenant) > _MAX_TENANT or not tenant.isprintable():
            raise PolicyDenied("The credentials carry a malformed tenant.", code="no_tenant")
        scopes = string_set(claim(claims, self.scopes)) or frozenset()
        missing = self.required_scopes - scopes
        if missing:
            need = " ".join(sorted(self.required_scopes))
            raise PolicyDenied(f"The credentials lack the required scope(s): {need}.",
                               scope=need, code="insufficient_scope")
        subject = claim(claims, self.subject)
        models = string_set(claim(claims, self.models))
        limits_raw = claim(claims, self.limits)
        limits: dict[str, float] = {}
        if isinstance(limits_raw, Mapping):
            limits = {str(k): float(v) for k, v in limits_raw.items()
                      if isinstance(v, int | float) and not isinstance(v, bool)}
        return Principal(tenant_id=tenant,
                         subject=str(subject) if isinstance(subject, str | int) else None,
                         scopes=scopes,
                         allowed_models=models if models is not None else self.allowed_models,
                         limits=limits)
