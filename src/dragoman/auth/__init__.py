"""Authentication: every request resolves to a ``Principal`` before anything else.

Imports only ``dragoman.core`` and ``dragoman.net``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .principal import ANONYMOUS, Principal, RequestInfo
from .static import StaticTokens


@runtime_checkable
class AuthResolver(Protocol):
    async def resolve(self, request: RequestInfo) -> Principal: ...


__all__ = ["ANONYMOUS", "AuthResolver", "Principal", "RequestInfo", "StaticTokens"]
