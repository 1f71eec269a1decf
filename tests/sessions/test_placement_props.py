"""Property: however turns are continued, forked, resent or edited, every stored response
gives back exactly its own history, and a thread's main branch is its last conversation.
Checked against a plain model of the expected histories, on every backend."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dragoman.core import Message, new_id
from dragoman.sessions import PreviousResponse, SessionStore
from dragoman.sessions.plans import MAX_FORK_DEPTH
from tests.sessions.helpers import assistant, count_rows, texts, turn, user

# (kind, index, key): continue a stored response / resend a thread's last conversation
# (extended or edited at some position) / start anew.
steps = st.lists(st.tuples(st.sampled_from(["new", "continue", "resend", "edit"]),
                           st.integers(0, 30), st.sampled_from(["k1", "k2", None])),
                 min_size=1, max_size=14)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
async def test_every_response_keeps_its_own_history(store: SessionStore,
                                                    plan: list[tuple[str, int, Any]]) -> None:
    tenant = new_id("t_")
    expected: dict[str, list[str]] = {}  # response id → its history
    stored: list[str] = []
    last: dict[str, list[Message]] = {}  # thread key → the conversation it holds
    for n, (kind, i, key) in enumerate(plan):
        ask = user(f"u{n}")
        prev: PreviousResponse | None = None
        if kind == "continue" and stored:
            prev = await store.previous(tenant, stored[i % len(stored)])
            assert prev is not None
            messages = [*prev.messages, ask]
        elif kind in ("resend", "edit") and key in last:
            messages = list(last[key])
            if kind == "edit" and messages:
                messages[i % len(messages)] = user(f"edited {n}")
            messages.append(ask)
        else:
            messages = [ask]
        rid, _ = await turn(store, tenant, messages, f"a{n}", key=key, previous=prev,
                            input_count=1)
        stored.append(rid)
        expected[rid] = texts([*messages, assistant(f"a{n}")])
        if key is not None:
            last[key] = [*messages, assistant(f"a{n}")]
        for r, hist in expected.items():
            got = await store.previous(tenant, r)
            assert got is not None and texts(got.messages) == hist
        for k, conv in last.items():
            assert texts((await store.thread_history(tenant, k)).messages) == texts(conv)


async def test_fork_depth_is_capped(store: SessionStore) -> None:
    # Forking a fork again and again: reads stay bounded because, past the cap, a fork
    # copies its history once and starts again at depth 0.
    first, _ = await turn(store, "t", [user("root")], "a")
    prev = await store.previous("t", first)
    assert prev is not None
    for n in range(MAX_FORK_DEPTH + 4):
        # Extend prev once (it stays the head of its branch) …
        await turn(store, "t", [*prev.messages, user(f"x{n}")], f"ax{n}", previous=prev)
        # … so this second continuation of prev must fork.
        rid, res = await turn(store, "t", [*prev.messages, user(f"y{n}")], f"ay{n}",
                              previous=prev)
        assert not res.appended
        prev = await store.previous("t", rid)
        assert prev is not None and len(prev.messages) == 2 * (n + 2)
    assert texts(prev.messages)[-2:] == [f"user:y{MAX_FORK_DEPTH + 3}",
                                         f"assistant:ay{MAX_FORK_DEPTH + 3}"]
    assert await count_rows(store, "branches") > MAX_FORK_DEPTH
