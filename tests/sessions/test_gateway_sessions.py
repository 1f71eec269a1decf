"""Sessions through a real ``dragoman serve`` process, on SQLite and on PostgreSQL: stored
Responses (every provider), thread keys, history-holding models, isolation, 409s."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from dragoman.sessions import SessionStore, StoreSettings, open_store
from tests.fakes.upstream import ANTHROPIC_KEY, OPENAI_KEY, TEXT, FakeUpstream
from tests.sessions.conftest import sessions_section, settings_for
from tests.sessions.helpers import count_rows
from tests.sessions.procs import GatewayProcess

KEY_A, KEY_B = "sk-tenant-a", "sk-tenant-b"
TENANT_A = "key-" + hashlib.sha256(KEY_A.encode()).hexdigest()[:12]
UPSTREAM_MODELS = ["chat-up", "resp-up", "claude-up"]


def _config(fake: FakeUpstream, sessions: dict[str, Any]) -> dict[str, Any]:
    oai = {"base_url": fake.url + "/v1", "api_key": OPENAI_KEY}
    return {
        "server": {"api_keys": [KEY_A, KEY_B]},
        "models": [
            {"name": "dragoman/echo", "provider": "echo"},
            {"name": "held-echo", "provider": "echo", "hold_history": True},
            {"name": "chat-up", "provider": "openai", "model": "gpt-4o-mini", **oai},
            {"name": "resp-up", "provider": "openai_responses", "model": "gpt-5", **oai},
            {"name": "claude-up", "provider": "anthropic", "model": "claude-sonnet-4-5",
             "base_url": fake.url, "api_key": ANTHROPIC_KEY},
            {"name": "held-chat", "provider": "openai", "model": "gpt-4o-mini",
             "hold_history": True, **oai},
        ],
        "sessions": {**sessions, "lock_wait": "0.3s"},
    }


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


class Served:
    def __init__(self, url: str, settings: StoreSettings) -> None:
        self.url = url
        self.settings = settings

    def oai(self, key: str = KEY_A, **headers: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0,
                             timeout=30, default_headers=headers or None)

    def ant(self, key: str = KEY_A, **headers: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, timeout=30,
                                   default_headers=headers or None)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, upstream: FakeUpstream,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(f"sessions-{request.param}")
    settings = settings_for(str(request.param), tmp, request)
    with GatewayProcess(_config(upstream, sessions_section(settings)), tmp) as gw:
        yield Served(gw.url, settings)


@pytest.fixture
async def inspect(served: Served) -> AsyncIterator[SessionStore]:
    """The gateway's own database, opened by the test (another process)."""
    store = open_store(served.settings)
    try:
        yield store
    finally:
        await store.aclose()


def _nonce(request: pytest.FixtureRequest) -> str:
    return hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]


# --- Responses state ------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["dragoman/echo", *UPSTREAM_MODELS])
def test_previous_response_id_chain_on_every_provider(served: Served, upstream: FakeUpstream,
                                                      model: str,
                                                      request: pytest.FixtureRequest) -> None:
    nonce = _nonce(request)
    client = served.oai()
    prev = None
    for i in range(3):
        prompt = f"turn {i} {nonce}" if model != "dragoman/echo" else f"::reply answer {i}"
        if i == 1:  # streamed turns are stored too
            with client.responses.stream(model=model, input=prompt,
                                         previous_response_id=prev) as s:
                r = s.get_final_response()
        else:
            r = client.responses.create(model=model, input=prompt, previous_response_id=prev)
        assert r.previous_response_id == prev
        prev = r.id
    if model == "dragoman/echo":
        assert client.responses.retrieve(prev).output_text == "answer 2"
        return
    # The upstream got the whole conversation, rebuilt by the gateway, on the last turn.
    last = upstream.find(f"turn 2 {nonce}")[-1]
    sent = last.json_text()
    for i in range(3):
        assert sent.count(f"turn {i} {nonce}") == 1
    assert sent.count(TEXT) == 2  # the two earlier answers, once each


