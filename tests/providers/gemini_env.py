"""Shared set-up for the Gemini / Vertex provider tests: the fake, a service-account key
the fake's token endpoint trusts, and provider factories."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dragoman.core import ChatRequest, Message, Part, Text
from dragoman.net.fetch import FetchPolicy
from dragoman.providers.gemini import GoogleGenerateContent, from_spec
from dragoman.providers.registry import ProviderSpec
from tests.fakes.gemini import (
    GEMINI_KEY,
    SA_EMAIL,
    VERTEX_LOCATION,
    VERTEX_PROJECT,
    FakeGemini,
)

MODEL = "gemini-2.5-flash"
#: the fake serves its images on loopback: allowed explicitly, as a config would
LOOPBACK_FETCH = FetchPolicy(allowed_content_types=("image/",),
                             allow_hosts=frozenset({"127.0.0.1"}))


def service_account_file(fake: FakeGemini, directory: Path, *,
                         email: str = SA_EMAIL, trusted: bool = True) -> Path:
    """A service-account JSON key whose ``token_uri`` is the fake's token endpoint; the
    fake knows its public key when ``trusted``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if trusted:
        fake.register_service_account(email, key)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": VERTEX_PROJECT,
            "private_key_id": uuid.uuid4().hex, "private_key": pem, "client_email": email,
            "client_id": "104242424242424242424", "token_uri": f"{fake.url}/token",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "universe_domain": "googleapis.com"}
    path = directory / f"sa-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(info))
    return path


def gemini_provider(fake: FakeGemini, *, key: str = GEMINI_KEY,
                    **options: Any) -> GoogleGenerateContent:
    return from_spec(ProviderSpec(name="gem", provider="gemini", model=MODEL,
                                  base_url=fake.url, api_key=key, options=options,
                                  fetch_policy=LOOPBACK_FETCH))


def vertex_provider(fake: FakeGemini, credentials: Path | None, **options: Any
                    ) -> GoogleGenerateContent:
    opts: dict[str, Any] = {"project": VERTEX_PROJECT, "location": VERTEX_LOCATION}
    if credentials is not None:
        opts["credentials_file"] = str(credentials)
    opts.update(options)
    return from_spec(ProviderSpec(name="vtx", provider="vertex", model=MODEL,
                                  base_url=fake.url, options=opts,
                                  fetch_policy=LOOPBACK_FETCH))


def ask(text: str, *more: Part, **kw: Any) -> ChatRequest:
    return ChatRequest(model="client-name", messages=[
        Message(role="user", content=[Text(text=text), *more])], **kw)


def marker(scenario: str) -> tuple[str, str]:
    nonce = f"n-{uuid.uuid4().hex[:16]}"
    return f"scenario:{scenario} please ({nonce})", nonce
