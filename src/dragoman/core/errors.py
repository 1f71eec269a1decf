"""One error tree. Every failure a client can see is a ``DragomanError`` with a ``kind``;
each dialect maps kinds to its own status codes and envelopes.

Messages must never contain secrets: callers build them from safe facts only.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.StrEnum):
    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CIRCUIT_OPEN = "circuit_open"
    CONTEXT_LENGTH = "context_length"
    UPSTREAM = "upstream"
    TRANSPORT = "transport"
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"


#: The HTTP status an OpenAI-style dialect answers with for each kind. The Anthropic
#: dialect differs only where its API does (529 for overload); see the dialect modules.
DEFAULT_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.BUDGET_EXHAUSTED: 429,
    ErrorKind.CIRCUIT_OPEN: 503,
    ErrorKind.CONTEXT_LENGTH: 400,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.TRANSPORT: 502,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.OVERLOADED: 503,
}


class DragomanError(Exception):
    """Base of every error dragoman reports to a client.

    ``param`` names the offending request field, ``code`` is an optional machine-readable
    detail (``model_not_found``…), ``status`` overrides the kind's default HTTP status
    (used to pass an upstream's own 4xx through unchanged).
    """

    kind: ErrorKind = ErrorKind.UPSTREAM

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self._status = status
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return self._status if self._status is not None else DEFAULT_STATUS[self.kind]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind.value!r}, message={self.message!r})"


class InvalidRequest(DragomanError):
    kind = ErrorKind.INVALID_REQUEST


class AuthenticationFailed(DragomanError):
    kind = ErrorKind.AUTHENTICATION


class PermissionDenied(DragomanError):
    kind = ErrorKind.PERMISSION


class NotFound(DragomanError):
    kind = ErrorKind.NOT_FOUND


class Conflict(DragomanError):
    kind = ErrorKind.CONFLICT


class RequestTooLarge(DragomanError):
    kind = ErrorKind.REQUEST_TOO_LARGE


class RateLimited(DragomanError):
    kind = ErrorKind.RATE_LIMITED


class BudgetExhausted(DragomanError):
    kind = ErrorKind.BUDGET_EXHAUSTED


class CircuitOpen(DragomanError):
    kind = ErrorKind.CIRCUIT_OPEN


class ContextLengthExceeded(DragomanError):
    kind = ErrorKind.CONTEXT_LENGTH


class UpstreamError(DragomanError):
    kind = ErrorKind.UPSTREAM


class TransportError(DragomanError):
    kind = ErrorKind.TRANSPORT


class UpstreamTimeout(DragomanError):
    kind = ErrorKind.TIMEOUT


class Overloaded(DragomanError):
    kind = ErrorKind.OVERLOADED


_BY_KIND: dict[ErrorKind, type[DragomanError]] = {
    cls.kind: cls
    for cls in (
        InvalidRequest,
        AuthenticationFailed,
        PermissionDenied,
        NotFound,
        Conflict,
        RequestTooLarge,
        RateLimited,
        BudgetExhausted,
        CircuitOpen,
        ContextLengthExceeded,
        UpstreamError,
        TransportError,
        UpstreamTimeout,
        Overloaded,
    )
}


def error_for_kind(kind: ErrorKind | str, message: str, **kw: object) -> DragomanError:
    """Build the error class for ``kind`` (used by the echo model and upstream parsers)."""
    cls = _BY_KIND[ErrorKind(kind)]
    return cls(message, **kw)  # type: ignore[arg-type]


def error_for_status(status: int, message: str, *, retry_after: float | None = None,
                     code: str | None = None) -> DragomanError:
    """Classify an upstream HTTP failure. Upstream 4xx that describe the client's request
    keep their status; credential problems of the gateway itself become 502, so a client
    is never told its own key is wrong when it is dragoman's upstream key that is."""
    if status == 429:
        return RateLimited(message, retry_after=retry_after, code=code)
    if status in (401, 403):
        return UpstreamError(f"upstream rejected the gateway's credentials: {message}", code=code)
    if status == 404:
        return NotFound(message, code=code)
    if status == 413:
        return RequestTooLarge(message, code=code)
    if status == 408 or status == 504:
        return UpstreamTimeout(message, code=code)
    if status in (503, 529):
        return Overloaded(message, retry_after=retry_after, code=code)
    if 400 <= status < 500:
        return InvalidRequest(message, code=code, status=status if status != 400 else None)
    return UpstreamError(message, code=code)
