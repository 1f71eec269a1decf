"""End to end: ``dragoman serve`` with an ``auth:`` chain (static keys, the real OpenID
provider — JWTs and introspected opaque tokens — and OpenBao), driven by the official
openai and anthropic SDKs. Refusals arrive as 401/403 in each API's own envelope with a
``WWW-Authenticate`` challenge and without the token; a principal's ``allowed_models``
holds in every dialect and filters ``/v1/models``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway_proc import free_port, run_gateway

from .infra import SECRET, OidcProvider, OpenBao

STATIC_KEY = "sk-static-team-s-0123456789"
VAULT_KEY = "sk-vault-team-v-0123456789"
BOGUS = "sk-bogus-DO-NOT-ECHO-4242"
MODELS = [{"name": "dragoman/echo", "provider": "echo"},
          {"name": "echo-b", "provider": "echo"},
          {"name": "claude-*", "provider": "echo"}]


@pytest.fixture(scope="module")
def vault_role(bao: OpenBao) -> tuple[str, str]:
    bao.ok("PUT", "sys/policies/acl/gateway-e2e",
           {"policy": 'path "secret/data/e2e/keys/*" { capabilities = ["read"] }'})
    if "approle/" not in bao.ok("GET", "sys/auth")["data"]:
        bao.ok("POST", "sys/auth/approle", {"type": "approle"})
    bao.ok("POST", "auth/approle/role/e2e", {"token_policies": ["gateway-e2e"]})
    name = hashlib.sha256(VAULT_KEY.encode()).hexdigest()
    bao.ok("POST", f"secret/data/e2e/keys/{name}",
           {"data": {"tenant": "team-v", "subject": "vault-user", "allowed_models": ["claude-*"]}})
    rid = bao.ok("GET", "auth/approle/role/e2e/role-id")["data"]["role_id"]
    sid = bao.ok("POST", "auth/approle/role/e2e/secret-id")["data"]["secret_id"]
    return rid, sid


@pytest.fixture(scope="module")
def gateway(oidc: OidcProvider, bao: OpenBao, vault_role: tuple[str, str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {
        "models": MODELS,
        "auth": {"type": "chain", "short_circuit": "infrastructure", "children": [
            {"type": "static", "tokens": [
                {"token_sha256": hashlib.sha256(STATIC_KEY.encode()).hexdigest(),
                 "tenant": "team-s", "allowed_models": ["echo-b"]}]},
            {"type": "oidc", "issuer": oidc.issuer, "audience": "urn:llm-gateway",
             "claims": {"required_scopes": ["llm:invoke"]},
             "introspection": {"client_id": "gw-rs-basic",
                               "client_secret": "${E2E_INTROSPECTION_SECRET}",
                               # the method the client is registered with (a bare secret
                               # would otherwise sign client_secret_jwt, the strongest)
                               "methods": ["client_secret_basic"],
                               "audience": "urn:llm-gateway:opaque"}},
            {"type": "vault", "address": bao.address, "path": "e2e/keys",
             "login": {"method": "approle", "role_id": vault_role[0],
                       "secret_id": "${E2E_VAULT_SECRET_ID}"}},
        ]},
    }
    env = {"E2E_INTROSPECTION_SECRET": SECRET("gw-rs-basic"), "E2E_VAULT_SECRET_ID": vault_role[1]}
    with run_gateway(config, tmp_path_factory.mktemp("auth-gw"), env=env) as url:
        yield url


def oai(gw: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw + "/v1", api_key=key, max_retries=0, timeout=20)


def ant(gw: str, key: str, bearer: bool = False) -> anthropic.Anthropic:
    if bearer:
        return anthropic.Anthropic(base_url=gw, auth_token=key, max_retries=0, timeout=20)
    return anthropic.Anthropic(base_url=gw, api_key=key, max_retries=0, timeout=20)


def chat(gw: str, key: str, model: str) -> str | None:
    r = oai(gw, key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello chat"}])
    return r.choices[0].message.content


def responses(gw: str, key: str, model: str) -> str:
    return oai(gw, key).responses.create(model=model, input="hello responses").output_text


def messages(gw: str, key: str, model: str) -> str:
    r = ant(gw, key).messages.create(model=model, max_tokens=50,
                                     messages=[{"role": "user", "content": "hello messages"}])
    block = r.content[0]
    assert block.type == "text"
    return block.text


Call = Callable[[str, str, str], Any]
DIALECTS: dict[str, tuple[Call, type[Exception], type[Exception]]] = {
    "openai_chat": (chat, openai.AuthenticationError, openai.PermissionDeniedError),
    "openai_responses": (responses, openai.AuthenticationError, openai.PermissionDeniedError),
    "anthropic_messages": (messages, anthropic.AuthenticationError,
                           anthropic.PermissionDeniedError),
}


def envelope_type(dialect: str, err: Any) -> str:
    body = err.body
    if dialect == "anthropic_messages":
        assert body["type"] == "error"
        return str(body["error"]["type"])
    return str(body["type"])


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_missing_and_invalid_credentials_get_401(gateway: str, dialect: str) -> None:
    call, unauthorized, _ = DIALECTS[dialect]
    with pytest.raises(unauthorized) as bad:  # type: ignore[call-overload]
        call(gateway, BOGUS, "dragoman/echo")
    err: Any = bad.value
    assert err.status_code == 401
    if dialect == "anthropic_messages":
        assert envelope_type(dialect, err) == "authentication_error"
    else:  # what OpenAI itself answers to a bad key
        assert (envelope_type(dialect, err), err.body["code"]) == \
            ("invalid_request_error", "invalid_api_key")
    challenge = err.response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="dragoman", error="invalid_token"')
    assert BOGUS not in err.response.text and BOGUS not in challenge
    # No credentials at all: a bare challenge (RFC 6750 §3.1).
    r = httpx.post(gateway + {"openai_chat": "/v1/chat/completions",
                              "openai_responses": "/v1/responses",
                              "anthropic_messages": "/v1/messages"}[dialect],
                   json={"model": "dragoman/echo"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="dragoman"'


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_each_principal_kind_reaches_its_models(gateway: str, oidc: OidcProvider,
                                                dialect: str) -> None:
    call = DIALECTS[dialect][0]
    jwt = oidc.token()  # team-a, allowed: dragoman/echo
    opaque = oidc.token("urn:llm-gateway:opaque")  # the same, via introspection
    assert "hello" in str(call(gateway, jwt, "dragoman/echo"))
    assert "hello" in str(call(gateway, opaque, "dragoman/echo"))
    assert "hello" in str(call(gateway, STATIC_KEY, "echo-b"))
    assert "hello" in str(call(gateway, VAULT_KEY, "claude-gateway-test"))


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_models_outside_allowed_models_get_403(gateway: str, oidc: OidcProvider,
                                               dialect: str) -> None:
    call, _, forbidden = DIALECTS[dialect]
    for key, model in [(oidc.token(), "echo-b"), (STATIC_KEY, "dragoman/echo"),
                       (VAULT_KEY, "echo-b"), (oidc.token("urn:llm-gateway:opaque"),
                                               "claude-opus")]:
        with pytest.raises(forbidden) as denied:  # type: ignore[call-overload]
            call(gateway, key, model)
        err: Any = denied.value
        assert err.status_code == 403
        assert envelope_type(dialect, err) == "permission_error"
        assert model in str(err.body)
        assert 'error="insufficient_scope"' in err.response.headers["www-authenticate"]
        assert key not in err.response.text


def test_model_listing_is_filtered_per_principal(gateway: str, oidc: OidcProvider) -> None:
    assert [m.id for m in oai(gateway, oidc.token()).models.list()] == ["dragoman/echo"]
    assert [m.id for m in oai(gateway, STATIC_KEY).models.list()] == ["echo-b"]
    assert [m.id for m in ant(gateway, VAULT_KEY).models.list()] == []  # only a glob allowed
    with pytest.raises(openai.NotFoundError):
        oai(gateway, STATIC_KEY).models.retrieve("dragoman/echo")
    assert oai(gateway, STATIC_KEY).models.retrieve("echo-b").id == "echo-b"


def test_anthropic_bearer_and_count_tokens(gateway: str, oidc: OidcProvider) -> None:
    client = ant(gateway, oidc.token(), bearer=True)  # Authorization: Bearer, not x-api-key
    assert client.messages.count_tokens(
        model="dragoman/echo", messages=[{"role": "user", "content": "hi"}]).input_tokens > 0
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.count_tokens(model="claude-x",
                                     messages=[{"role": "user", "content": "hi"}])


def test_insufficient_scope_is_403(gateway: str, oidc: OidcProvider) -> None:
    # gw-basic may ask for llm:admin only: the token lacks the required llm:invoke.
    token = oidc.token(scope="llm:admin")
    with pytest.raises(openai.PermissionDeniedError) as denied:
        chat(gateway, token, "dragoman/echo")
    assert 'scope="llm:invoke"' in denied.value.response.headers["www-authenticate"]


def test_issuer_down_with_short_circuit_is_503(oidc: OidcProvider, tmp_path: Path) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    config = {"models": MODELS, "auth": {"type": "chain", "short_circuit": "transport",
                                         "children": [
        {"type": "oidc", "issuer": gone, "audience": "urn:llm-gateway",
         "introspection": {"client_id": "gw", "client_secret": "s" * 40}},
        {"type": "static", "tokens": [{"token": STATIC_KEY, "tenant": "team-s"}]}]}}
    with run_gateway(config, tmp_path) as gw:
        with pytest.raises(openai.InternalServerError) as down:
            chat(gw, STATIC_KEY, "echo-b")
        assert down.value.status_code == 503
        assert down.value.body["code"] == "auth_unavailable"  # type: ignore[index]
        with pytest.raises(anthropic.InternalServerError) as down2:
            messages(gw, STATIC_KEY, "echo-b")
        assert down2.value.status_code == 503
        assert STATIC_KEY not in down2.value.response.text


def test_config_errors_name_the_auth_path(tmp_path: Path) -> None:
    from dragoman.config import ConfigError, build_gateway, parse_config

    with pytest.raises(ConfigError, match=r"\$\.auth\.children\[1\]\.tokens\[0\]"):
        build_gateway(parse_config({"auth": {"type": "chain", "children": [
            {"type": "jwt", "algorithm": "HS256", "key": "k" * 32},
            {"type": "static", "tokens": [{"tenant": "t"}]}]}}))
    with pytest.raises(ConfigError, match="api_keys"):
        build_gateway(parse_config({"server": {"api_keys": ["k"]},
                                    "auth": {"type": "static", "tokens": []}}))
    with pytest.raises(ConfigError, match=r"unknown field `secret` - at `\$\.auth`"):
        parse_config({"auth": {"type": "static", "tokens": [], "secret": 1}})
    with pytest.raises(ConfigError, match="audience"):
        parse_config({"auth": {"type": "oidc", "issuer": "http://x"}})