def test_get_delete_and_paginated_input_items(served: Served) -> None:
    client = served.oai()
    items = [{"role": "user", "content": f"item {i}"} for i in range(5)]
    r = client.responses.create(model="dragoman/echo", input=items)  # type: ignore[arg-type]
    got = client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text == "item 4"
    seen: list[str] = []
    after = None
    while True:
        page = client.responses.input_items.list(r.id, limit=2, order="asc",
                                                 **({"after": after} if after else {}))
        seen += [it.content[0].text for it in page.data]  # type: ignore[union-attr]
        if not page.has_more:
            break
        after = page.last_id
    assert seen == [f"item {i}" for i in range(5)]
    desc = client.responses.input_items.list(r.id, limit=100)
    assert [it.content[0].text for it in desc.data] == seen[::-1]  # type: ignore[union-attr]
    raw = client.responses.with_raw_response.delete(r.id)
    assert raw.http_response.json() == {"id": r.id, "object": "response.deleted",
                                        "deleted": True}
    for call in (lambda: client.responses.retrieve(r.id),
                 lambda: client.responses.delete(r.id),
                 lambda: client.responses.input_items.list(r.id)):
        with pytest.raises(openai.NotFoundError):
            call()


async def test_store_false_stores_nothing(served: Served, inspect: SessionStore) -> None:
    client = served.oai()
    before = await count_rows(inspect, "responses")
    r = client.responses.create(model="dragoman/echo", input="::reply not kept", store=False)
    with client.responses.stream(model="dragoman/echo", input="x", store=False) as s:
        streamed = s.get_final_response()
    for rid in (r.id, streamed.id):
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(rid)
        with pytest.raises(openai.NotFoundError) as e:
            client.responses.create(model="dragoman/echo", input="x", previous_response_id=rid)
        assert e.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    assert await count_rows(inspect, "responses") == before


def test_unknown_previous_response_is_a_404_in_the_responses_envelope(served: Served) -> None:
    res = httpx.post(served.url + "/v1/responses", headers={"authorization": f"Bearer {KEY_A}"},
                     json={"model": "dragoman/echo", "input": "x",
                           "previous_response_id": "resp_doesnotexist"})
    assert res.status_code == 404
    err = res.json()["error"]
    assert err["code"] == "previous_response_not_found"
    assert err["param"] == "previous_response_id"
    assert err["type"] == "invalid_request_error" and "resp_doesnotexist" in err["message"]


def test_tenants_never_see_each_other(served: Served) -> None:
    a, b = served.oai(KEY_A), served.oai(KEY_B)
    r = a.responses.create(model="dragoman/echo", input="::reply for a only")
    for call in (lambda: b.responses.retrieve(r.id), lambda: b.responses.delete(r.id),
                 lambda: b.responses.input_items.list(r.id),
                 lambda: b.responses.create(model="dragoman/echo", input="x",
                                            previous_response_id=r.id)):
        with pytest.raises(openai.NotFoundError):  # 404, not 403: the id does not leak
            call()
    assert a.responses.retrieve(r.id).output_text == "for a only"
    follow = a.responses.create(model="dragoman/echo", input="::reply again",
                                previous_response_id=r.id)
    assert follow.previous_response_id == r.id


