"""Defaults the ``auth:`` config schema names, kept apart from the resolvers that use them
so reading a config never imports the JOSE libraries (the ``jwt``/``oidc`` extras)."""

from __future__ import annotations

#: The largest bearer token a resolver reads (anything longer is refused unparsed).
DEFAULT_MAX_TOKEN_BYTES = 8192

#: The signature algorithms an OIDC issuer's tokens may use by default (asymmetric only).
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "Ed25519")
