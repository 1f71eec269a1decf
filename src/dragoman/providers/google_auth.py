"""OAuth2 access tokens for Google Cloud (Vertex AI) from google-auth.

Credentials come from a key file named in the config (service account, authorized user,
external account: whatever ``google.auth.load_credentials_from_file`` reads) or from the
standard chain (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application-default login,
the metadata server). google-auth signs and exchanges the assertion itself; dragoman only
decides *when*: a token is refreshed once it has less than ``margin`` seconds left, in a
worker thread (google-auth's transport is blocking), one refresh at a time however many
requests are waiting for it.

Tokens never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

from ..core import TransportError, UpstreamError

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def _utcnow() -> datetime.datetime:
    # google-auth keeps ``expiry`` as a naive UTC datetime.
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class GoogleAccessToken:
    """``await token()`` → a bearer token valid for at least ``margin`` more seconds."""

    def __init__(self, credentials_file: str | None = None, *,
                 scopes: tuple[str, ...] = (CLOUD_PLATFORM,), margin: float = 300.0) -> None:
        self._file = credentials_file
        self._scopes = list(scopes)
        self._margin = datetime.timedelta(seconds=margin)
        self._creds: Any = None
        self._stale = False
        self._lock = asyncio.Lock()
        self.project: str | None = None
        """The project the credentials belong to, when they say (known after the first
        ``token()``)."""

    def __repr__(self) -> str:  # never the token or the key file's content
        return f"GoogleAccessToken(credentials_file={self._file!r})"

    def _fresh(self) -> bool:
        creds = self._creds
        if creds is None or self._stale or not creds.token:
            return False
        expiry = creds.expiry
        return expiry is None or expiry - _utcnow() > self._margin

    async def token(self) -> str:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():  # another request may have refreshed it meanwhile
                    await asyncio.to_thread(self._refresh)
        return str(self._creds.token)

    async def project_id(self) -> str | None:
        if self._creds is None:
            await self.token()
        return self.project

    def invalidate(self) -> None:
        """The upstream refused the token (revoked, clock skew): refresh before next use."""
        self._stale = True

    # --- blocking part (runs in a worker thread) --------------------------------------

    def _refresh(self) -> None:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            if self._creds is None:
                if self._file:
                    self._creds, self.project = _from_file(self._file, self._scopes)
                else:
                    self._creds, self.project = google.auth.default(scopes=self._scopes)
            self._creds.refresh(google.auth.transport.requests.Request())
            self._stale = False
        except google.auth.exceptions.DefaultCredentialsError as e:
            raise UpstreamError(f"no usable Google credentials for Vertex AI: {_why(e)}") \
                from None
        except google.auth.exceptions.RefreshError as e:
            raise UpstreamError("Google refused the gateway's credentials for Vertex AI: "
                                f"{_why(e)}") from None
        except google.auth.exceptions.TransportError:
            raise TransportError("cannot reach the Google token endpoint") from None


def _from_file(path: str, scopes: list[str]) -> tuple[Any, str | None]:
    """Credentials of a key file, by its declared type (google-auth's generic loader is
    deprecated: it would accept any credential configuration a file names)."""
    from google.oauth2 import credentials, service_account

    def unusable(why: str) -> UpstreamError:
        return UpstreamError(f"no usable Google credentials for Vertex AI: {why}")

    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise unusable(f"cannot read {path!r} ({type(e).__name__})") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=scopes)
        return creds, info.get("project_id")
    if kind == "authorized_user":
        creds = credentials.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
            info, scopes=scopes)
        return creds, info.get("quota_project_id")
    raise unusable(f"{path!r} has type {kind!r}: use a service account or authorized user "
                   "key, or leave `credentials_file` out to use the standard credential chain")


def _why(e: Exception) -> str:
    """The first argument of a google-auth error (a short text like ``invalid_grant:
    Invalid JWT Signature.``), never the response details it may carry after it."""
    first = e.args[0] if e.args else type(e).__name__
    return str(first)[:200]
