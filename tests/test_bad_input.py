"""Bad input gets a 4xx in the caller's own envelope: never a 500, a hang or a trace."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
import zstandard

from tests.conftest import API_KEY, ECHO_CONFIG

AUTH = {"authorization": f"Bearer {API_KEY}"}
ANTHROPIC = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def http(echo_gateway: str) -> httpx.Client:
    return httpx.Client(base_url=echo_gateway, timeout=10)


def openai_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    assert "Traceback" not in r.text
    return body["error"]


def anthropic_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and {"type", "message"} <= set(body["error"])
    assert "Traceback" not in r.text
    return body["error"]


BAD_BODIES = [
    (b"{not json", "parse"),
    (b"", "empty"),
    (b"[1,2]", "object"),
    (json.dumps({"model": "dragoman/echo"}).encode(), "messages"),
    (json.dumps({"model": 5, "messages": []}).encode(), "model"),
    (json.dumps({"model": "dragoman/echo", "messages": "hi"}).encode(), "messages"),
    (json.dumps({"model": "dragoman/echo", "messages": [{"role": "wizard", "content": "x"}]}).encode(), "role"),
    (json.dumps({"model": "dragoman/echo", "messages": [{"role": "user", "content": [{"type": "nope"}]}]}).encode(), "type"),
]


@pytest.mark.parametrize(("body", "hint"), BAD_BODIES)
def test_chat_bad_bodies(http: httpx.Client, body: bytes, hint: str) -> None:
    err = openai_error(http.post("/v1/chat/completions", content=body,
                                 headers={**AUTH, "content-type": "application/json"}), 400)
    assert err["type"] == "invalid_request_error"
    assert hint.lower() in (err["message"] + str(err["param"])).lower()


@pytest.mark.parametrize(("body", "hint"), BAD_BODIES[:5])
def test_messages_bad_bodies(http: httpx.Client, body: bytes, hint: str) -> None:
    err = anthropic_error(http.post("/v1/messages", content=body, headers=ANTHROPIC), 400)
    assert err["type"] == "invalid_request_error"


def test_messages_missing_max_tokens(http: httpx.Client) -> None:
    r = http.post("/v1/messages", headers=ANTHROPIC,
                  json={"model": "dragoman/echo", "messages": [{"role": "user", "content": "x"}]})
    assert "max_tokens" in anthropic_error(r, 400)["message"]


def test_responses_bad_input(http: httpx.Client) -> None:
    r = http.post("/v1/responses", headers=AUTH, json={"model": "dragoman/echo", "input": 42})
    assert openai_error(r, 400)["param"] == "input"


def test_unknown_model_each_dialect(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": "x"}]
    found = []
    r = http.post("/v1/chat/completions", headers=AUTH, json={"model": "ghost", "messages": messages})
    found.append(openai_error(r, 404))
    r = http.post("/v1/responses", headers=AUTH, json={"model": "ghost", "input": "x"})
    found.append(openai_error(r, 404))
    for err in found:
        assert err["code"] == "model_not_found" and err["param"] == "model"
    found.append(openai_error(http.get("/v1/models/ghost", headers=AUTH), 404))
    r = http.post("/v1/messages", headers=ANTHROPIC, json={
        "model": "ghost", "max_tokens": 5, "messages": messages})
    err = anthropic_error(r, 404)
    assert err["type"] == "not_found_error"
    found.append(err)
    for err in found:
        # It says where the names are, and names none (not even the ones this key may use).
        assert "'ghost'" in err["message"] and "GET /v1/models" in err["message"]
        assert not any(m["name"] in err["message"] for m in ECHO_CONFIG["models"])


def test_unknown_endpoint_and_wrong_method(http: httpx.Client) -> None:
    openai_error(http.post("/v1/nowhere", headers=AUTH, json={}), 404)
    anthropic_error(http.post("/v1/nowhere", headers=ANTHROPIC, json={}), 404)
    openai_error(http.get("/v1/chat/completions", headers=AUTH), 405)
    anthropic_error(http.get("/v1/messages", headers=ANTHROPIC), 405)
    # Codex's WebSocket upgrade probe is refused quickly.
    assert http.get("/v1/responses", headers=AUTH).status_code == 405


def test_body_over_limit(http: httpx.Client) -> None:
    big = json.dumps({"model": "dragoman/echo",
                      "messages": [{"role": "user", "content": "x" * 1_200_000}]}).encode()
    r = http.post("/v1/chat/completions", content=big, headers={**AUTH, "content-type": "application/json"})
    assert openai_error(r, 413)
    r = http.post("/v1/messages", content=big, headers=ANTHROPIC)
    assert anthropic_error(r, 413)["type"] == "request_too_large"


def test_zip_bomb_refused(http: httpx.Client) -> None:
    bomb = gzip.compress(b"{" + b" " * 5_000_000 + b"}")
    r = http.post("/v1/chat/completions", content=bomb,
                  headers={**AUTH, "content-encoding": "gzip", "content-type": "application/json"})
    openai_error(r, 413)


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compressed_bodies(http: httpx.Client, encoding: str) -> None:
    raw = json.dumps({"model": "dragoman/echo", "input": "compressed hello"}).encode()
    body = gzip.compress(raw) if encoding == "gzip" else zstandard.ZstdCompressor().compress(raw)
    r = http.post("/v1/responses", content=body,
                  headers={**AUTH, "content-encoding": encoding, "content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["content"][0]["text"] == "compressed hello"
    r = http.post("/v1/responses", content=b"garbage", headers={**AUTH, "content-encoding": encoding})
    openai_error(r, 400)


def test_missing_and_wrong_key(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={"model": "dragoman/echo", "messages": []})
    openai_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = http.post("/v1/messages", headers={"x-api-key": "sk-bad-secret", "anthropic-version": "2023-06-01"},
                  json={"model": "dragoman/echo", "max_tokens": 5, "messages": []})
    assert anthropic_error(r, 401)["type"] == "authentication_error"
    assert "sk-bad-secret" not in r.text


def test_health_and_head(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.head("/").status_code == 200


def test_paths_without_v1_and_doubled(http: httpx.Client) -> None:
    body = {"model": "dragoman/echo", "max_tokens": 5, "messages": [{"role": "user", "content": "v1v1"}]}
    r = http.post("/v1/v1/messages?beta=true", headers=ANTHROPIC, json=body)
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "v1v1"


# --- validated once for every dialect (core/validate.py) ------------------------------------

GARBAGE_B64 = "iVBORw0KGgo" + "A" * 97 + "!!*"  # looks right for the first 100 characters
BAD_SCHEMA = {"type": "object", "properties": {"city": {"type": "strnig"}}}


def _image_request(dialect: str, data: str) -> tuple[str, dict]:
    url = f"data:image/png;base64,{data}"
    if dialect == "chat":
        return "/v1/chat/completions", {"model": "dragoman/echo", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "see"},
                                         {"type": "image_url", "image_url": {"url": url}}]}]}
    if dialect == "responses":
        return "/v1/responses", {"model": "dragoman/echo", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "see"},
                                         {"type": "input_image", "image_url": url}]}]}
    return "/v1/messages", {"model": "dragoman/echo", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": data}}]}]}


def _tool_request(dialect: str, schema: dict) -> tuple[str, dict]:
    if dialect == "chat":
        return "/v1/chat/completions", {"model": "dragoman/echo", "messages": [
            {"role": "user", "content": "x"}], "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": schema}}]}
    if dialect == "responses":
        return "/v1/responses", {"model": "dragoman/echo", "input": "x", "tools": [
            {"type": "function", "name": "get_weather", "parameters": schema}]}
    return "/v1/messages", {"model": "dragoman/echo", "max_tokens": 5, "messages": [
        {"role": "user", "content": "x"}], "tools": [
        {"name": "get_weather", "input_schema": schema}]}


def _dialect_error(http: httpx.Client, dialect: str, path: str, body: dict) -> dict:
    if dialect == "messages":
        err = anthropic_error(http.post(path, headers=ANTHROPIC, json=body), 400)
    else:
        err = openai_error(http.post(path, headers=AUTH, json=body), 400)
    assert err["type"] == "invalid_request_error"
    return err


@pytest.mark.parametrize("dialect", ["chat", "responses", "messages"])
def test_garbage_base64_image_is_refused_in_every_dialect(http: httpx.Client,
                                                          dialect: str) -> None:
    err = _dialect_error(http, dialect, *_image_request(dialect, GARBAGE_B64))
    assert "base64" in err["message"] and GARBAGE_B64 not in err["message"]
    if dialect != "messages":
        assert err["code"] == "invalid_image"
    # the same image, valid (unpadded too), is served
    good = "iVBORw0KGgo" + "A" * 97
    path, body = _image_request(dialect, good)
    headers = ANTHROPIC if dialect == "messages" else AUTH
    assert http.post(path, headers=headers, json=body).status_code == 200


@pytest.mark.parametrize("dialect", ["chat", "responses", "messages"])
@pytest.mark.parametrize(("schema", "hint"), [
    (BAD_SCHEMA, "strnig"),
    ({"type": "object", "required": "city"}, "required"),
    ({"type": "object", "properties": ["city"]}, "properties"),
    ({"type": "string"}, "object"),
], ids=["bad-type", "required-not-array", "properties-not-object", "not-an-object"])
def test_tool_with_an_invalid_json_schema_is_refused_in_every_dialect(
        http: httpx.Client, dialect: str, schema: dict, hint: str) -> None:
    err = _dialect_error(http, dialect, *_tool_request(dialect, schema))
    assert "Invalid schema for function 'get_weather'" in err["message"]
    assert hint in err["message"]
    if dialect != "messages":
        assert err["code"] == "invalid_function_parameters"
    # a valid schema (draft-07 as Claude Code's tools declare it) is served
    ok = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
          "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}
    path, body = _tool_request(dialect, ok)
    headers = ANTHROPIC if dialect == "messages" else AUTH
    assert http.post(path, headers=headers, json=body).status_code == 200