def test_a_missing_and_another_tenants_response_are_the_same_404(served: Served) -> None:
    # OpenAI's own answer for a response it does not have (404, invalid_request_error, no
    # param, no code), identical but for the id whether it never existed or is not yours.
    theirs = served.oai(KEY_B).responses.create(model="dragoman/echo", input="::reply b's").id
    gone = served.oai(KEY_A).responses.create(model="dragoman/echo", input="::reply gone").id
    served.oai(KEY_A).responses.delete(gone)
    unknown = "resp_" + hashlib.sha256(theirs.encode()).hexdigest()[:len(theirs) - 5]
    auth = {"authorization": f"Bearer {KEY_A}"}
    with httpx.Client(base_url=served.url, headers=auth, timeout=10) as http:
        for method, path in [("GET", "/v1/responses/{}"), ("DELETE", "/v1/responses/{}"),
                             ("GET", "/v1/responses/{}/input_items")]:
            seen = []
            for rid in (theirs, gone, unknown):
                res = http.request(method, path.format(rid))
                assert res.status_code == 404, (method, path, res.text)
                seen.append(res.text.replace(rid, "<id>"))
            assert seen[0] == seen[1] == seen[2], (method, path, seen)
            assert json.loads(seen[0]) == {"error": {
                "message": "Response with id '<id>' not found.",
                "type": "invalid_request_error", "param": None, "code": None}}
    assert served.oai(KEY_B).responses.retrieve(theirs).output_text == "b's"


# --- thread keys ----------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["session-id", "session_id", "x-session-id",
                                    "x-dragoman-thread-key"])
async def test_a_thread_key_records_one_thread_without_doubling(
        served: Served, inspect: SessionStore, header: str,
        request: pytest.FixtureRequest) -> None:
    key = f"thread-{_nonce(request)}"
    client = served.oai(**{header: key})
    msgs: list[Any] = [{"role": "system", "content": "sys"}]
    for i in range(3):  # a client that resends the whole history every turn
        msgs.append({"role": "user", "content": f"::reply r{i}"})
        c = client.chat.completions.create(model="dragoman/echo", messages=msgs)
        msgs.append({"role": "assistant", "content": c.choices[0].message.content})
    view = await inspect.thread_history(TENANT_A, key)
    assert [m.text() for m in view.messages] == [
        "sys", "::reply r0", "r0", "::reply r1", "r1", "::reply r2", "r2"]


async def test_claude_code_session_header_on_messages(served: Served, inspect: SessionStore,
                                                      request: pytest.FixtureRequest) -> None:
    key = f"cc-{_nonce(request)}"
    client = served.ant(**{"X-Claude-Code-Session-Id": key})
    msgs: list[Any] = []
    for i in range(2):
        msgs.append({"role": "user", "content": f"::reply c{i}"})
        with client.messages.stream(model="dragoman/echo", max_tokens=100,
                                    messages=msgs) as s:
            text = s.get_final_text()
        msgs.append({"role": "assistant", "content": text})
    view = await inspect.thread_history(TENANT_A, key)
    assert [m.text() for m in view.messages] == ["::reply c0", "c0", "::reply c1", "c1"]


def test_a_history_holding_model_needs_only_the_newest_message(
        served: Served, upstream: FakeUpstream, request: pytest.FixtureRequest) -> None:
    nonce = _nonce(request)
    client = served.oai(**{"x-dragoman-thread-key": f"held-{nonce}"})
    client.chat.completions.create(model="held-chat", messages=[
        {"role": "user", "content": f"first {nonce}"}])
    # Only the new message: the gateway supplies the rest.
    client.chat.completions.create(model="held-chat", messages=[
        {"role": "user", "content": f"second {nonce}"}])
    sent = upstream.find(f"second {nonce}")[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("user", f"first {nonce}"), ("assistant", TEXT), ("user", f"second {nonce}")]
    # A client that resends everything is not doubled.
    client.chat.completions.create(model="held-chat", messages=[
        {"role": "user", "content": f"first {nonce}"}, {"role": "assistant", "content": TEXT},
        {"role": "user", "content": f"second {nonce}"}, {"role": "assistant", "content": TEXT},
        {"role": "user", "content": f"third {nonce}"}])
    sent = upstream.find(f"third {nonce}")[-1].body["messages"]
    assert [m["content"] for m in sent] == [f"first {nonce}", TEXT, f"second {nonce}", TEXT,
                                            f"third {nonce}"]


