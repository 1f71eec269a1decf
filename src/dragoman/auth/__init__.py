"""Authentication: every request resolves to a ``Principal`` before anything else.

Resolvers: ``StaticTokens``, ``JwtAuth``, ``OidcAuth``, ``VaultAuth`` and ``ChainedAuth``
(any object with ``async resolve(RequestInfo) -> Principal`` will do). Failures are the
errors of ``dragoman.auth.errors``; their categories drive ``ChainedAuth``.

``JwtAuth`` needs the ``jwt`` extra and ``OidcAuth`` (with ``ClientAuth``, ``MtlsClient``)
the ``oidc`` extra: they are imported on first use, and a missing extra is a
``MissingExtra`` error naming the ``pip install`` command.

Imports only ``dragoman.core`` and ``dragoman.net``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.extras import require_extra
from . import errors
from .chain import ChainedAuth
from .claims import ClaimMapping
from .errors import AuthCategory, AuthError
from .policy import require_model
from .principal import ANONYMOUS, AuthResolver, Principal, RequestInfo
from .static import StaticTokens
from .vault import AppRoleLogin, KubernetesLogin, TokenLogin, VaultAuth

if TYPE_CHECKING:
    from .client_auth import ClientAuth
    from .jwt_auth import JwtAuth
    from .mtls import MtlsClient
    from .oidc import OidcAuth

#: name → (module, the extra it needs)
_LAZY = {"JwtAuth": (".jwt_auth", "jwt"), "OidcAuth": (".oidc", "oidc"),
         "ClientAuth": (".client_auth", "oidc"), "MtlsClient": (".mtls", "oidc")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, extra = _LAZY[name]
        require_extra(extra, name)
        return getattr(importlib.import_module(module, __name__), name)
    raise AttributeError(name)


__all__ = ["ANONYMOUS", "AppRoleLogin", "AuthCategory", "AuthError", "AuthResolver",
           "ChainedAuth", "ClaimMapping", "ClientAuth", "JwtAuth", "KubernetesLogin",
           "MtlsClient", "OidcAuth", "Principal", "RequestInfo", "StaticTokens", "TokenLogin",
           "VaultAuth", "errors", "require_model"]
