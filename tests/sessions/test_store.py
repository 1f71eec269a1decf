"""The session store's contract, on every backend (memory, SQLite, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from dragoman.core import Conflict, Message, Text
from dragoman.sessions import SessionStore, StoreSettings, open_store
from tests.sessions.conftest import settings_for
from tests.sessions.helpers import assistant, count_rows, reencoded, texts, turn, user

A, B = "tenant-a", "tenant-b"


# --- Responses chains (previous_response_id) -----------------------------------------------

async def test_chain_rebuilds_history_and_stores_each_turn_once(store: SessionStore) -> None:
    prev = None
    ids = []
    for i in range(6):
        history = prev.messages if prev else []
        rid, _ = await turn(store, A, [*history, user(f"q{i}")], f"a{i}", previous=prev,
                            input_count=1)
        ids.append(rid)
        prev = await store.previous(A, rid)
        assert prev is not None
        assert texts(prev.messages) == [x for j in range(i + 1)
                                        for x in (f"user:q{j}", f"assistant:a{j}")]
    # O(n) storage: every message of the chain is stored exactly once.
    assert await count_rows(store, "messages") == 12
    assert await count_rows(store, "branches") == 1
    rec = await store.get_response(A, ids[3])
    assert rec is not None and rec.response.text() == "a3" and rec.model == "m"
    assert rec.request.temperature == 0.5 and rec.request.messages == []
    assert texts(await store.response_input(A, ids[3]) or []) == ["user:q3"]


async def test_branching_from_an_older_response_forks_without_copying(
        store: SessionStore) -> None:
    r1, _ = await turn(store, A, [user("q1")], "a1")
    p1 = await store.previous(A, r1)
    assert p1 is not None
    r2, res2 = await turn(store, A, [*p1.messages, user("q2")], "a2", previous=p1,
                          input_count=1)
    r2b, res2b = await turn(store, A, [*p1.messages, user("q2b")], "a2b", previous=p1,
                            input_count=1)
    assert res2.appended and not res2b.appended  # the second continuation of r1 forks
    p2 = await store.previous(A, r2)
    p2b = await store.previous(A, r2b)
    assert p2 is not None and p2b is not None
    assert texts(p2.messages) == ["user:q1", "assistant:a1", "user:q2", "assistant:a2"]
    assert texts(p2b.messages) == ["user:q1", "assistant:a1", "user:q2b", "assistant:a2b"]
    # Both branches grow on their own.
    _, res3 = await turn(store, A, [*p2.messages, user("q3")], "a3", previous=p2,
                          input_count=1)
    r3b, res3b = await turn(store, A, [*p2b.messages, user("q3b")], "a3b", previous=p2b,
                            input_count=1)
    assert res3.appended and res3b.appended
    p3b = await store.previous(A, r3b)
    assert p3b is not None and texts(p3b.messages)[-2:] == ["user:q3b", "assistant:a3b"]
    assert len(p3b.messages) == 6
    # The fork reads its parent's rows: nothing was copied.
    assert await count_rows(store, "messages") == 2 + 2 + 2 + 2 + 2


async def test_other_tenants_and_unknown_ids_are_not_found(store: SessionStore) -> None:
    rid, _ = await turn(store, A, [user("secret")], "x")
    assert await store.get_response(B, rid) is None
    assert await store.previous(B, rid) is None
    assert await store.response_input(B, rid) is None
    assert await store.delete_response(B, rid) is False
    assert await store.get_response(A, rid) is not None
    assert await store.previous(A, "resp_unknown") is None


async def test_delete_keeps_later_responses_and_drops_unreachable_rows(
        store: SessionStore) -> None:
    r1, _ = await turn(store, A, [user("q1")], "a1")
    p1 = await store.previous(A, r1)
    assert p1 is not None
    r2, _ = await turn(store, A, [*p1.messages, user("q2")], "a2", previous=p1)
    assert await store.delete_response(A, r1) is True
    assert await store.get_response(A, r1) is None
    assert await store.delete_response(A, r1) is False
    p2 = await store.previous(A, r2)  # r2's history still includes r1's turn
    assert p2 is not None and texts(p2.messages)[:2] == ["user:q1", "assistant:a1"]
    assert await store.delete_response(A, r2) is True
    # No response uses the anonymous branch any more: its messages are gone too.
    assert await count_rows(store, "messages") == 0
    assert await count_rows(store, "branches") == 0


async def test_stored_messages_round_trip_every_part(store: SessionStore) -> None:
    from dragoman.core import File, Image, Opaque, RedactedThinking, Thinking, ToolCall, ToolResult

    rich = [
        Message(role="system", content=[Text(text="sys", cache_control={"type": "ephemeral"})]),
        Message(role="user", content=[Text(text="look"), Image(mime="image/png", data="aGk="),
                                      File(file_id="file-1", filename="a.pdf")]),
        Message(role="assistant", content=[
            Thinking(text="t", signature="s", origin="anthropic"),
            RedactedThinking(data="r", origin="anthropic"),
            ToolCall(id="c1", name="f", arguments='{"a": 1}'),
            ToolCall(id="c2", name="patch", arguments="*** raw", kind="custom"),
            Opaque(dialect="openai_responses", data={"type": "web_search_call", "id": "ws"})]),
        Message(role="tool", content=[ToolResult(call_id="c1", content=[Text(text="ok")]),
                                      ToolResult(call_id="c2", is_error=True, kind="custom")]),
    ]
    rid, _ = await turn(store, A, rich, "done")
    prev = await store.previous(A, rid)
    assert prev is not None
    assert prev.messages == [*rich, assistant("done")]


# --- threads --------------------------------------------------------------------------------

async def test_a_resent_history_extends_the_thread_once(store: SessionStore) -> None:
    sys_msg = Message(role="developer", content=[Text(text="be brief")])
    _, r1 = await turn(store, A, [sys_msg, user("q1")], "a1", key="k", store_response=False)
    # Codex / Claude Code resend everything, re-encoded by their SDKs.
    view = await store.thread_history(A, "k")
    resent = [sys_msg, user("q1"), reencoded(view.messages[-1]), user("q2")]
    _, r2 = await turn(store, A, resent, "a2", key="k", store_response=False)
    assert r2.appended and r2.branch_id == r1.branch_id
    view = await store.thread_history(A, "k")
    assert texts(view.messages) == ["developer:be brief", "user:q1", "assistant:a1", "user:q2",
                                    "assistant:a2"]
    assert await count_rows(store, "messages") == 5
    # What was stored first is kept (the client's re-encoding does not replace it).
    assert view.messages[2] == assistant("a1")


async def test_an_edited_history_forks_at_the_edit(store: SessionStore) -> None:
    msgs = [user("q1")]
    for i in range(1, 4):
        _, res = await turn(store, A, msgs, f"a{i}", key="k", store_response=False)
        msgs = [*msgs, assistant(f"a{i}"), user(f"q{i + 1}")]
    main = res.branch_id
    # The client edits its second question (compaction, an edited message).
    edited = [user("q1"), assistant("a1"), user("q2 edited")]
    _, res = await turn(store, A, edited, "b2", key="k", store_response=False)
    assert not res.appended and res.branch_id != main
    view = await store.thread_history(A, "k")
    assert texts(view.messages) == ["user:q1", "assistant:a1", "user:q2 edited", "assistant:b2"]
    # Only the new part was stored: the fork reads the shared prefix from its parent.
    assert await count_rows(store, "messages") == 6 + 2
    # The old line still continues where it was.
    _, res = await turn(store, A, [*msgs[:-1], user("q4")], "a4", key="k", store_response=False)
    assert res.appended and res.branch_id == main


async def test_interleaved_conversations_on_one_key_keep_their_own_branches(
        store: SessionStore) -> None:
    # Claude Code sends its title and sub-agent calls with the main session id.
    main = [user("main q1")]
    title = [user("write a title")]
    _, m1 = await turn(store, A, main, "main a1", key="s", store_response=False)
    _, t1 = await turn(store, A, title, "Title", key="s", store_response=False)
    main += [assistant("main a1"), user("main q2")]
    _, m2 = await turn(store, A, main, "main a2", key="s", store_response=False)
    title += [assistant("Title"), user("shorter")]
    _, t2 = await turn(store, A, title, "T", key="s", store_response=False)
    assert m2.appended and m2.branch_id == m1.branch_id
    assert t2.appended and t2.branch_id == t1.branch_id
    assert await count_rows(store, "messages") == 8


async def test_threads_are_per_tenant(store: SessionStore) -> None:
    await turn(store, A, [user("a's")], "x", key="same-key", store_response=False)
    assert (await store.thread_history(B, "same-key")).messages == []
    await turn(store, B, [user("b's")], "y", key="same-key", store_response=False)
    assert texts((await store.thread_history(A, "same-key")).messages) == ["user:a's",
                                                                          "assistant:x"]
    assert texts((await store.thread_history(B, "same-key")).messages) == ["user:b's",
                                                                          "assistant:y"]


async def test_continue_with_de_duplicates_what_the_client_sends(store: SessionStore) -> None:
    view = await store.thread_history(A, "t")
    c = view.continue_with([user("hi")])
    assert c.mode == "new" and texts(c.messages) == ["user:hi"]
    await turn(store, A, c.messages, "hello", key="t", store_response=False)
    view = await store.thread_history(A, "t")
    # Only the newest message: appended to the stored history.
    c = view.continue_with([user("next")])
    assert c.mode == "delta"
    assert texts(c.messages) == ["user:hi", "assistant:hello", "user:next"]
    # The whole history resent: not doubled.
    c = view.continue_with([user("hi"), reencoded(assistant("hello")), user("next")])
    assert c.mode == "resent" and texts(c.new) == ["user:next"]
    assert texts(c.messages) == ["user:hi", "assistant:hello", "user:next"]
    # A history that parts from the stored one is the client's to decide.
    c = view.continue_with([user("hi"), assistant("other"), user("next")])
    assert c.mode == "diverged" and texts(c.messages) == ["user:hi", "assistant:other",
                                                          "user:next"]


# --- concurrency ----------------------------------------------------------------------------

async def test_a_held_thread_answers_conflict_then_frees(store: SessionStore) -> None:
    async with store.hold(A, "busy", wait=0):
        with pytest.raises(Conflict) as e:
            async with store.hold(A, "busy", wait=0.2):
                pass
        assert e.value.status == 409 and "busy" in e.value.message
        async with store.hold(B, "busy", wait=0):  # another tenant's thread of that name
            pass
        async with store.hold(A, "other", wait=0):
            pass
    async with store.hold(A, "busy", wait=0):
        pass


async def test_held_turns_are_serialized(store: SessionStore) -> None:
    order: list[str] = []

    async def agent_turn(name: str, delay: float) -> None:
        async with store.hold(A, "serial", wait=10):
            view = await store.thread_history(A, "serial")
            order.append(f"{name} saw {len(view.messages)}")
            messages = view.continue_with([user(name)]).messages
            await asyncio.sleep(delay)
            await turn(store, A, messages, f"{name} done", key="serial", store_response=False)

    await asyncio.gather(agent_turn("first", 0.2), agent_turn("second", 0))
    assert sorted(order) == ["first saw 0", "second saw 2"] or sorted(order) == [
        "first saw 2", "second saw 0"]
    view = await store.thread_history(A, "serial")
    assert len(view.messages) == 4  # both turns, one after the other, nothing interleaved


async def test_concurrent_commits_lose_nothing(store_settings: StoreSettings,
                                              store: SessionStore) -> None:
    # A second store object on the same database stands for another process.
    other = open_store(store_settings) if store_settings.backend != "memory" else store
    try:
        base = [user("q")]
        await turn(store, A, base, "a", key="race", store_response=False)
        history = [*base, assistant("a")]
        results = await asyncio.gather(*(
            turn(s, A, [*history, user(f"q{i}")], f"a{i}", key="race", store_response=False)
            for i, s in enumerate([store, other] * 6)))
        # Every turn is stored whole: 2 + 12 * 2 rows; the first to commit extended the
        # branch, the others forked from it (each with its own two rows).
        assert await count_rows(store, "messages") == 2 + 12 * 2
        assert sum(r.appended for _, r in results) == 1
        # Concurrent continuations of one stored response, from both "processes".
        r1, _ = await turn(store, A, [user("p")], "pa")
        p1 = await store.previous(A, r1)
        assert p1 is not None
        conts = await asyncio.gather(*(
            turn(s, A, [*p1.messages, user(f"c{i}")], f"ca{i}", previous=p1, input_count=1)
            for i, s in enumerate([store, other] * 5)))
        for i, (rid, _) in enumerate(conts):
            prev = await other.previous(A, rid)
            assert prev is not None
            assert texts(prev.messages) == ["user:p", "assistant:pa", f"user:c{i}",
                                            f"assistant:ca{i}"]
    finally:
        if other is not store:
            await other.aclose()


# --- retention and durability ---------------------------------------------------------------

async def test_purge_removes_old_rows_but_keeps_what_newer_forks_read(
        store: SessionStore) -> None:
    now = int(time.time())
    r1, _ = await turn(store, A, [user("old")], "old a", created=now - 100)
    p1 = await store.previous(A, r1)
    assert p1 is not None
    await turn(store, A, [user("idle thread")], "x", key="idle", store_response=False)
    await asyncio.sleep(0.06)
    # A fork of the old response, created now: it reads the old branch's rows.
    r2, _ = await turn(store, A, [*p1.messages, user("new")], "new a", previous=p1,
                       created=now + 3600)
    r3, _ = await turn(store, A, [*p1.messages, user("newer")], "b", previous=p1,
                       created=now + 3600)
    stats = await store.purge(0.03)
    assert stats.responses == 1 and stats.threads == 1
    assert await store.get_response(A, r1) is None
    assert (await store.thread_history(A, "idle")).messages == []
    p2 = await store.previous(A, r2)
    assert p2 is not None and texts(p2.messages) == ["user:old", "assistant:old a", "user:new",
                                                     "assistant:new a"]
    assert await store.previous(A, r3) is not None
    assert (await store.purge(3600)).total == 0


async def test_ttl_hides_expired_responses(store_backend: str, tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    s = open_store(settings_for(store_backend, tmp_path, request, ttl=60.0))
    try:
        old, _ = await turn(s, A, [user("q")], "a", created=int(time.time()) - 120)
        fresh, _ = await turn(s, A, [user("q")], "a")
        assert await s.get_response(A, old) is None and await s.previous(A, old) is None
        assert await s.get_response(A, fresh) is not None
    finally:
        await s.aclose()


async def test_a_committed_turn_is_there_after_reopening(backend: str, tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    settings = settings_for(backend, tmp_path, request)
    store = open_store(settings)
    rid, _ = await turn(store, A, [user("durable")], "yes", key="d")
    await store.aclose()
    again = open_store(settings)
    try:
        prev = await again.previous(A, rid)
        assert prev is not None and texts(prev.messages) == ["user:durable", "assistant:yes"]
        assert len((await again.thread_history(A, "d")).messages) == 2
    finally:
        await again.aclose()
