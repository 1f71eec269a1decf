"""The parts of the wire issue 18 gave a neutral form, across every client and upstream pair,
through the official SDKs (their parsers and stream helpers must accept what we send):
refusals, Responses message ``phase`` (several message items stay several), citations,
and Anthropic ``search_result`` / ``tool_reference`` blocks. What maps to what is in
docs/translation.md ("A complete neutral model")."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.complete_model import (
    ANTHROPIC_CITATION,
    CITE_AFTER,
    CITE_BEFORE,
    CITE_END,
    CITE_SPAN,
    CITE_START,
    CITE_TITLE,
    CITE_URL,
    CITED_ANSWER,
    COMMENTARY,
    FINAL,
    REFUSAL,
)
from tests.fakes.upstream import TEXT, FakeUpstream

from .clients import INGRESS, MODES, SYSTEM, UPSTREAMS, call, prompt, upstream_view

# --- what a client saw, read from the SDK objects (``Turn.raw``) ---------------------------


def chat_seen(raw: Any, mode: str) -> tuple[str, str, list[tuple[str, str, int, int]]]:
    """(content, refusal, url citations) of a Chat answer."""
    if mode == "stream":
        content = refusal = ""
        for c in raw:
            for ch in c.choices:
                content += ch.delta.content or ""
                refusal += ch.delta.refusal or ""
                assert "annotations" not in (ch.delta.model_extra or {})
        return content, refusal, []
    msg = raw.choices[0].message
    cites = [(a.url_citation.url, a.url_citation.title, a.url_citation.start_index,
              a.url_citation.end_index) for a in msg.annotations or []]
    return msg.content or "", msg.refusal or "", cites


def responses_final(raw: Any, mode: str) -> Any:
    return raw[-1].response if mode == "stream" else raw


def responses_messages(raw: Any, mode: str) -> list[tuple[str | None, list[tuple[Any, ...]]]]:
    """Each message item: (phase, [(part type, text, [(url, title, start, end)])])."""
    out = []
    for item in responses_final(raw, mode).output:
        assert item.type == "message", item.type
        parts: list[tuple[Any, ...]] = []
        for c in item.content:
            if c.type == "refusal":
                parts.append(("refusal", c.refusal, []))
            else:
                parts.append(("output_text", c.text, [
                    (a.url, a.title, a.start_index, a.end_index) for a in c.annotations
                    if a.type == "url_citation"]))
        out.append((item.phase, parts))
    return out


def messages_blocks(raw: Any, mode: str) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Each text block: (type, text, citations as dicts)."""
    if mode != "stream":
        return [(b.type, b.text, [c.model_dump() for c in b.citations or []])
                for b in raw.content]
    blocks: list[tuple[str, str, list[dict[str, Any]]]] = []
    for e in raw:
        if e.type == "content_block_start":
            blocks.append((e.content_block.type, "", []))
        elif e.type == "content_block_delta":
            ty, text, cites = blocks[e.index]
            if e.delta.type == "text_delta":
                blocks[e.index] = (ty, text + e.delta.text, cites)
            elif e.delta.type == "citations_delta":
                cites.append(e.delta.citation.model_dump())
    return blocks


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_refusal(ingress: str, up: str, mode: str, oai: openai.OpenAI,
                 ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    user, nonce = prompt("refusal")
    t = call(oai, ant, ingress, up, mode, user)
    upstream.one(nonce)
    # Anthropic says "refusal" only in its stop reason, after the text has streamed: a
    # streamed answer from it reaches OpenAI clients as text, a whole one as a refusal.
    streamed_as_text = up == "claude-up" and mode != "json"
    if ingress == "chat":
        content, refusal, _ = chat_seen(t.raw, mode)
        assert (content, refusal) == ((REFUSAL, "") if streamed_as_text else ("", REFUSAL))
        assert t.stop == "stop"
    elif ingress == "responses":
        final = responses_final(t.raw, mode)
        assert final.status == "completed"
        kind = "output_text" if streamed_as_text else "refusal"
        assert responses_messages(t.raw, mode) == [(None, [(kind, REFUSAL, [])])]
        if mode == "stream":
            name = "response.output_text.delta" if streamed_as_text else \
                "response.refusal.delta"
            assert "".join(e.delta for e in t.raw if e.type == name) == REFUSAL
            done = [e.refusal for e in t.raw if e.type == "response.refusal.done"]
            assert done == ([] if streamed_as_text else [REFUSAL])
    else:
        assert [(b[0], b[1]) for b in messages_blocks(t.raw, mode)] == [("text", REFUSAL)]
        assert t.stop == "refusal"


@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", ["chat", "responses"])
def test_refusal_replayed(ingress: str, up: str, oai: openai.OpenAI,
                          ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    """A refusal in the history reaches each upstream in its own form."""
    user, nonce = prompt("text")
    if ingress == "chat":
        history: list[Any] = [{"role": "user", "content": "Do something bad"},
                              {"role": "assistant", "content": None, "refusal": REFUSAL}]
    else:
        history = [{"role": "user", "content": "Do something bad"},
                   {"type": "message", "role": "assistant", "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "refusal", "refusal": REFUSAL}]}]
    t = call(oai, ant, ingress, up, "json", user, history=history)
    assert t.text == TEXT
    rec = upstream.one(nonce)
    body = rec.body
    if up == "chat-up":
        msg = next(m for m in body["messages"] if m["role"] == "assistant")
        assert msg.get("refusal") == REFUSAL and not msg.get("content")
    elif up == "resp-up":
        item = next(i for i in body["input"] if i.get("role") == "assistant")
        assert item["content"] == [{"type": "refusal", "refusal": REFUSAL}]
    else:
        _, turns = upstream_view(rec)
        assert ("assistant", [("text", REFUSAL)]) in turns


# --- Responses message phase -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_phase(ingress: str, up: str, mode: str, oai: openai.OpenAI,
               ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    """A Responses turn of a commentary message then a final answer stays two messages
    for Responses clients (each with its phase) and two text blocks for Anthropic ones;
    Chat has one content string. Other upstreams have no phase: one plain message."""
    user, nonce = prompt("phase")
    t = call(oai, ant, ingress, up, mode, user)
    upstream.one(nonce)
    two = up == "resp-up"
    if ingress == "responses":
        expected = [("commentary", [("output_text", COMMENTARY, [])]),
                    ("final_answer", [("output_text", FINAL, [])])] if two else \
            [(None, [("output_text", FINAL, [])])]
        assert responses_messages(t.raw, mode) == expected
        if mode == "stream":
            added = [e.item.phase for e in t.raw if e.type == "response.output_item.added"]
            assert added == ([e[0] for e in expected])
    elif ingress == "messages":
        assert [b[1] for b in messages_blocks(t.raw, mode)] == \
            ([COMMENTARY, FINAL] if two else [FINAL])
    else:
        assert t.text == (COMMENTARY + FINAL if two else FINAL)


@pytest.mark.parametrize("up", UPSTREAMS)
def test_phase_replayed(up: str, oai: openai.OpenAI, ant: anthropic.Anthropic,
                        upstream: FakeUpstream) -> None:
    """A Responses client replays the two messages: a Responses upstream gets both, each
    with its phase; Anthropic two text blocks of one assistant turn; Chat the text."""
    first, _ = prompt("phase")
    r = oai.responses.create(model="resp-up", input=first, instructions=SYSTEM)
    history = [{"role": "user", "content": first},
               *(o.model_dump(exclude_none=True) for o in r.output)]
    assert [h["phase"] for h in history[1:]] == ["commentary", "final_answer"]
    user, nonce = prompt("text")
    t = call(oai, ant, "responses", up, "json", user, history=history)
    assert t.text == TEXT
    rec = upstream.one(nonce)
    if up == "resp-up":
        items = [i for i in rec.body["input"] if i.get("role") == "assistant"]
        assert [(i.get("phase"), i["content"][0]["text"]) for i in items] == \
            [("commentary", COMMENTARY), ("final_answer", FINAL)]
    elif up == "claude-up":
        assistant = [m for m in rec.body["messages"] if m["role"] == "assistant"]
        assert [[b["text"] for b in m["content"]] for m in assistant] == [[COMMENTARY, FINAL]]
    else:
        _, turns = upstream_view(rec)
        assert ("assistant", [("text", COMMENTARY + FINAL)]) in turns


# --- citations ---------------------------------------------------------------------------

URL_CITATION = (CITE_URL, CITE_TITLE, CITE_START, CITE_END)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("up", UPSTREAMS)
@pytest.mark.parametrize("ingress", INGRESS)
def test_citations(ingress: str, up: str, mode: str, oai: openai.OpenAI,
                   ant: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    """A URL citation reaches OpenAI clients as a url_citation annotation over the cited
    span (Chat: not in streams, whose deltas have no annotations); Anthropic citations
    reach Anthropic clients whole; an OpenAI annotation has no valid Anthropic form (a
    web citation needs Anthropic's encrypted_index) and is dropped for Anthropic clients."""
    user, nonce = prompt("citations")
    t = call(oai, ant, ingress, up, mode, user)
    upstream.one(nonce)
    if ingress == "chat":
        content, refusal, cites = chat_seen(t.raw, mode)
        assert (content, refusal) == (CITED_ANSWER, "")
        assert cites == ([URL_CITATION] if mode == "json" else [])  # no stream form
    elif ingress == "responses":
        # a streamed Chat upstream has no annotations to give
        cites = [] if up == "chat-up" and mode != "json" else [URL_CITATION]
        if up == "claude-up":  # one output_text per Anthropic block, cited as a whole
            assert responses_messages(t.raw, mode) == [(None, [
                ("output_text", CITE_BEFORE, []),
                ("output_text", CITE_SPAN, [(CITE_URL, CITE_TITLE, 0, len(CITE_SPAN))]),
                ("output_text", CITE_AFTER, [])])]
        else:
            assert responses_messages(t.raw, mode) == \
                [(None, [("output_text", CITED_ANSWER, cites)])]
        if mode == "stream":
            added = [(e.annotation_index, e.annotation.url) for e in t.raw
                     if e.type == "response.output_text.annotation.added"]
            assert added == [(0, CITE_URL)] * len(cites)
    else:
        blocks = messages_blocks(t.raw, mode)
        if up == "claude-up":
            assert blocks == [("text", CITE_BEFORE, []),
                              ("text", CITE_SPAN, [ANTHROPIC_CITATION]),
                              ("text", CITE_AFTER, [])]
        else:
            assert "".join(b[1] for b in blocks) == CITED_ANSWER
            assert all(not b[2] for b in blocks)


# --- Anthropic search_result and tool_reference blocks -----------------------------------

SEARCH_RESULT = {"type": "search_result", "source": "https://docs.example/paris",
                 "title": "Paris guide", "content": [{"type": "text", "text": "Paris is in France."}],
                 "citations": {"enabled": True}}
TOOL_REFERENCE = {"type": "tool_reference", "tool_name": "get_weather"}
SEARCH_TOOLS = [{"name": "find_tools", "description": "Find tools",
                 "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
                {"name": "search_docs", "description": "Search the docs",
                 "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("up", UPSTREAMS)
def test_search_result_and_tool_reference(up: str, mode: str, oai: openai.OpenAI,
                                          ant: anthropic.Anthropic,
                                          upstream: FakeUpstream) -> None:
    """Only Anthropic clients can send these blocks. An Anthropic upstream gets them as
    sent; OpenAI upstreams get the search result as text (source, title, content) and the
    tool reference as a text naming the tool."""
    user, nonce = prompt("text")
    history: list[Any] = [
        {"role": "user", "content": [SEARCH_RESULT, {"type": "text", "text": "Look up Paris"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_01Find", "name": "find_tools", "input": {"q": "w"}},
            {"type": "tool_use", "id": "toolu_02Docs", "name": "search_docs",
             "input": {"q": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01Find", "content": [TOOL_REFERENCE]},
            {"type": "tool_result", "tool_use_id": "toolu_02Docs", "content": [SEARCH_RESULT]},
            {"type": "text", "text": user}]},
    ]
    t = call(oai, ant, "messages", up, mode, "", history=history, tools=False,
             extra_body={"tools": SEARCH_TOOLS})
    assert t.text == TEXT
    rec = upstream.one(nonce)
    if up == "claude-up":
        msgs = rec.body["messages"]
        assert msgs[0]["content"][0] == SEARCH_RESULT
        assert msgs[2]["content"][0]["content"] == [TOOL_REFERENCE]
        assert msgs[2]["content"][1]["content"] == [SEARCH_RESULT]
        return
    _, turns = upstream_view(rec)
    first_user = turns[0]
    assert first_user[0] == "user"
    text = " ".join(i[1] for i in first_user[1] if i[0] == "text")
    assert "Paris is in France." in text and "https://docs.example/paris" in text
    results = {i[1]: i[2] for role, items in turns if role == "tool" for i in items}
    assert "get_weather" in results["toolu_01Find"]
    assert "Paris is in France." in results["toolu_02Docs"]
    assert "Paris guide" in results["toolu_02Docs"]
