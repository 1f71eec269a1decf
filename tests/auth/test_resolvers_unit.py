"""The parts of auth that need no server: static tokens, claim mapping, model policy, the
error tree and the chain's fall-through rules."""

from __future__ import annotations

import hashlib

import pytest

from dragoman import core
from dragoman.auth import (
    ChainedAuth,
    ClaimMapping,
    ClientAuth,
    Principal,
    RequestInfo,
    StaticTokens,
    errors,
    require_model,
)
from dragoman.auth.errors import AuthCategory, category_of


def req(token: str | None = None, header: str = "authorization") -> RequestInfo:
    headers = {}
    if token is not None:
        headers[header] = f"Bearer {token}" if header == "authorization" else token
    return RequestInfo(method="POST", path="/v1/chat/completions", headers=headers)


# --- StaticTokens ----------------------------------------------------------------------

async def test_static_tokens_map_tokens_to_principals() -> None:
    alice = Principal(tenant_id="team-a", subject="alice", allowed_models=frozenset({"m"}))
    bob = Principal(tenant_id="team-b", subject="bob")
    auth = StaticTokens({"sk-alice": alice},
                        digests={hashlib.sha256(b"sk-bob").hexdigest(): bob})
    assert await auth.resolve(req("sk-alice")) is alice
    assert await auth.resolve(req("sk-bob", header="x-api-key")) is bob
    assert "sk-alice" not in repr(auth)
    with pytest.raises(errors.Invalid) as wrong:
        await auth.resolve(req("sk-carol"))
    assert wrong.value.status == 401
    assert wrong.value.challenge().startswith('Bearer realm="dragoman", error="invalid_token"')
    assert "sk-carol" not in wrong.value.message
    with pytest.raises(errors.Invalid) as missing:
        await auth.resolve(req())
    # RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
    assert missing.value.challenge() == 'Bearer realm="dragoman"'


def test_static_token_digests_are_validated() -> None:
    with pytest.raises(ValueError, match="64 hex"):
        StaticTokens(digests={"abc": Principal(tenant_id="t")})
    with pytest.raises(ValueError, match="64 hex"):
        StaticTokens(digests={"zz" * 32: Principal(tenant_id="t")})


async def test_bare_keys_get_a_tenant_named_by_digest_not_key() -> None:
    p = await StaticTokens(["sk-one"]).resolve(req("sk-one"))
    assert p.tenant_id == "key-" + hashlib.sha256(b"sk-one").hexdigest()[:12]


# --- claims → principal -----------------------------------------------------------------

def test_claim_mapping_reads_tenant_scopes_models_and_limits() -> None:
    m = ClaimMapping(tenant="org.id", required_scopes=frozenset({"llm:invoke"}))
    p = m.principal({"org": {"id": "acme"}, "sub": "u1", "scope": "llm:invoke other",
                     "allowed_models": ["gpt-*", "claude-x"], "limits": {"rpm": 60, "x": "no"}})
    assert p == Principal(tenant_id="acme", subject="u1",
                          scopes=frozenset({"llm:invoke", "other"}),
                          allowed_models=frozenset({"gpt-*", "claude-x"}), limits={"rpm": 60.0})


def test_claim_mapping_refusals() -> None:
    with pytest.raises(errors.PolicyDenied, match="no tenant"):
        ClaimMapping().principal({"sub": "x"})
    assert ClaimMapping(default_tenant="d").principal({"sub": "x"}).tenant_id == "d"
    with pytest.raises(errors.PolicyDenied) as scope:
        ClaimMapping(required_scopes=frozenset({"llm:invoke"})).principal(
            {"tenant": "t", "scope": "read"})
    assert scope.value.status == 403
    assert 'error="insufficient_scope"' in scope.value.challenge()
    assert 'scope="llm:invoke"' in scope.value.challenge()
    with pytest.raises(errors.PolicyDenied, match="malformed"):
        ClaimMapping().principal({"tenant": "a\nb"})
    # A literal claim name with dots wins over the path reading.
    assert ClaimMapping(tenant="https://x.io/tenant").principal(
        {"https://x.io/tenant": "t1"}).tenant_id == "t1"
    # Models given by the token win over the resolver's default; absent, the default holds.
    base = ClaimMapping(allowed_models=frozenset({"a"}))
    assert base.principal({"tenant": "t"}).allowed_models == {"a"}
    assert base.principal({"tenant": "t", "allowed_models": "b c"}).allowed_models == {"b", "c"}


