"""Durable conversation state: stored Responses and thread-keyed conversations.

One ``SessionStore`` interface, three backends: ``SqliteStore`` (the embedded default:
WAL, no setup, several worker processes may share the file), ``PostgresStore`` (asyncpg,
for many workers on many hosts) and ``MemoryStore`` (one process, nothing survives it).
Every backend runs the same algorithms (``plans.py``); a backend only says how to execute
a handful of primitive operations. Schemas are versioned and migrated on ``open()``.

Vocabulary
----------
- **branch**: an append-only log of neutral ``Message`` rows ``(branch, seq)``. A branch
  may start as a fork of another at position ``parent_len``: its history is the parent's
  first ``parent_len`` messages followed by its own rows, so a fork stores only what is new.
  (Fork chains are capped in depth; past the cap a fork copies its history once.)
- **stored response** (Responses ``store: true``): a row naming its branch and the
  positions ``input_seq <= output_seq < end_seq`` on it. Its history is the branch prefix
  ``[0, end_seq)``, so ``previous_response_id`` costs one primary-key lookup plus one
  index-range read, however long the chain, and a chain of n turns stores O(n) messages,
  not O(n²) (no record repeats the history before it).
- **thread**: what a client's thread key names (``session-id``, ``x-claude-code-session-id``…,
  per tenant). A thread is a set of branches; its **main branch** is the one most recently
  written. Each message row carries a chained fingerprint (``history.chain``) of the history
  up to it, so "is the stored history a prefix of what the client sent?" is one comparison.

Thread semantics (what ``commit_turn`` does with ``Turn.thread_key``)
--------------------------------------------------------------------
A turn is ``messages`` (the whole conversation the model answered) plus ``output``. It is
placed, in one transaction, on the longest branch of the thread whose history is a prefix
of ``messages`` (a client that resends its whole history — Codex, Claude Code — extends that
branch with only the new messages: nothing is doubled). Failing that it continues the
``previous`` response's branch, or forks the main branch where the two histories part
(the client edited or compacted its history), or starts a new branch. Concurrent commits
never interleave: whoever comes second lands on a fork. Plain provider models forward what
the client sent and only record the turn; nothing blocks them (Claude Code runs title and
sub-agent calls concurrently on one session id).

For targets that **hold the history** (agent models, or ``hold_history: true`` models),
the thread is the source of truth and a client may send only its newest message::

    async with store.hold(tenant, key, wait=store.settings.lock_wait):   # serialized per
        view = await store.thread_history(tenant, key)                   # thread; Conflict
        messages = view.continue_with(incoming).messages                 # (409) after wait
        ... run the model on ``messages`` ...
        await store.commit_turn(Turn(tenant=tenant, messages=messages, output=produced,
                                     input_count=len(incoming), thread_key=key))

``continue_with`` de-duplicates: a full resend (the stored history is a prefix) keeps the
stored history and appends only what is new; a resend that parts from the stored history
(edited, compacted) replaces it (the commit forks); anything else is the newest message(s)
and is appended to the stored history — unless ``deltas=False``, for clients known to send
whole conversations (the server passes it for Claude Code's and Codex's own session
headers, and does not hold the thread for them: they run unrelated conversations, such as
sub-agents, concurrently on one session id).

Agent turns
-----------
An agent whose turn ends with a call of the CLIENT's tool keeps the part of that turn the
client never saw (its own tool calls and results) until the client sends the result
(``dragoman.agents.turns``). ``put_agent_turn`` / ``get_agent_turn`` keep that record,
opaque bytes to the store, per ``(tenant, client call id)``, so the follow-up may reach any
worker process or host sharing the database.

Isolation and durability
------------------------
Every read takes the tenant; a response or thread of another tenant is simply not found
(the server answers 404, never 403). ``commit_turn`` returns only after the transaction is
committed (SQLite ``synchronous=FULL``; PostgreSQL commit), and the server calls it before
the client is told the turn is complete, so an acknowledged turn survives ``kill -9``.
Retention: rows older than ``settings.ttl`` (responses and agent turns by creation, threads
and branches by last write) are invisible and removed by ``purge``.
"""

from .backends import open_store
from .history import Continuation, ThreadView, chain, fingerprint
from .records import (
    NewResponse,
    PreviousResponse,
    PurgeStats,
    StoredResponse,
    Turn,
    TurnResult,
)
from .settings import StoreSettings, parse_duration
from .store import Lease, SessionStore

__all__ = [
    "Continuation", "Lease", "NewResponse", "PreviousResponse", "PurgeStats", "SessionStore",
    "StoreSettings", "StoredResponse", "ThreadView", "Turn", "TurnResult", "chain",
    "fingerprint", "open_store", "parse_duration",
]
