"""``ChainedAuth``: several resolvers, tried in order; the first success wins."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from ..core import DragomanError
from .errors import INFRASTRUCTURE, AuthCategory, AuthError, Invalid, Provider, as_auth_error
from .principal import Principal, RequestInfo

log = logging.getLogger("dragoman.auth")


class _Resolver(Protocol):
    async def resolve(self, request: RequestInfo) -> Principal: ...


#: When every child failed, the error reported is the most telling one: a child that
#: recognised the caller and refused them beats an infrastructure failure, which beats
#: a confused provider, which beats "no child knew this token".
_RANK = {AuthCategory.POLICY_DENIED: 0, AuthCategory.RATE_LIMITED: 1,
         AuthCategory.BUDGET_EXHAUSTED: 1, AuthCategory.CIRCUIT_OPEN: 2,
         AuthCategory.TRANSPORT: 2, AuthCategory.PROVIDER: 3, AuthCategory.INVALID: 4}


class ChainedAuth:
    """By default any child's error falls through to the next child. With short-circuit
    categories, an error of such a category stops the chain and is the answer: with
    ``with_short_circuit_on_transport_error()``, an unreachable issuer fails the request
    instead of letting a weaker resolver further down decide;
    ``with_short_circuit_on_infrastructure_errors()`` does the same for transport, rate
    limit, open circuit and exhausted budget (invalid credentials, policy refusals and
    provider errors still fall through).

    Built from a list (``ChainedAuth([oidc, static])``) or step by step, each step
    returning a new chain: ``ChainedAuth().then(oidc).then(static)``. A chain with no
    child refuses every request."""

    def __init__(self, children: Sequence[_Resolver] = (), *,
                 halt_on: Iterable[AuthCategory] = ()) -> None:
        self.children = tuple(children)
        self.halt_on = frozenset(halt_on)

    def __repr__(self) -> str:
        halts = ",".join(sorted(self.halt_on)) or "none"
        return f"ChainedAuth({list(self.children)!r}, halt_on={halts})"

    def then(self, resolver: _Resolver) -> ChainedAuth:
        """This chain with ``resolver`` tried after its children."""
        return ChainedAuth((*self.children, resolver), halt_on=self.halt_on)

    def with_short_circuit_on_transport_error(self) -> ChainedAuth:
        return ChainedAuth(self.children, halt_on=self.halt_on | {AuthCategory.TRANSPORT})

    def with_short_circuit_on_infrastructure_errors(self) -> ChainedAuth:
        return ChainedAuth(self.children, halt_on=self.halt_on | INFRASTRUCTURE)

    async def resolve(self, request: RequestInfo) -> Principal:
        if not self.children:
            raise Invalid("No authentication method is configured.")
        best: AuthError | None = None
        for child in self.children:
            try:
                return await child.resolve(request)
            except AuthError as e:
                err = e
            except Exception as e:
                err = _classify(e, child)
            if err.category in self.halt_on:
                raise err
            if best is None or _RANK[err.category] < _RANK[best.category]:
                best = err
        assert best is not None
        raise best


def _classify(e: Exception, child: object) -> AuthError:
    if isinstance(e, DragomanError):
        return as_auth_error(e)
    # A bug in a resolver must not grant access, nor stop the others from deciding.
    log.exception("auth resolver %r failed", child)
    return Provider("An authentication backend failed.")