def test_model_policy_with_globs() -> None:
    p = Principal(tenant_id="t", allowed_models=frozenset({"gpt-4o", "claude-*"}))
    assert p.may_use("gpt-4o") and p.may_use("claude-sonnet-4")
    assert not p.may_use("gpt-4o-mini")
    with pytest.raises(errors.PolicyDenied) as denied:
        require_model(p, "gpt-4o-mini")
    assert denied.value.status == 403 and denied.value.code == "model_not_allowed"
    require_model(Principal(tenant_id="t"), "anything")  # no list: everything allowed


# --- the error tree ---------------------------------------------------------------------

@pytest.mark.parametrize(("err", "kind", "status", "category"), [
    (errors.Invalid("x"), core.ErrorKind.AUTHENTICATION, 401, AuthCategory.INVALID),
    (errors.PolicyDenied("x"), core.ErrorKind.PERMISSION, 403, AuthCategory.POLICY_DENIED),
    (errors.Transport("x"), core.ErrorKind.TRANSPORT, 503, AuthCategory.TRANSPORT),
    (errors.RateLimited("x"), core.ErrorKind.RATE_LIMITED, 429, AuthCategory.RATE_LIMITED),
    (errors.CircuitOpen("x"), core.ErrorKind.CIRCUIT_OPEN, 503, AuthCategory.CIRCUIT_OPEN),
    (errors.BudgetExhausted("x"), core.ErrorKind.BUDGET_EXHAUSTED, 429,
     AuthCategory.BUDGET_EXHAUSTED),
    (errors.Provider("x"), core.ErrorKind.UPSTREAM, 502, AuthCategory.PROVIDER),
])
def test_auth_errors_are_core_errors(err: errors.AuthError, kind: core.ErrorKind, status: int,
                                     category: AuthCategory) -> None:
    assert isinstance(err, core.DragomanError)
    assert err.kind is kind and err.status == status and err.category is category
    assert category_of(err) is category


def test_core_errors_have_categories_too() -> None:
    assert category_of(core.TransportError("x")) is AuthCategory.TRANSPORT
    assert category_of(core.UpstreamTimeout("x")) is AuthCategory.TRANSPORT
    assert category_of(core.RateLimited("x")) is AuthCategory.RATE_LIMITED
    assert category_of(core.AuthenticationFailed("x")) is AuthCategory.INVALID
    assert category_of(ValueError("bug")) is AuthCategory.PROVIDER


def test_challenge_cannot_be_broken_by_the_message() -> None:
    err = errors.Invalid('bad "quoted" \\ value\r\nInjected: header')
    assert err.challenge() == ('Bearer realm="dragoman", error="invalid_token", '
                               'error_description="bad quoted  valueInjected: header"')


# --- ChainedAuth --------------------------------------------------------------------------

class Fixed:
    """A resolver that always answers the same way (counts its calls)."""

    def __init__(self, outcome: Principal | BaseException) -> None:
        self.outcome = outcome
        self.calls = 0

    async def resolve(self, request: RequestInfo) -> Principal:
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


OK = Principal(tenant_id="ok")
ALL = [errors.Invalid("i"), errors.PolicyDenied("p"), errors.Transport("t"),
       errors.RateLimited("r"), errors.CircuitOpen("c"), errors.BudgetExhausted("b"),
       errors.Provider("v")]


