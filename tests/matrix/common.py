"""The end-to-end matrix every provider runs: each ingress dialect, driven by its official
SDK against a real ``dragoman serve`` process, streaming and not, for a text turn and a
two-turn tool round trip. The provider tests (``test_<provider>.py``) supply the gateway,
the fake upstream and what that vendor's wire must show."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai

from tests.cross_dialect.clients import (
    CLIENT_KEY,
    TOOL_RESULTS,
    Turn,
    call,
    prompt,
    tool_results,
)
from tests.fakes.upstream import FOLLOWUP, PREAMBLE, TEXT, FakeUpstream, Recorded
from tests.gateway_proc import run_gateway

INGRESS = ("chat", "responses", "messages")
MODES = ("json", "stream")
END_TURN = {"chat": "stop", "responses": "completed", "messages": "end_turn"}
TOOL_STOP = {"chat": "tool_calls", "responses": "completed", "messages": "tool_use"}


@dataclass
class Clients:
    base: str
    oai: openai.OpenAI
    ant: anthropic.Anthropic
    log_dir: Path

    def logs(self) -> str:
        """Everything the gateway process wrote so far."""
        return "".join(p.read_text(errors="replace")
                       for p in sorted(self.log_dir.glob("dragoman-*.log")))


@contextmanager
def gateway(config: dict[str, Any], tmp: Path,
            env: dict[str, str] | None = None) -> Iterator[Clients]:
    with run_gateway(config, tmp, env=env) as base:
        oai = openai.OpenAI(base_url=base + "/v1", api_key=CLIENT_KEY, max_retries=0,
                            timeout=30)
        ant = anthropic.Anthropic(base_url=base, api_key=CLIENT_KEY, max_retries=0, timeout=30)
        try:
            yield Clients(base, oai, ant, tmp)
        finally:
            oai.close()
            ant.close()


def _kw(ingress: str) -> dict[str, Any]:
    # Chat and Responses clients send no output cap; Anthropic clients must.
    return {"max_tokens": 300} if ingress == "messages" else {}


def text_cell(c: Clients, fake: FakeUpstream, ingress: str, model: str,
              mode: str) -> tuple[Turn, Recorded]:
    user, nonce = prompt("text")
    t = call(c.oai, c.ant, ingress, model, mode, user, **_kw(ingress))
    assert t.text == TEXT
    assert t.stop == END_TURN[ingress]
    return t, fake.one(nonce)


def tools_cell(c: Clients, fake: FakeUpstream, ingress: str, model: str, mode: str,
               ids: tuple[str, ...] | None = None,
               ) -> tuple[Turn, Turn, list[Recorded], str]:
    """Turn 1 gets get_weather + get_time (with ``ids`` when the vendor mints fixed ones);
    turn 2 sends both results back in the client's dialect and gets the follow-up text."""
    user, nonce = prompt("tools")
    t1 = call(c.oai, c.ant, ingress, model, mode, user, tools=True, **_kw(ingress))
    assert t1.text == PREAMBLE
    assert [(name, args) for _, name, args in t1.calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {})]
    if ids is not None:
        assert [cid for cid, _, _ in t1.calls] == list(ids)
    assert len({cid for cid, _, _ in t1.calls}) == 2
    assert t1.stop == TOOL_STOP[ingress]
    history = [{"role": "user", "content": user}, *t1.history,
               *tool_results(ingress, t1.calls)]
    t2 = call(c.oai, c.ant, ingress, model, mode, "", tools=True, history=history,
              **_kw(ingress))
    assert t2.text == FOLLOWUP and t2.calls == []
    assert t2.stop == END_TURN[ingress]
    recs = fake.find(nonce)
    assert len(recs) == 2, [r.path for r in recs]
    return t1, t2, recs, user


def expected_turns(user: str, calls: list[tuple[str, str, Any]],
                   map_id: Callable[[str], str] = lambda i: i) -> list[tuple[str, list[Any]]]:
    """What a Chat/Responses-shaped upstream must have received on turn 2."""
    return [
        ("user", [("text", user)]),
        ("assistant", [("text", PREAMBLE),
                       *(("call", map_id(cid), name, args) for cid, name, args in calls)]),
        ("tool", [("result", map_id(calls[0][0]), TOOL_RESULTS[0]),
                  ("result", map_id(calls[1][0]), TOOL_RESULTS[1])]),
    ]
