"""tako's ``tako.compat`` names, so ``import dragoman.compat as compat`` is a one-line
switch for code written against tako:

    orch = dragoman.SingleAgent(provider=dragoman.providers.Anthropic(model=..., api_key=...))
    await dragoman.compat.serve_openai(
        orchestrator=orch, bind="0.0.0.0:8080",
        auth=dragoman.compat.StaticTokens({"sk-mykey": dragoman.Principal(tenant_id="acme")}))

Every name here is dragoman's own object (``dragoman.serve_openai``, ``dragoman.auth.*``),
not a wrapper. ``JwtAuth`` and ``OidcAuth`` need the ``jwt`` / ``oidc`` extras and are
imported on first use. The README's "Coming from tako / Centaur / agentick" section lists
every name and every deliberate difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .auth import ChainedAuth, Principal, StaticTokens, VaultAuth
from .serve_agent import serve_openai

if TYPE_CHECKING:
    from .auth import JwtAuth, OidcAuth


def __getattr__(name: str) -> Any:
    if name in ("JwtAuth", "OidcAuth"):
        from . import auth

        return getattr(auth, name)
    raise AttributeError(name)


__all__ = ["ChainedAuth", "JwtAuth", "OidcAuth", "Principal", "StaticTokens", "VaultAuth",
           "serve_openai"]