async def test_chain_first_success_wins() -> None:
    first, second = Fixed(Principal(tenant_id="first")), Fixed(OK)
    assert (await ChainedAuth([first, second]).resolve(req("x"))).tenant_id == "first"
    assert second.calls == 0


@pytest.mark.parametrize("err", ALL, ids=lambda e: e.category)
async def test_chain_falls_through_every_error_by_default(err: errors.AuthError) -> None:
    assert await ChainedAuth([Fixed(err), Fixed(OK)]).resolve(req("x")) is OK


@pytest.mark.parametrize("err", ALL, ids=lambda e: e.category)
async def test_chain_short_circuits(err: errors.AuthError) -> None:
    nxt = Fixed(OK)
    transport = ChainedAuth([Fixed(err), nxt]).with_short_circuit_on_transport_error()
    infra = ChainedAuth([Fixed(err), nxt]).with_short_circuit_on_infrastructure_errors()
    if err.category is AuthCategory.TRANSPORT:
        with pytest.raises(errors.Transport):
            await transport.resolve(req("x"))
    else:
        assert await transport.resolve(req("x")) is OK
    halts = err.category in (AuthCategory.TRANSPORT, AuthCategory.RATE_LIMITED,
                             AuthCategory.CIRCUIT_OPEN, AuthCategory.BUDGET_EXHAUSTED)
    if halts:
        with pytest.raises(type(err)):
            await infra.resolve(req("x"))
    else:  # Invalid, PolicyDenied and Provider still fall through
        assert await infra.resolve(req("x")) is OK


async def test_chain_short_circuit_applies_to_plain_core_errors_and_bugs() -> None:
    chain = ChainedAuth([Fixed(core.TransportError("net")), Fixed(OK)])
    with pytest.raises(errors.Transport):
        await chain.with_short_circuit_on_transport_error().resolve(req("x"))
    # A resolver bug neither grants access nor stops the chain.
    assert await ChainedAuth([Fixed(ZeroDivisionError()), Fixed(OK)]).resolve(req("x")) is OK


async def test_chain_reports_the_most_telling_failure() -> None:
    chain = ChainedAuth([Fixed(errors.Invalid("a")), Fixed(errors.Transport("down")),
                         Fixed(errors.Invalid("b"))])
    with pytest.raises(errors.Transport):
        await chain.resolve(req("x"))
    chain = ChainedAuth([Fixed(errors.Transport("down")), Fixed(errors.PolicyDenied("no"))])
    with pytest.raises(errors.PolicyDenied):
        await chain.resolve(req("x"))
    with pytest.raises(errors.Invalid):
        await ChainedAuth([Fixed(errors.Invalid("a")), Fixed(errors.Invalid("b"))]).resolve(
            req("x"))


# --- client auth method choice --------------------------------------------------------------

def test_client_auth_picks_the_strongest_common_method() -> None:
    secret = ClientAuth("c", client_secret="s" * 32)
    assert secret.available() == ["client_secret_jwt", "client_secret_basic",
                                  "client_secret_post"]
    assert secret.choose(["client_secret_post", "client_secret_basic"]) == "client_secret_basic"
    assert secret.choose(["client_secret_post", "private_key_jwt"]) == "client_secret_post"
    assert secret.choose(None) == "client_secret_basic"  # RFC 8414 default
    with pytest.raises(errors.Provider, match="no client authentication method"):
        secret.choose(["private_key_jwt", "tls_client_auth"])
    only_post = ClientAuth("c", client_secret="s" * 32, methods=["client_secret_post"])
    with pytest.raises(errors.Provider):
        only_post.choose(["client_secret_basic"])
    with pytest.raises(ValueError, match="unknown client auth method"):
        ClientAuth("c", client_secret="s", methods=["magic"])
    with pytest.raises(ValueError, match="none of the allowed"):
        ClientAuth("c", client_secret="s", methods=["private_key_jwt"])
    assert "s" * 32 not in repr(secret)
