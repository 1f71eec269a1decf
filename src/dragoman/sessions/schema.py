"""Versioned schema migrations, applied in order on ``open()``.

Version n is ``MIGRATIONS[dialect][n - 1]``; the applied version is recorded in
``dragoman_schema``. Never edit a released migration: append a new one. Both dialects
describe the same tables (see the package docstring for what they mean):

- ``threads``: one per (tenant, thread key); ``main_branch`` is the branch written last,
  ``lease_*`` the history-holding turn that holds it.
- ``branches``: append-only message logs; a fork reads its parent's first ``parent_len``
  messages. ``head_chain`` is the chain value of its whole history.
- ``messages``: ``(branch_id, seq)`` → the chained fingerprint and the msgpack-encoded
  neutral message. Ordered by the primary key, so a history is one range scan.
- ``responses``: stored Responses objects: where on which branch their history ends.
- ``agent_turns`` (version 2): an agent's hidden part of a turn that ended with client
  tool calls, opaque to the store (``dragoman.server.agent_turns`` encodes it), one row per
  ``(tenant, client call id)``; ``created`` (ms) drives the TTL and ``purge``.
- ``usage_ledger`` (version 3): one row per finished request (``dragoman.sessions.usage``),
  ``ts`` in ms; never purged with the sessions TTL (it is what an operator bills from).
"""

from __future__ import annotations

SQLITE: list[list[str]] = [
    [  # 1
        """CREATE TABLE threads (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            main_branch TEXT,
            created INTEGER NOT NULL,
            updated INTEGER NOT NULL,
            lease_token TEXT,
            lease_until INTEGER,
            UNIQUE (tenant, key))""",
        "CREATE INDEX threads_updated ON threads (updated)",
        """CREATE TABLE branches (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            thread_id TEXT REFERENCES threads (id),
            parent_id TEXT REFERENCES branches (id),
            parent_len INTEGER NOT NULL,
            depth INTEGER NOT NULL,
            length INTEGER NOT NULL,
            head_chain BLOB NOT NULL,
            created INTEGER NOT NULL,
            updated INTEGER NOT NULL)""",
        "CREATE INDEX branches_thread ON branches (thread_id, updated)",
        "CREATE INDEX branches_parent ON branches (parent_id)",
        "CREATE INDEX branches_updated ON branches (updated)",
        """CREATE TABLE messages (
            branch_id TEXT NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            chain BLOB NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (branch_id, seq)) WITHOUT ROWID""",
        """CREATE TABLE responses (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            branch_id TEXT NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
            input_seq INTEGER NOT NULL,
            output_seq INTEGER NOT NULL,
            end_seq INTEGER NOT NULL,
            end_chain BLOB NOT NULL,
            created INTEGER NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            request BLOB NOT NULL,
            response BLOB NOT NULL,
            PRIMARY KEY (tenant, id))""",
        "CREATE INDEX responses_created ON responses (created)",
        "CREATE INDEX responses_branch ON responses (branch_id)",
    ],
    [  # 2
        """CREATE TABLE agent_turns (
            tenant TEXT NOT NULL,
            call_id TEXT NOT NULL,
            created INTEGER NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (tenant, call_id)) WITHOUT ROWID""",
        "CREATE INDEX agent_turns_created ON agent_turns (created)",
    ],
    [  # 3
        """CREATE TABLE usage_ledger (
            id INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            key_id TEXT,
            model TEXT NOT NULL,
            deployment TEXT NOT NULL,
            provider TEXT NOT NULL,
            dialect TEXT NOT NULL,
            stream INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cost REAL NOT NULL,
            latency_ms REAL NOT NULL,
            ttft_ms REAL,
            upstream_ms REAL,
            status INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            thread TEXT)""",
        "CREATE INDEX usage_ledger_ts ON usage_ledger (ts)",
        "CREATE INDEX usage_ledger_tenant_ts ON usage_ledger (tenant, ts)",
    ],
]

POSTGRES: list[list[str]] = [
    [  # 1
        """CREATE TABLE threads (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            main_branch TEXT,
            created BIGINT NOT NULL,
            updated BIGINT NOT NULL,
            lease_token TEXT,
            lease_until BIGINT,
            UNIQUE (tenant, key))""",
        "CREATE INDEX threads_updated ON threads (updated)",
        """CREATE TABLE branches (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            thread_id TEXT REFERENCES threads (id),
            parent_id TEXT REFERENCES branches (id),
            parent_len INTEGER NOT NULL,
            depth INTEGER NOT NULL,
            length INTEGER NOT NULL,
            head_chain BYTEA NOT NULL,
            created BIGINT NOT NULL,
            updated BIGINT NOT NULL)""",
        "CREATE INDEX branches_thread ON branches (thread_id, updated)",
        "CREATE INDEX branches_parent ON branches (parent_id)",
        "CREATE INDEX branches_updated ON branches (updated)",
        """CREATE TABLE messages (
            branch_id TEXT NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            chain BYTEA NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (branch_id, seq))""",
        """CREATE TABLE responses (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            branch_id TEXT NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
            input_seq INTEGER NOT NULL,
            output_seq INTEGER NOT NULL,
            end_seq INTEGER NOT NULL,
            end_chain BYTEA NOT NULL,
            created BIGINT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            request BYTEA NOT NULL,
            response BYTEA NOT NULL,
            PRIMARY KEY (tenant, id))""",
        "CREATE INDEX responses_created ON responses (created)",
        "CREATE INDEX responses_branch ON responses (branch_id)",
    ],
    [  # 2
        """CREATE TABLE agent_turns (
            tenant TEXT NOT NULL,
            call_id TEXT NOT NULL,
            created BIGINT NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (tenant, call_id))""",
        "CREATE INDEX agent_turns_created ON agent_turns (created)",
    ],
    [  # 3
        """CREATE TABLE usage_ledger (
            id BIGSERIAL PRIMARY KEY,
            ts BIGINT NOT NULL,
            tenant TEXT NOT NULL,
            key_id TEXT,
            model TEXT NOT NULL,
            deployment TEXT NOT NULL,
            provider TEXT NOT NULL,
            dialect TEXT NOT NULL,
            stream BOOLEAN NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cost DOUBLE PRECISION NOT NULL,
            latency_ms DOUBLE PRECISION NOT NULL,
            ttft_ms DOUBLE PRECISION,
            upstream_ms DOUBLE PRECISION,
            status INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            thread TEXT)""",
        "CREATE INDEX usage_ledger_ts ON usage_ledger (ts)",
        "CREATE INDEX usage_ledger_tenant_ts ON usage_ledger (tenant, ts)",
    ],
]

#: The history of a branch, ancestors included: each segment is read up to where its
#: child forked (``upto``). ``{p}`` is the placeholder style, filled per dialect.
HISTORY_CTE = """
WITH RECURSIVE seg (id, parent_id, parent_len, upto) AS (
    SELECT id, parent_id, parent_len, {end} FROM branches WHERE id = {branch}
  UNION ALL
    SELECT b.id, b.parent_id, b.parent_len,
           CASE WHEN s.parent_len < s.upto THEN s.parent_len ELSE s.upto END
    FROM branches b JOIN seg s ON b.id = s.parent_id
)
SELECT m.{col} FROM seg JOIN messages m
  ON m.branch_id = seg.id AND m.seq >= {start} AND m.seq < seg.upto
ORDER BY m.seq
"""
