"""JwtAuth: each algorithm family, claim checks with bounded leeway, and the attack
battery — every forged or malformed token must be refused (401), never accepted and
never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey

from dragoman.auth import JwtAuth, RequestInfo, errors
from dragoman.auth.jose import MAX_LEEWAY, registry

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
RSA_OTHER = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})  # same kid, other key
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
ED = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
SECRET = "0123456789abcdef0123456789abcdef-hs256"
ISS, AUD = "https://issuer.test", "urn:gateway"


def pem(key: Key) -> str:
    return key.as_pem(private=False).decode()  # type: ignore[attr-defined]


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISS, "aud": AUD, "sub": "u1", "tenant": "acme", "scope": "llm:invoke",
            "iat": now, "exp": now + 300}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, alg: str, body: dict[str, Any] | None = None, **header: Any) -> str:
    h = {"alg": alg, "typ": "JWT", **header}
    if key.kid and "kid" not in header:
        h["kid"] = key.kid
    return jwt.encode(h, body if body is not None else claims(), key, algorithms=[alg],
                      registry=registry([alg]))


def raw_sign(key: Key, header: dict[str, Any], body: dict[str, Any]) -> str:
    """Sign without joserfc's header checks: for headers no honest signer would write."""
    signing_input = f"{b64(header)}.{b64(body)}"
    sig = registry([header["alg"]]).get_alg(header["alg"]).sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(sig)}"


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def req(token: str) -> RequestInfo:
    return RequestInfo("POST", "/v1/messages", {"authorization": f"Bearer {token}"})


def rs256() -> JwtAuth:
    return JwtAuth(algorithm="RS256", key=pem(RSA), issuer=ISS, audience=AUD)


@pytest.mark.parametrize(("alg", "key", "verify_with"), [
    ("HS256", OctKey.import_key(SECRET), SECRET),
    ("RS256", RSA, pem(RSA)),
    ("ES256", EC, EC.as_dict(private=False)),
    ("EdDSA", ED, json.dumps(ED.as_dict(private=False))),
    ("Ed25519", ED, pem(ED)),
])
async def test_each_algorithm_verifies_and_maps_claims(alg: str, key: Key,
                                                       verify_with: Any) -> None:
    auth = JwtAuth(algorithm=alg, key=verify_with, issuer=ISS, audience=AUD)
    p = await auth.resolve(req(sign(key, alg)))
    assert (p.tenant_id, p.subject, p.scopes) == ("acme", "u1", frozenset({"llm:invoke"}))


async def test_jwks_chooses_the_key_by_kid() -> None:
    jwks = {"keys": [RSAKey.generate_key(2048, parameters={"kid": "old"}).as_dict(private=False),
                     RSA.as_dict(private=False)]}
    auth = JwtAuth(algorithm="RS256", jwks=jwks, issuer=ISS, audience=AUD)
    assert (await auth.resolve(req(sign(RSA, "RS256")))).tenant_id == "acme"
    with pytest.raises(errors.Invalid, match="not trusted"):
        await auth.resolve(req(sign(RSA, "RS256", kid="missing")))
    no_kid = raw_sign(RSA, {"alg": "RS256", "typ": "JWT"}, claims())
    with pytest.raises(errors.Invalid, match="not trusted"):  # two keys: no kid is ambiguous
        await auth.resolve(req(no_kid))
    one = JwtAuth(algorithm="RS256", jwks={"keys": [RSA.as_dict(private=False)]}, issuer=ISS,
                  audience=AUD)
    assert (await one.resolve(req(no_kid))).tenant_id == "acme"  # one key: unambiguous


def test_construction_refuses_unsafe_setups() -> None:
    with pytest.raises(ValueError, match="not a public key"):
        JwtAuth(algorithm="HS256", key=pem(RSA))  # the HS/RS confusion, at config time
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JwtAuth(algorithm="HS256", key="short")
    with pytest.raises(ValueError, match="cannot verify"):
        JwtAuth(algorithm="ES256", key=pem(RSA))
    with pytest.raises(ValueError, match="unsupported"):
        JwtAuth(algorithm="none", key=SECRET)
    with pytest.raises(ValueError, match="leeway"):
        JwtAuth(algorithm="RS256", key=pem(RSA), leeway=MAX_LEEWAY + 1)
    with pytest.raises(ValueError, match="exactly one"):
        JwtAuth(algorithm="RS256")


# --- the attack battery ------------------------------------------------------------------

def alg_none() -> str:
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."


