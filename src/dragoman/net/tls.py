"""TLS client contexts built from PEM text (a private CA, a client certificate for mTLS).

Python's ``ssl`` loads a certificate chain only from a file path. The key is therefore
written to an anonymous in-memory file (``memfd``, Linux) that no directory lists and
that vanishes when closed; elsewhere, to a private temporary file removed at once.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def _pem_path(pem: str) -> Iterator[str]:
    data = pem.encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("dragoman-pem", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as d:  # pragma: no cover (non-Linux)
        path = os.path.join(d, "pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path


def client_context(*, ca_pem: str | None = None, ca_file: str | None = None,
                   cert_pem: str | None = None, key_pem: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system trust store, or ``ca_pem``/``ca_file``
    instead; with ``cert_pem`` and ``key_pem``, a client identity for mutual TLS.

    Raises ``ValueError`` if the certificate or key cannot be loaded or do not belong
    together (the message names the problem, never the key)."""
    if ca_pem or ca_file:
        ctx = ssl.create_default_context(cafile=ca_file, cadata=ca_pem)
    else:
        ctx = ssl.create_default_context()
    if (cert_pem is None) != (key_pem is None):
        raise ValueError("a client certificate needs both the certificate and its key")
    if cert_pem is not None and key_pem is not None:
        try:
            with _pem_path(cert_pem) as cert_path, _pem_path(key_pem) as key_path:
                ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as e:
            reason = e.reason or "unreadable certificate or key"
            raise ValueError(f"cannot load the client certificate: {reason}") from None
    return ctx
