"""An issuer's metadata (OpenID discovery / RFC 8414) and its signing keys (JWKS).

Both are cached. The key set is re-fetched when a token names a ``kid`` we do not have
(the issuer rotated), but at most once per ``jwks_min_refresh`` seconds and with one fetch
in flight however many requests ask: a flood of tokens with made-up kids costs the
issuer one request per interval. A refetch replaces the set whole, so a key the issuer
retired stops verifying as soon as the new set is in. Failures are remembered briefly,
so an issuer that is down is not hammered either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from joserfc.jwk import Key

from ..net import HttpClient
from ._http import call_json
from .errors import AuthError, Invalid, Provider
from .jose import public_keys, select_key

log = logging.getLogger("dragoman.auth")

_WHAT = "identity provider"
_MAX_FAILURE_BACKOFF = 5.0


class IssuerMetadata:
    def __init__(self, issuer: str, http: HttpClient, *, algorithms: Iterable[str],
                 discovery_url: str | None = None, metadata_ttl: float = 3600.0,
                 jwks_ttl: float = 3600.0, jwks_min_refresh: float = 30.0) -> None:
        self.issuer = issuer
        self._http = http
        self._algorithms = tuple(algorithms)
        self._discovery_url = discovery_url or \
            issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._metadata_ttl = metadata_ttl
        self._jwks_ttl = jwks_ttl
        self._min_refresh = jwks_min_refresh
        self._backoff = min(jwks_min_refresh, _MAX_FAILURE_BACKOFF)
        self._doc: dict[str, Any] | None = None
        self._doc_at = 0.0
        self._doc_error: tuple[float, AuthError] | None = None
        self._doc_lock = asyncio.Lock()
        self._keys: dict[str, list[Key]] | None = None
        self._keys_at = 0.0
        self._keys_attempt = -1e18
        self._keys_error: tuple[float, AuthError] | None = None
        self._keys_lock = asyncio.Lock()
        #: How many times the key set was fetched (observability, and the tests' proof
        #: that unknown kids are rate-limited).
        self.jwks_fetches = 0

    @property
    def cached_document(self) -> Mapping[str, Any] | None:
        return self._doc

    async def document(self) -> dict[str, Any]:
        doc = self._doc
        if doc is not None and time.monotonic() - self._doc_at < self._metadata_ttl:
            return doc
        async with self._doc_lock:
            now = time.monotonic()
            if self._doc is not None and now - self._doc_at < self._metadata_ttl:
                return self._doc
            if self._doc_error is not None and now < self._doc_error[0]:
                raise _fresh(self._doc_error[1])
            try:
                self._doc = await self._fetch_document()
                self._doc_at = now
                self._doc_error = None
            except AuthError as e:
                self._doc_error = (now + self._backoff, e)
                if self._doc is None:
                    raise
                log.warning("refreshing the issuer's metadata failed; keeping the old copy")
                self._doc_at = now - self._metadata_ttl + self._backoff
            return self._doc

    async def _fetch_document(self) -> dict[str, Any]:
        status, doc = await call_json(self._http, "GET", self._discovery_url, what=_WHAT)
        if status != 200 or not isinstance(doc, dict):
            raise Provider(f"The identity provider's discovery document is unavailable "
                           f"(HTTP {status}).")
        if doc.get("issuer") != self.issuer:
            # OpenID Connect Discovery §4.3: a mismatch means the document is not this
            # issuer's (a misconfiguration or an impersonation); trust nothing in it.
            raise Provider("The identity provider's discovery document names another issuer.")
        jwks_uri = doc.get("jwks_uri")
        if jwks_uri is not None and (not isinstance(jwks_uri, str)
                                     or not jwks_uri.startswith(("https://", "http://"))):
            raise Provider("The identity provider's discovery document has a bad jwks_uri.")
        return doc

    async def key_for(self, head: Mapping[str, Any]) -> Key:
        """The trusted key for a vetted JWT header; an unknown kid triggers one
        (rate-limited) refetch before the token is refused."""
        keys = await self._key_set(force=False)
        key = select_key(keys, head)
        if key is None:
            keys = await self._key_set(force=True)
            key = select_key(keys, head)
        if key is None:
            raise Invalid("The token names a signing key that is not trusted.")
        return key

    async def _key_set(self, *, force: bool) -> dict[str, list[Key]]:
        keys = self._keys
        now = time.monotonic()
        if keys is not None:
            if not force and now - self._keys_at < self._jwks_ttl:
                return keys
            if now - self._keys_attempt < self._min_refresh:
                return keys  # the rate limit: answer from what we have
        attempt_seen = self._keys_attempt
        async with self._keys_lock:
            if self._keys_attempt != attempt_seen:
                # Another request refreshed while we waited: its answer is ours.
                if self._keys is not None:
                    return self._keys
                if self._keys_error is not None:
                    raise _fresh(self._keys_error[1])
            now = time.monotonic()
            if self._keys is None and self._keys_error is not None \
                    and now < self._keys_error[0]:
                raise _fresh(self._keys_error[1])
            self._keys_attempt = now
            try:
                fetched = await self._fetch_keys()
            except AuthError as e:
                self._keys_error = (now + self._backoff, e)
                if self._keys is None or force:
                    raise
                log.warning("refreshing the issuer's JWKS failed; keeping the old keys")
                return self._keys
            self._keys, self._keys_at, self._keys_error = fetched, now, None
            return fetched

    async def _fetch_keys(self) -> dict[str, list[Key]]:
        doc = await self.document()
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str):
            raise Provider("The identity provider publishes no jwks_uri.")
        self.jwks_fetches += 1
        status, jwks = await call_json(self._http, "GET", uri, what=_WHAT)
        if status != 200 or not isinstance(jwks, dict):
            raise Provider(f"The identity provider's key set is unavailable (HTTP {status}).")
        return public_keys(jwks, self._algorithms)


def _fresh(err: AuthError) -> AuthError:
    """A new instance of a remembered error (re-raising one object across requests
    would chain their tracebacks)."""
    new = type(err)(err.message, code=err.code, retry_after=err.retry_after)
    return new
