"""The operator's keys (``server.admin_keys``): separate from client keys, they open
``/metrics``, ``/admin/*`` and the dashboard's data, and nothing else. A client key (or no
key) on those routes is refused with a 401; with no admin key configured, everyone is.
Keys are kept as SHA-256 digests and compared in constant time (``StaticTokens``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from ..auth import Principal, StaticTokens
from ..auth.errors import Invalid
from ..auth.principal import RequestInfo
from .http import Receive, Scope, Send

ADMIN = Principal(tenant_id="admin", subject="admin")

Handler = Callable[..., Awaitable[None]]


class AdminKeys:
    def __init__(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self._tokens = StaticTokens(dict.fromkeys(keys, ADMIN)) if keys else None

    def __repr__(self) -> str:
        return "AdminKeys(<configured>)" if self._tokens else "AdminKeys(<none>)"

    @property
    def configured(self) -> bool:
        return self._tokens is not None

    async def check(self, scope: Scope) -> None:
        """Return if the request carries an admin key, else raise a 401."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"authorization", b"x-api-key")}
        info = RequestInfo(method=scope["method"], path=scope["path"], headers=headers)
        if self._tokens is None:
            raise Invalid("This route needs an admin key (`server.admin_keys`).",
                          code="admin_key_required")
        if info.bearer_token() is None:
            raise Invalid("This route needs an admin key: send it as "
                          "'Authorization: Bearer'.", bearer_error=None,
                          code="admin_key_required")
        try:
            await self._tokens.resolve(info)
        except Invalid:
            raise Invalid("Incorrect admin key provided.", code="invalid_admin_key") from None


def admin_only(handler: Handler) -> Handler:
    """A route handler (``app.Handler`` signature) that runs only for an admin key."""
    async def guarded(gw: object, principal: object, scope: Scope, receive: Receive,
                      send: Send, params: list[str]) -> None:
        await gw.admin.check(scope)  # type: ignore[attr-defined]
        await handler(gw, principal, scope, receive, send, params)

    guarded.__doc__ = handler.__doc__
    return guarded
