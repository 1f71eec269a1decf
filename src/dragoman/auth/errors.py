"""The auth error tree, and the categories ``ChainedAuth`` reasons about.

Each auth error IS a core ``DragomanError`` of the matching kind, so the server renders it
in the caller's dialect with no special case; on top it carries a ``category`` (what kind
of failure it was, for the chain) and an RFC 6750 ``challenge()`` for ``WWW-Authenticate``.

| category          | class              | core kind          | status |
|-------------------|--------------------|--------------------|--------|
| invalid           | ``Invalid``         | authentication     | 401    |
| invalid           | ``Malformed``       | invalid_request    | 400    |
| policy_denied     | ``PolicyDenied``    | permission         | 403    |
| transport         | ``Transport``       | transport          | 503    |
| rate_limited      | ``RateLimited``     | rate_limited       | 429    |
| circuit_open      | ``CircuitOpen``     | circuit_open       | 503    |
| budget_exhausted  | ``BudgetExhausted`` | budget_exhausted   | 429    |
| provider          | ``Provider``        | upstream           | 502    |

``Transport`` answers 503, not core's 502: the caller's credentials may be fine, the
gateway just cannot check them right now. Messages never contain a token or a secret:
they are built from fixed text and, at most, names (claim names, OAuth error codes).
"""

from __future__ import annotations

import enum
from typing import ClassVar

from .. import core


class AuthCategory(enum.StrEnum):
    INVALID = "invalid"
    POLICY_DENIED = "policy_denied"
    TRANSPORT = "transport"
    RATE_LIMITED = "rate_limited"
    CIRCUIT_OPEN = "circuit_open"
    BUDGET_EXHAUSTED = "budget_exhausted"
    PROVIDER = "provider"


#: Failures of the machinery around authentication rather than of the caller's
#: credentials; ``ChainedAuth.with_short_circuit_on_infrastructure_errors()`` halts on them.
INFRASTRUCTURE = frozenset({AuthCategory.TRANSPORT, AuthCategory.RATE_LIMITED,
                            AuthCategory.CIRCUIT_OPEN, AuthCategory.BUDGET_EXHAUSTED})

REALM = "dragoman"
_CLASS_DEFAULT = "\0class default"  # sentinel: keep the class's bearer_error


def _quoted(value: str) -> str:
    """An RFC 7230 quoted-string body: no quotes, backslashes or control characters."""
    return "".join(c for c in value if c >= " " and c not in '"\\\x7f')[:200]


