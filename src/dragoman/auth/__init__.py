"""Authentication: every request resolves to a ``Principal`` before anything else.

Resolvers: ``StaticTokens``, ``JwtAuth``, ``OidcAuth``, ``VaultAuth`` and ``ChainedAuth``
(any object with ``async resolve(RequestInfo) -> Principal`` will do). Failures are the
errors of ``dragoman.auth.errors``; their categories drive ``ChainedAuth``.

Imports only ``dragoman.core`` and ``dragoman.net``.
"""

from __future__ import annotations

from . import errors
from .chain import ChainedAuth
from .claims import ClaimMapping
from .client_auth import ClientAuth
from .errors import AuthCategory, AuthError
from .jwt_auth import JwtAuth
from .mtls import MtlsClient
from .oidc import OidcAuth
from .policy import require_model
from .principal import ANONYMOUS, AuthResolver, Principal, RequestInfo
from .static import StaticTokens
from .vault import AppRoleLogin, KubernetesLogin, TokenLogin, VaultAuth

__all__ = ["ANONYMOUS", "AppRoleLogin", "AuthCategory", "AuthError", "AuthResolver",
           "ChainedAuth", "ClaimMapping", "ClientAuth", "JwtAuth", "KubernetesLogin",
           "MtlsClient", "OidcAuth", "Principal", "RequestInfo", "StaticTokens", "TokenLogin",
           "VaultAuth", "errors", "require_model"]