def test_a_busy_held_thread_answers_409_in_the_clients_dialect(
        served: Served, request: pytest.FixtureRequest) -> None:
    key = f"busy-{_nonce(request)}"
    slow_started = threading.Event()
    result: dict[str, Any] = {}

    def slow() -> None:
        c = served.oai(**{"x-dragoman-thread-key": key})
        with c.chat.completions.create(model="held-echo", stream=True, messages=[
                {"role": "user", "content": "::delay 800\none two three four five six"}]) as s:
            for chunk in s:
                slow_started.set()
                result.setdefault("text", "")
                result["text"] += chunk.choices[0].delta.content or "" if chunk.choices else ""
        result["done"] = True

    t = threading.Thread(target=slow)
    t.start()
    assert slow_started.wait(10)
    with pytest.raises(openai.ConflictError) as e:
        served.oai(**{"x-dragoman-thread-key": key}).chat.completions.create(
            model="held-echo", messages=[{"role": "user", "content": "meanwhile"}])
    assert e.value.status_code == 409 and "busy" in str(e.value)
    with pytest.raises(anthropic.ConflictError):
        served.ant(**{"x-session-id": key}).messages.create(
            model="held-echo", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    # Claude Code and Codex send whole conversations and run several at once on one
    # session id: they never wait for the thread.
    quick = served.ant(**{"x-claude-code-session-id": key}).messages.create(
        model="held-echo", max_tokens=50, messages=[{"role": "user", "content": "::reply ok"}])
    assert quick.content[0].text == "ok"  # type: ignore[union-attr]
    assert not result.get("done")
    t.join(20)
    assert result["text"].split() == ["one", "two", "three", "four", "five", "six"]
    # Once it finished, the thread takes the next turn, which sees the first one.
    after = served.oai(**{"x-dragoman-thread-key": key}).chat.completions.create(
        model="held-echo", messages=[{"role": "user", "content": "::reply next"}])
    assert after.choices[0].message.content == "next"


def test_a_resending_clients_other_conversations_are_not_merged_into_the_thread(
        served: Served, upstream: FakeUpstream, request: pytest.FixtureRequest) -> None:
    nonce = _nonce(request)
    client = served.ant(**{"x-claude-code-session-id": f"cc-held-{nonce}"})
    oai = served.oai(**{"x-claude-code-session-id": f"cc-held-{nonce}"})
    oai.chat.completions.create(model="held-chat", messages=[
        {"role": "user", "content": f"main {nonce}"}])
    # A sub-agent (or title) call on the same session id is a conversation of its own.
    client.messages.create(model="held-chat", max_tokens=50, messages=[
        {"role": "user", "content": f"sub task {nonce}"}])
    sent = upstream.find(f"sub task {nonce}")[-1].body["messages"]
    assert [m["content"] for m in sent] == [f"sub task {nonce}"]
    # The main conversation, resent whole, continues without doubling.
    oai.chat.completions.create(model="held-chat", messages=[
        {"role": "user", "content": f"main {nonce}"}, {"role": "assistant", "content": TEXT},
        {"role": "user", "content": f"main again {nonce}"}])
    sent = upstream.find(f"main again {nonce}")[-1].body["messages"]
    assert [m["content"] for m in sent] == [f"main {nonce}", TEXT, f"main again {nonce}"]


def test_an_invalid_thread_key_is_a_400(served: Served) -> None:
    res = httpx.post(served.url + "/v1/chat/completions",
                     headers={"authorization": f"Bearer {KEY_A}", "session-id": "x" * 300},
                     json={"model": "dragoman/echo", "messages": [{"role": "user",
                                                                  "content": "x"}]})
    assert res.status_code == 400
    assert res.json()["error"]["param"] == "session-id"


async def test_storage_of_a_long_chain_is_linear(served: Served, inspect: SessionStore,
                                                 tmp_path: Path) -> None:
    client = served.oai()
    rows_before = await count_rows(inspect, "messages")
    prev = None
    for i in range(20):
        prev = client.responses.create(model="dragoman/echo", input=f"::reply a{i}",
                                       previous_response_id=prev).id
    assert await count_rows(inspect, "messages") - rows_before == 40
