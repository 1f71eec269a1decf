"""A client certificate and the connection pool that presents it, swappable at run time.

Each identity (certificate + key + the pool whose TLS context holds them) is built whole,
checked, and only then published by a single reference assignment. A request takes the
current identity once and keeps it to the end, so it can never mix the old certificate
with the new key; the old pool is closed when its last request is done.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ..net import HttpClient, Timeouts
from ..net.tls import client_context

log = logging.getLogger("dragoman.auth")


def is_self_signed(cert_pem: str) -> bool:
    """Whether the leaf certificate signed itself (RFC 8705 §2.2) rather than being
    issued by a CA (§2.1): it decides which of the two mTLS methods it can serve."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        raise ValueError("the client certificate is not a PEM certificate") from None
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:
        return False
    return True


_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)


def split_combined_pem(pem: str) -> tuple[str, str]:
    """One PEM bundle → (certificates, private key). The certificate blocks keep their
    order (leaf first, then its chain); exactly one private key block is expected."""
    certs: list[str] = []
    keys: list[str] = []
    for m in _PEM_BLOCK.finditer(pem):
        if m.group(1) == "CERTIFICATE":
            certs.append(m.group(0))
        elif m.group(1).endswith("PRIVATE KEY"):
            keys.append(m.group(0))
    if not certs or len(keys) != 1:
        raise ValueError("a combined PEM must hold at least one CERTIFICATE and exactly one "
                         f"PRIVATE KEY block (found {len(certs)} and {len(keys)})")
    return "\n".join(certs) + "\n", keys[0] + "\n"


class _Identity:
    __slots__ = ("client", "fingerprint", "retired", "self_signed", "users")

    def __init__(self, cert_pem: str, key_pem: str, ca_pem: str | None, ca_file: str | None,
                 timeouts: Timeouts | None) -> None:
        self.self_signed = is_self_signed(cert_pem)
        ctx = client_context(ca_pem=ca_pem, ca_file=ca_file, cert_pem=cert_pem, key_pem=key_pem)
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        self.fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        self.client = HttpClient("", timeouts=timeouts, limit=32, ssl_context=ctx)
        self.users = 0
        self.retired = False


class MtlsClient:
    """The current mTLS identity; ``use()`` lends its pool for one request."""

    def __init__(self, cert_pem: str, key_pem: str, *, ca_pem: str | None = None,
                 ca_file: str | None = None, timeouts: Timeouts | None = None) -> None:
        self._ca_pem = ca_pem
        self._ca_file = ca_file
        self._timeouts = timeouts
        self._current = _Identity(cert_pem, key_pem, ca_pem, ca_file, timeouts)
        self._closing: set[asyncio.Task[None]] = set()
        self._idle_retired: list[_Identity] = []

    def __repr__(self) -> str:
        return f"MtlsClient(<certificate {self._current.fingerprint[:16]}…>)"

    @property
    def self_signed(self) -> bool:
        return self._current.self_signed

    def reload(self, cert_pem: str, key_pem: str) -> None:
        """Swap in a new certificate and key. Built and validated first: on any error
        (unreadable PEM, key not matching the certificate) the old identity stays."""
        new = _Identity(cert_pem, key_pem, self._ca_pem, self._ca_file, self._timeouts)
        old, self._current = self._current, new
        old.retired = True
        if old.users == 0:
            self._close_later(old)
        log.info("mTLS client identity reloaded")

    def _close_later(self, ident: _Identity) -> None:
        try:
            task = asyncio.get_running_loop().create_task(ident.client.aclose())
        except RuntimeError:  # reloaded from outside the event loop: closed by aclose()
            self._idle_retired.append(ident)
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @asynccontextmanager
    async def use(self) -> AsyncIterator[HttpClient]:
        ident = self._current  # taken once: this request keeps this identity throughout
        ident.users += 1
        try:
            yield ident.client
        finally:
            ident.users -= 1
            if ident.retired and ident.users == 0:
                await ident.client.aclose()

    async def aclose(self) -> None:
        await self._current.client.aclose()
        for ident in self._idle_retired:
            await ident.client.aclose()
        self._idle_retired.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
