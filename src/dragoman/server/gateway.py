"""``Gateway``: the model table, stores and settings one server process answers with."""

from __future__ import annotations

from collections.abc import Iterable

from ..auth import ANONYMOUS, AuthResolver, Principal, RequestInfo, StaticTokens
from ..router import ModelTable
from ..sessions.memory import MemoryResponseStore
from .http import Scope

DEFAULT_MAX_BODY = 32 * 1024 * 1024


def request_info(scope: Scope) -> RequestInfo:
    """The resolver's view of an ASGI request (headers decoded once, names lower-case)."""
    client = scope.get("client")
    return RequestInfo(method=scope["method"], path=scope["path"],
                       headers={k.decode("latin-1"): v.decode("latin-1")
                                for k, v in scope["headers"]},
                       client=client[0] if client else None)


class Gateway:
    def __init__(self, models: ModelTable, *, auth: AuthResolver | None = None,
                 api_keys: Iterable[str] | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY,
                 response_store: MemoryResponseStore | None = None) -> None:
        """``auth`` resolves every request to a Principal; ``api_keys`` is the shorthand for
        ``StaticTokens(api_keys)``; with neither, every caller is the anonymous tenant."""
        self.models = models
        keys = list(api_keys or ())
        self.auth: AuthResolver | None = auth or (StaticTokens(keys) if keys else None)
        self.max_body_bytes = max_body_bytes
        self.responses = response_store or MemoryResponseStore()

    async def authenticate(self, scope: Scope) -> Principal:
        if self.auth is None:
            return ANONYMOUS
        return await self.auth.resolve(request_info(scope))

    def app(self) -> object:
        from .app import App

        return App(self)

    async def aclose(self) -> None:
        for p in self.models.providers():
            await p.aclose()
