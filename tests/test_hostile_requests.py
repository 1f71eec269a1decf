"""Hostile and odd requests against the real ``dragoman serve`` over real sockets: a body
nested too deep is a 400 in the client's dialect on every endpoint; an HTTP/1.0 client's
stream is never chunked (every dialect, both ASGI servers); a repeated credential or
thread-key header is refused, never resolved by picking one."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway_proc import log_path, run_gateway

KEY = "sk-hostile"
CONFIG = {
    "server": {"api_keys": [KEY]},
    "models": [{"name": "e", "provider": "echo"}],
}
SERVERS = ["uvicorn", "granian"]


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("hostile")
    with run_gateway(CONFIG, tmp, server=request.param) as base:
        yield base, tmp


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("hostile-uvicorn")
    with run_gateway(CONFIG, tmp) as base:
        yield base, tmp


MESSAGES = [{"role": "user", "content": "hi"}]
#: (path, body, the error envelope of the endpoint's API family)
ENDPOINTS = [
    ("/v1/chat/completions", {"model": "e", "messages": MESSAGES}, "openai"),
    ("/v1/responses", {"model": "e", "input": "hi"}, "openai"),
    ("/v1/messages", {"model": "e", "max_tokens": 5, "messages": MESSAGES}, "anthropic"),
    ("/v1/messages/count_tokens", {"model": "e", "messages": MESSAGES}, "anthropic"),
]


def error_of(family: str, r: httpx.Response) -> dict[str, object]:
    body = r.json()
    if family == "anthropic":
        assert body["type"] == "error"
    err = body["error"]
    assert isinstance(err, dict)
    return err


@pytest.mark.parametrize(("path", "body", "family"), ENDPOINTS)
def test_a_body_nested_990_deep_is_a_400_in_the_dialect(
        gateway: tuple[str, Path], path: str, body: dict[str, object], family: str) -> None:
    base, tmp = gateway
    raw = json.dumps(body)[:-1] + ', "metadata": ' + "[" * 990 + "]" * 990 + "}"
    assert len(raw) < 2200
    r = httpx.post(base + path, content=raw, timeout=30,
                   headers={"authorization": f"Bearer {KEY}",
                            "content-type": "application/json",
                            "anthropic-version": "2023-06-01"})
    assert r.status_code == 400, r.text
    err = error_of(family, r)
    assert err["type"] == "invalid_request_error"
    assert err["message"] == ("The JSON body of your request nests deeper than 128 levels "
                              "(or its brackets do not balance).")
    assert "Traceback" not in log_path(tmp, base).read_text()


def test_a_body_nested_to_the_limit_is_served(gateway: tuple[str, Path]) -> None:
    base, _ = gateway
    body = {"model": "e", "messages": MESSAGES, "metadata": {"x": "[" * 500}}
    raw = json.dumps(body)[:-1] + ', "extra_deep": ' + "[" * 126 + "]" * 126 + "}"
    r = httpx.post(base + "/v1/chat/completions", content=raw, timeout=30,
                   headers={"authorization": f"Bearer {KEY}"})
    # 128 levels in all: the object itself and its member; brackets in strings don't count
    assert r.status_code == 200, r.text


def http10(base: str, path: str, body: dict[str, object]) -> tuple[bytes, bytes, bool]:
    """POST over HTTP/1.0; the head, the body, and whether the server closed after it."""
    host, port = base.removeprefix("http://").split(":")
    raw = json.dumps(body).encode()
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST %s HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                  b"Content-Type: application/json\r\nanthropic-version: 2023-06-01\r\n"
                  b"Content-Length: %d\r\n\r\n" % (path.encode(), KEY.encode(), len(raw)) + raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        closed = True  # recv returned b"": the server closed the connection
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.lower(), rest, closed


#: (path, a streaming request, how the last event of a whole stream starts)
STREAMS = [
    ("/v1/chat/completions", {"model": "e", "stream": True, "messages": MESSAGES},
     b"data: [DONE]"),
    ("/v1/responses", {"model": "e", "stream": True, "input": "hi"},
     b"event: response.completed"),
    ("/v1/messages", {"model": "e", "stream": True, "max_tokens": 5, "messages": MESSAGES},
     b"event: message_stop"),
]


@pytest.mark.parametrize(("path", "body", "end"), STREAMS)
def test_an_http10_stream_is_close_delimited_not_chunked(
        served: tuple[str, Path], path: str, body: dict[str, object], end: bytes) -> None:
    head, rest, closed = http10(served[0], path, body)
    assert head.startswith(b"http/1.") and b" 200 " in head.split(b"\r\n")[0]
    assert b"transfer-encoding" not in head and b"content-length" not in head
    assert b"text/event-stream" in head
    # unframed: the SSE bytes themselves, the stream's end, then the connection closes
    assert rest.startswith((b"data: ", b"event: ")), rest[:80]
    last_event = rest.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    assert last_event.startswith(end), rest[-200:]
    assert closed


def test_an_http10_whole_answer_keeps_its_content_length(served: tuple[str, Path]) -> None:
    head, rest, _ = http10(served[0], "/v1/chat/completions",
                           {"model": "e", "messages": MESSAGES})
    assert b"content-length: %d" % len(rest) in head and b"transfer-encoding" not in head
    assert json.loads(rest)["choices"][0]["message"]["content"] == "hi"


CHAT = ("/v1/chat/completions", {"model": "e", "messages": MESSAGES})
ANTHROPIC = ("/v1/messages", {"model": "e", "max_tokens": 5, "messages": MESSAGES})


@pytest.mark.parametrize("headers", [
    [("authorization", "Bearer junk"), ("authorization", f"Bearer {KEY}")],
    [("authorization", f"Bearer {KEY}"), ("authorization", "Bearer junk")],
    [("authorization", f"Bearer {KEY}"), ("authorization", f"Bearer {KEY}")],
    [("x-api-key", "junk"), ("x-api-key", KEY)],
], ids=["junk-then-valid", "valid-then-junk", "same-twice", "x-api-key"])
@pytest.mark.parametrize(("endpoint", "family"), [(CHAT, "openai"), (ANTHROPIC, "anthropic")])
def test_a_repeated_credential_header_is_refused(
        gateway: tuple[str, Path], headers: list[tuple[str, str]],
        endpoint: tuple[str, dict[str, object]], family: str) -> None:
    path, body = endpoint
    r = httpx.post(gateway[0] + path, json=body, headers=headers, timeout=30)
    assert r.status_code == 400, r.text
    err = error_of(family, r)
    name = headers[0][0]
    assert err["message"] == (f"The request carries more than one '{name}' header: send "
                              "exactly one.")
    assert err["type"] == "invalid_request_error"
    assert KEY not in r.text


def test_a_repeated_credential_header_is_refused_by_an_open_gateway_too(
        tmp_path: Path) -> None:
    with run_gateway({"models": CONFIG["models"]}, tmp_path) as base:  # no keys: anyone
        r = httpx.post(base + CHAT[0], json=CHAT[1], timeout=30,
                       headers=[("x-api-key", "a"), ("x-api-key", "b")])
        assert r.status_code == 400, r.text
        assert error_of("openai", r)["message"] == (
            "The request carries more than one 'x-api-key' header: send exactly one.")
        assert httpx.post(base + CHAT[0], json=CHAT[1], timeout=30,
                          headers=[("x-api-key", "a")]).status_code == 200


def test_one_of_each_credential_header_is_served(gateway: tuple[str, Path]) -> None:
    r = httpx.post(gateway[0] + CHAT[0], json=CHAT[1], timeout=30,
                   headers=[("authorization", f"Bearer {KEY}"), ("x-api-key", KEY)])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("name", ["x-dragoman-thread-key", "x-session-id", "session_id"])
def test_a_repeated_thread_key_header_is_refused(gateway: tuple[str, Path], name: str) -> None:
    r = httpx.post(gateway[0] + CHAT[0], json=CHAT[1], timeout=30,
                   headers=[("authorization", f"Bearer {KEY}"), (name, "t-1"), (name, "t-2")])
    assert r.status_code == 400, r.text
    err = error_of("openai", r)
    assert err["message"] == f"The request carries more than one {name} header: send exactly one."
    assert err["param"] == name
