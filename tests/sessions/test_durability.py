"""Sessions outlive processes and hosts: ``kill -9`` mid-traffic loses no acknowledged turn,
and two gateway processes on one database continue each other's conversations."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from dragoman.sessions import StoreSettings, open_store
from tests.fakes.upstream import OPENAI_KEY, TEXT, FakeUpstream
from tests.sessions.conftest import sessions_section, settings_for
from tests.sessions.procs import GatewayProcess

KEY = "sk-durable"
TENANT = "key-" + hashlib.sha256(KEY.encode()).hexdigest()[:12]


def _config(settings: StoreSettings, fake: FakeUpstream | None = None) -> dict[str, Any]:
    models: list[dict[str, Any]] = [{"name": "dragoman/echo", "provider": "echo"}]
    if fake is not None:
        models.append({"name": "held-chat", "provider": "openai", "model": "gpt-4o-mini",
                       "base_url": fake.url + "/v1", "api_key": OPENAI_KEY,
                       "hold_history": True})
    return {"server": {"api_keys": [KEY]}, "models": models, "sessions": sessions_section(settings)}


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreSettings:
    return settings_for(backend, tmp_path, request)


class Acked:
    """What the clients were told was complete: (response id, its answer, its input)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, str]] = []  # id, answer, input, thread key
        self.cut = 0
        self.lock = threading.Lock()


def _client_loop(url: str, n: int, acked: Acked, stop: threading.Event) -> None:
    key = f"kill-thread-{n}"
    prev: str | None = None
    i = 0
    with httpx.Client(base_url=url, timeout=10,
                      headers={"authorization": f"Bearer {KEY}",
                               "x-dragoman-thread-key": key}) as http:
        while not stop.is_set():
            text = f"c{n}-t{i}"
            body: dict[str, Any] = {"model": "dragoman/echo", "input": f"::reply {text}",
                                    "stream": i % 2 == 1}
            if prev:
                body["previous_response_id"] = prev
            try:
                if body["stream"]:
                    rid = None
                    with http.stream("POST", "/v1/responses", json=body) as res:
                        for line in res.iter_lines():
                            if line.startswith("data: "):
                                ev = json.loads(line[6:])
                                if ev["type"] == "response.completed":
                                    rid = ev["response"]["id"]
                    if rid is None:
                        return
                else:
                    res = http.post("/v1/responses", json=body)
                    if res.status_code != 200:
                        return
                    rid = res.json()["id"]
            except httpx.HTTPError:
                with acked.lock:
                    acked.cut += 1  # the gateway was killed under this request
                return
            with acked.lock:
                acked.items.append((rid, text, f"::reply {text}", key))
            prev = rid
            i += 1


def test_kill_9_mid_traffic_keeps_every_acknowledged_turn(settings: StoreSettings,
                                                          tmp_path: Path) -> None:
    acked = Acked()
    stop = threading.Event()
    gw = GatewayProcess(_config(settings), tmp_path, workers=2, name="victim")
    clients = [threading.Thread(target=_client_loop, args=(gw.url, n, acked, stop))
               for n in range(4)]
    try:
        for c in clients:
            c.start()
        deadline = time.monotonic() + 20
        while len(acked.items) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        gw.kill9()  # while the clients are still sending
    finally:
        stop.set()
        for c in clients:
            c.join(15)
        gw.stop()
    assert len(acked.items) >= 40 and acked.cut >= 1
    with GatewayProcess(_config(settings), tmp_path, name="restarted") as again:
        client = openai.OpenAI(base_url=again.url + "/v1", api_key=KEY, max_retries=0)
        for rid, answer, _, _ in acked.items:
            assert client.responses.retrieve(rid).output_text == answer
        # Every chain continues from its last acknowledged turn.
        last: dict[str, str] = {}
        for rid, _, _, key in acked.items:
            last[key] = rid
        for rid in last.values():
            client.responses.create(model="dragoman/echo", input="::reply on",
                                    previous_response_id=rid)
    # And every acknowledged turn is in its thread, once.
    async def threads() -> dict[str, list[str]]:
        store = open_store(settings)
        try:
            return {key: [m.text() for m in (await store.thread_history(TENANT, key)).messages]
                    for key in {k for _, _, _, k in acked.items}}
        finally:
            await store.aclose()

    history = asyncio.run(threads())
    for _, answer, prompt, key in acked.items:
        assert history[key].count(prompt) == 1 and history[key].count(answer) == 1


