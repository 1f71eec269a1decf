"""Recognising a resent history: what counts as "the same message" for de-duplication."""

from __future__ import annotations

from dragoman.core import File, Image, Message, Text, Thinking, ToolCall, ToolResult
from dragoman.sessions import ThreadView, chain, fingerprint
from dragoman.sessions.history import EMPTY_CHAIN, common_prefix, prefix_chains
from tests.sessions.helpers import assistant, reencoded, user


def test_a_clients_re_encoding_keeps_the_fingerprint() -> None:
    m = Message(role="assistant", content=[
        Text(text="Let me check."),
        ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')])
    resent = Message(role="assistant", content=[
        Thinking(text="reasoning the client kept", signature="sig"),
        Text(text="Let me ", cache_control={"type": "ephemeral"}), Text(text="check.\n"),
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')])
    assert fingerprint(m) == fingerprint(resent)
    assert fingerprint(assistant("hi")) == fingerprint(reencoded(assistant("hi")))
    assert fingerprint(Message(role="developer", content=[Text(text="be brief")])) == \
        fingerprint(Message(role="system", content=[Text(text="be brief")]))


def test_what_changes_the_meaning_changes_the_fingerprint() -> None:
    base = Message(role="assistant", content=[ToolCall(id="c1", name="f", arguments="{}")])
    other_call = Message(role="assistant", content=[ToolCall(id="c2", name="f")])
    assert fingerprint(base) != fingerprint(other_call)
    assert fingerprint(user("a")) != fingerprint(assistant("a"))
    assert fingerprint(user("a")) != fingerprint(user("b"))
    r1 = Message(role="tool", content=[ToolResult(call_id="c1", content=[Text(text="18C")])])
    r2 = Message(role="tool", content=[ToolResult(call_id="c1", content=[Text(text="cleared")])])
    assert fingerprint(r1) != fingerprint(r2)  # a compacted tool result is an edit
    i1 = Message(role="user", content=[Image(mime="image/png", data="AAAA")])
    i2 = Message(role="user", content=[Image(mime="image/png", data="BBBB")])
    assert fingerprint(i1) != fingerprint(i2)
    assert fingerprint(Message(role="user", content=[File(file_id="f1")])) != fingerprint(
        Message(role="user", content=[File(file_id="f2")]))


def test_chains_name_whole_prefixes() -> None:
    msgs = [user("a"), assistant("b"), user("c")]
    chains = prefix_chains(msgs)
    assert chains[0] == EMPTY_CHAIN and len(chains) == 4
    assert chains[2] == chain(chain(EMPTY_CHAIN, msgs[0]), msgs[1])
    # Same messages, different order: different chain.
    assert prefix_chains([msgs[1], msgs[0]])[2] != chains[2]
    edited = prefix_chains([user("a"), assistant("B"), user("c")])
    assert common_prefix(chains, edited) == 1
    assert common_prefix(chains, chains) == 3


def test_continue_with_on_an_empty_thread_takes_everything() -> None:
    c = ThreadView([]).continue_with([user("x"), assistant("y")])
    assert c.mode == "new" and len(c.messages) == 2


def test_a_resending_client_never_sends_a_delta() -> None:
    stored = [user("q"), assistant("a")]
    view = ThreadView(stored, prefix_chains(stored)[-1])
    assert view.continue_with([user("next")]).mode == "delta"
    c = view.continue_with([user("sub-agent task")], deltas=False)
    assert c.mode == "diverged" and [m.text() for m in c.messages] == ["sub-agent task"]
    c = view.continue_with([*stored, user("next")], deltas=False)
    assert c.mode == "resent" and len(c.messages) == 3


def test_a_whole_other_conversation_is_not_appended() -> None:
    stored = [user("q"), assistant("a")]
    view = ThreadView(stored, prefix_chains(stored)[-1])
    # It carries assistant turns of its own: a full history, not a newest message.
    c = view.continue_with([user("other"), assistant("x"), user("more")])
    assert c.mode == "diverged" and [m.text() for m in c.messages] == ["other", "x", "more"]