def hs256_signed_with_rsa_public_key() -> str:
    # The classic confusion: a verifier that takes "the key" and the token's alg would
    # HMAC with the RSA public key, which the attacker knows.
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'})}.{b64(claims())}"
    mac = hmac.new(pem(RSA).encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def embedded_attacker_key() -> str:
    attacker = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    return sign(attacker, "RS256", jwk=attacker.as_dict(private=False))


def pointed_attacker_key() -> str:
    return sign(RSA_OTHER, "RS256", jku="https://attacker.test/jwks.json")


def tampered_payload() -> str:
    head, _, sig = sign(RSA, "RS256").split(".")
    return f"{head}.{b64(claims(tenant='victim'))}.{sig}"


def unknown_crit_header() -> str:
    return raw_sign(RSA, {"alg": "RS256", "kid": "rsa-1", "crit": ["urn:unknown"],
                          "urn:unknown": True}, claims())


ATTACKS = {
    "alg_none": alg_none,
    "alg_none_with_signature": lambda: alg_none() + "c2ln",
    "hs256_signed_with_rsa_public_key": hs256_signed_with_rsa_public_key,
    "wrong_key_same_kid": lambda: sign(RSA_OTHER, "RS256"),
    "embedded_jwk_header": embedded_attacker_key,
    "jku_header": pointed_attacker_key,
    "tampered_payload": tampered_payload,
    "wrong_issuer": lambda: sign(RSA, "RS256", claims(iss="https://evil.test")),
    "no_issuer": lambda: sign(RSA, "RS256", claims(iss=None)),
    "wrong_audience": lambda: sign(RSA, "RS256", claims(aud="urn:other")),
    "audience_list_without_us": lambda: sign(RSA, "RS256", claims(aud=["a", "b"])),
    "expired": lambda: sign(RSA, "RS256", claims(exp=int(time.time()) - 60)),
    "no_expiry": lambda: sign(RSA, "RS256", claims(exp=None)),
    "expiry_not_a_number": lambda: sign(RSA, "RS256", claims(exp="tomorrow")),
    "not_yet_valid": lambda: sign(RSA, "RS256", claims(nbf=int(time.time()) + 120)),
    "issued_in_the_future": lambda: sign(RSA, "RS256", claims(iat=int(time.time()) + 120)),
    "oversized": lambda: sign(RSA, "RS256", claims(pad="x" * 9000)),
    "garbage_base64": lambda: "!!!.@@@.###",
    "garbage_json": lambda: f"{b64(b'not json')}.{b64(claims())}.c2ln",
    "two_parts": lambda: f"{b64({'alg': 'RS256'})}.{b64(claims())}",
    "empty_signature": lambda: sign(RSA, "RS256").rsplit(".", 1)[0] + ".",
    "jwe_compact": lambda: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",
    "kid_not_a_string": lambda: raw_sign(RSA, {"alg": "RS256", "kid": ["rsa-1"]}, claims()),
    "unknown_crit_header": unknown_crit_header,
    "es256_token_for_rs256_gateway": lambda: sign(EC, "ES256"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_attack_battery_fails_closed(attack: str) -> None:
    token = ATTACKS[attack]()
    with pytest.raises(errors.Invalid) as refused:
        await rs256().resolve(req(token))
    assert refused.value.status == 401
    assert token not in refused.value.message and token not in refused.value.challenge()


async def test_leeway_is_honoured_and_bounded() -> None:
    now = int(time.time())
    auth = JwtAuth(algorithm="RS256", key=pem(RSA), issuer=ISS, audience=AUD, leeway=60)
    assert await auth.resolve(req(sign(RSA, "RS256", claims(exp=now - 30))))
    assert await auth.resolve(req(sign(RSA, "RS256", claims(nbf=now + 30))))
    with pytest.raises(errors.Invalid, match="expired"):
        await auth.resolve(req(sign(RSA, "RS256", claims(exp=now - 90))))
    strict = JwtAuth(algorithm="RS256", key=pem(RSA), issuer=ISS, audience=AUD, leeway=0,
                     max_age=60)
    with pytest.raises(errors.Invalid, match="too old"):
        await strict.resolve(req(sign(RSA, "RS256", claims(iat=now - 120))))


async def test_token_type_can_be_required() -> None:
    auth = JwtAuth(algorithm="RS256", key=pem(RSA), issuer=ISS, audience=AUD,
                   token_type="at+jwt")
    assert await auth.resolve(req(sign(RSA, "RS256", typ="at+jwt")))
    with pytest.raises(errors.Invalid, match="type"):
        await auth.resolve(req(sign(RSA, "RS256")))  # typ JWT: say, an ID token