def test_two_gateways_share_one_database(settings: StoreSettings, tmp_path: Path) -> None:
    with FakeUpstream() as fake, \
            GatewayProcess(_config(settings, fake), tmp_path, name="one") as one, \
            GatewayProcess(_config(settings, fake), tmp_path, name="two") as two:
        c1 = openai.OpenAI(base_url=one.url + "/v1", api_key=KEY, max_retries=0)
        c2 = openai.OpenAI(base_url=two.url + "/v1", api_key=KEY, max_retries=0)
        # A response stored by one is readable from, and continued on, the other.
        r1 = c1.responses.create(model="dragoman/echo", input="::reply from one")
        assert c2.responses.retrieve(r1.id).output_text == "from one"
        r2 = c2.responses.create(model="dragoman/echo", input="::reply from two",
                                 previous_response_id=r1.id)
        items = c1.responses.input_items.list(r2.id)
        assert [it.content[0].text for it in items.data] == [  # type: ignore[union-attr]
            "::reply from two"]
        assert c1.responses.retrieve(r2.id).previous_response_id == r1.id
        # A thread started on one continues on the other (the model holds the history).
        hdr = {"x-dragoman-thread-key": f"shared-{settings.backend}"}
        c1.chat.completions.create(model="held-chat", extra_headers=hdr,
                                   messages=[{"role": "user", "content": "on one"}])
        c2.chat.completions.create(model="held-chat", extra_headers=hdr,
                                   messages=[{"role": "user", "content": "on two"}])
        sent = fake.find("on two")[-1].body["messages"]
        assert [m["content"] for m in sent] == ["on one", TEXT, "on two"]


def _streamed_item_ids(url: str, body: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """(response id, ids of the items as the stream added them, ids in its terminal
    response) of one streamed ``POST /v1/responses``, read off the SSE wire."""
    added: list[str] = []
    final: dict[str, Any] = {}
    with httpx.stream("POST", url + "/v1/responses", json={**body, "stream": True},
                      headers={"authorization": f"Bearer {KEY}"}, timeout=20) as res:
        assert res.status_code == 200
        for line in res.iter_lines():
            if line.startswith("data: "):
                ev = json.loads(line[6:])
                if ev["type"] == "response.output_item.added":
                    added.append(ev["item"]["id"])
                elif ev["type"] == "response.completed":
                    final = ev["response"]
    return final["id"], added, [o["id"] for o in final["output"]]


def test_stored_item_ids_are_stable_across_gets_restarts_and_hosts(
        settings: StoreSettings, tmp_path: Path) -> None:
    # Item ids are the response's own (derived from its id and their position), so the
    # stream, every GET, every input_items listing, another gateway process on the same
    # database and a restarted one all name each item alike.
    prompt = "::think plan it\n::reply done\n::tool get_weather {\"city\": \"Paris\"}"
    tool = {"type": "function", "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    inputs = [{"role": "user", "content": f"earlier {i}"} for i in range(3)]
    inputs.append({"role": "user", "content": prompt})
    with GatewayProcess(_config(settings), tmp_path, name="one") as one, \
            GatewayProcess(_config(settings), tmp_path, name="two") as two:
        rid, added, streamed = _streamed_item_ids(
            one.url, {"model": "dragoman/echo", "input": inputs, "tools": [tool]})
        assert added == streamed and len(streamed) == 3
        assert [i[:3] for i in streamed] == ["rs_", "msg", "fc_"]
        c1 = openai.OpenAI(base_url=one.url + "/v1", api_key=KEY, max_retries=0)
        c2 = openai.OpenAI(base_url=two.url + "/v1", api_key=KEY, max_retries=0)
        listed = [it.id for it in c1.responses.input_items.list(rid, order="asc").data]
        assert len(listed) == 4 and len(set(listed + streamed)) == 7
        for client in (c1, c1, c2, c2):
            assert [o.id for o in client.responses.retrieve(rid).output] == streamed
            assert [it.id for it in client.responses.input_items.list(
                rid, order="asc").data] == listed
        # Non-streamed and created on the other process: the same holds.
        whole = c2.responses.create(model="dragoman/echo", input=prompt, tools=[tool])  # type: ignore[list-item]
        assert [o.id for o in c1.responses.retrieve(whole.id).output] == [
            o.id for o in whole.output]
    with GatewayProcess(_config(settings), tmp_path, name="restarted") as again:
        c3 = openai.OpenAI(base_url=again.url + "/v1", api_key=KEY, max_retries=0)
        assert [o.id for o in c3.responses.retrieve(rid).output] == streamed
        assert [it.id for it in c3.responses.input_items.list(rid, order="asc").data] == listed
        assert [o.id for o in c3.responses.retrieve(whole.id).output] == [
            o.id for o in whole.output]