class AuthError(core.DragomanError):
    """Base of every failure an ``AuthResolver`` raises."""

    category: ClassVar[AuthCategory]
    #: RFC 6750 §3.1 error code for the challenge; None sends a bare challenge (the
    #: request carried no credentials at all).
    bearer_error: str | None = None

    def __init__(self, message: str, *, bearer_error: str | None = _CLASS_DEFAULT,
                 scope: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        if bearer_error is not _CLASS_DEFAULT:
            self.bearer_error = bearer_error
        self.scope = scope

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value (RFC 6750 §3)."""
        parts = [f'Bearer realm="{REALM}"']
        if self.bearer_error:
            parts.append(f'error="{self.bearer_error}"')
            parts.append(f'error_description="{_quoted(self.message)}"')
        if self.scope:
            parts.append(f'scope="{_quoted(self.scope)}"')
        return ", ".join(parts)


class Invalid(AuthError, core.AuthenticationFailed):
    """The credentials are missing, malformed, expired, revoked or unknown (401)."""

    category = AuthCategory.INVALID
    bearer_error = "invalid_token"

    def __init__(self, message: str, **kw: object) -> None:
        kw.setdefault("code", "invalid_api_key")
        super().__init__(message, **kw)  # type: ignore[arg-type]


def missing_credentials() -> Invalid:
    return Invalid("Missing API key: send it as 'Authorization: Bearer' or 'x-api-key'.",
                   bearer_error=None)


class Malformed(AuthError, core.InvalidRequest):
    """Credentials that cannot be read unambiguously (400, RFC 6750 ``invalid_request``)."""

    category = AuthCategory.INVALID
    bearer_error = "invalid_request"


def repeated_credentials(header: str) -> Malformed:
    """Two ``Authorization`` (or ``x-api-key``) headers: refused, never resolved by picking
    one, so nothing that appends a header can change who the caller is (RFC 6750 §3.1:
    a repeated parameter is ``invalid_request``)."""
    return Malformed(f"The request carries more than one '{header}' header: send exactly "
                     "one.")


class PolicyDenied(AuthError, core.PermissionDenied):
    """Authenticated, but this caller may not do this (403)."""

    category = AuthCategory.POLICY_DENIED
    bearer_error = "insufficient_scope"


class Transport(AuthError, core.TransportError):
    """The identity provider or secret store could not be reached (503)."""

    category = AuthCategory.TRANSPORT

    def __init__(self, message: str, **kw: object) -> None:
        kw.setdefault("status", 503)
        kw.setdefault("code", "auth_unavailable")
        super().__init__(message, **kw)  # type: ignore[arg-type]


class RateLimited(AuthError, core.RateLimited):
    """The identity provider (or an auth-side limit) asks us to slow down (429)."""

    category = AuthCategory.RATE_LIMITED


class CircuitOpen(AuthError, core.CircuitOpen):
    """Auth calls are suspended after repeated failures (503)."""

    category = AuthCategory.CIRCUIT_OPEN


class BudgetExhausted(AuthError, core.BudgetExhausted):
    """The caller's budget is spent (429)."""

    category = AuthCategory.BUDGET_EXHAUSTED


class Provider(AuthError, core.UpstreamError):
    """The identity provider answered, but not usefully: a malformed document, our own
    client credentials refused, no client auth method in common (502)."""

    category = AuthCategory.PROVIDER

    def __init__(self, message: str, **kw: object) -> None:
        kw.setdefault("code", "auth_provider_error")
        super().__init__(message, **kw)  # type: ignore[arg-type]


_BY_KIND: dict[core.ErrorKind, AuthCategory] = {
    core.ErrorKind.AUTHENTICATION: AuthCategory.INVALID,
    core.ErrorKind.INVALID_REQUEST: AuthCategory.INVALID,
    core.ErrorKind.PERMISSION: AuthCategory.POLICY_DENIED,
    core.ErrorKind.TRANSPORT: AuthCategory.TRANSPORT,
    core.ErrorKind.TIMEOUT: AuthCategory.TRANSPORT,
    core.ErrorKind.OVERLOADED: AuthCategory.TRANSPORT,
    core.ErrorKind.RATE_LIMITED: AuthCategory.RATE_LIMITED,
    core.ErrorKind.CIRCUIT_OPEN: AuthCategory.CIRCUIT_OPEN,
    core.ErrorKind.BUDGET_EXHAUSTED: AuthCategory.BUDGET_EXHAUSTED,
}


def category_of(err: BaseException) -> AuthCategory:
    """The chain category of any error a resolver raised (a plain core error from the
    transport layer included); anything unrecognised is a provider failure."""
    if isinstance(err, AuthError):
        return err.category
    if isinstance(err, core.DragomanError):
        return _BY_KIND.get(err.kind, AuthCategory.PROVIDER)
    return AuthCategory.PROVIDER


def as_auth_error(err: core.DragomanError) -> AuthError:
    """Re-express a core error (say, a ``TransportError`` from ``net``) in the auth tree,
    keeping its message and retry hint."""
    if isinstance(err, AuthError):
        return err
    cat = category_of(err)
    cls = _CLASS[cat]
    return cls(err.message, retry_after=err.retry_after)


_CLASS: dict[AuthCategory, type[AuthError]] = {
    AuthCategory.INVALID: Invalid,
    AuthCategory.POLICY_DENIED: PolicyDenied,
    AuthCategory.TRANSPORT: Transport,
    AuthCategory.RATE_LIMITED: RateLimited,
    AuthCategory.CIRCUIT_OPEN: CircuitOpen,
    AuthCategory.BUDGET_EXHAUSTED: BudgetExhausted,
    AuthCategory.PROVIDER: Provider,
}
