"""Versioned schema migrations, applied in order on ``open()``.

Version n is ``MIGRATIONS[dialect][n - 1]``; the applied version is recorded in
``dragoman_schema``. Never edit a released migration: append a new one. The tables are
described once (``MIGRATIONS``), with the few column types that differ between SQLite and
PostgreSQL left as ``{int64}``, ``{bytes}``… and filled per dialect (``SqlTypes``); see
the package docstring for what they mean:

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
  Version 4 (SQLite only) drops its ``(tenant, ts)`` index: SQLite's ledger writer runs on
  the gateway's core, where that index was ~15 % of a row's cost, and a tenant's time range
  is searched through ``usage_ledger_ts`` (bench/README.md, "A usage-ledger row for less").
- ``usage_staged`` (version 5, SQLite only): the ledger's batches as its writer received
  them, one row each (``batch``: the key the gateway gave it; ``frame``: its rows, msgpack,
  as sent; ``rows``: how many), moved into ``usage_ledger`` later by the fold
  (``ledger_staging``). A folded batch keeps its key for a while (``rows = 0``, no frame)
  so that a batch resent after its writer died is not staged twice; a batch that could not
  be folded keeps its frame with ``rows`` negated.

A statement only one dialect runs is wrapped in ``Only`` (the other's version is then
shorter, or empty: every dialect has as many versions).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Only:
    """A migration statement only ``dialect`` runs."""

    dialect: str
    sql: str


MIGRATIONS: list[list[str | Only]] = [
    [  # 1
        """CREATE TABLE threads (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            main_branch TEXT,
            created {int64} NOT NULL,
            updated {int64} NOT NULL,
            lease_token TEXT,
            lease_until {int64},
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
            head_chain {bytes} NOT NULL,
            created {int64} NOT NULL,
            updated {int64} NOT NULL)""",
        "CREATE INDEX branches_thread ON branches (thread_id, updated)",
        "CREATE INDEX branches_parent ON branches (parent_id)",
        "CREATE INDEX branches_updated ON branches (updated)",
        """CREATE TABLE messages (
            branch_id TEXT NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            chain {bytes} NOT NULL,
            data {bytes} NOT NULL,
            PRIMARY KEY (branch_id, seq)){rowid_free}""",
        """CREATE TABLE responses (
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            branch_id TEXT NOT NULL REFERENCES branches (id) ON DELETE CASCADE,
            input_seq INTEGER NOT NULL,
            output_seq INTEGER NOT NULL,
            end_seq INTEGER NOT NULL,
            end_chain {bytes} NOT NULL,
            created {int64} NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            request {bytes} NOT NULL,
            response {bytes} NOT NULL,
            PRIMARY KEY (tenant, id))""",
        "CREATE INDEX responses_created ON responses (created)",
        "CREATE INDEX responses_branch ON responses (branch_id)",
    ],
    [  # 2
        """CREATE TABLE agent_turns (
            tenant TEXT NOT NULL,
            call_id TEXT NOT NULL,
            created {int64} NOT NULL,
            data {bytes} NOT NULL,
            PRIMARY KEY (tenant, call_id)){rowid_free}""",
        "CREATE INDEX agent_turns_created ON agent_turns (created)",
    ],
    [  # 3
        """CREATE TABLE usage_ledger (
            id {serial_key},
            ts {int64} NOT NULL,
            tenant TEXT NOT NULL,
            key_id TEXT,
            model TEXT NOT NULL,
            deployment TEXT NOT NULL,
            provider TEXT NOT NULL,
            dialect TEXT NOT NULL,
            stream {bool} NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cost {float} NOT NULL,
            latency_ms {float} NOT NULL,
            ttft_ms {float},
            upstream_ms {float},
            status INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            thread TEXT)""",
        "CREATE INDEX usage_ledger_ts ON usage_ledger (ts)",
        "CREATE INDEX usage_ledger_tenant_ts ON usage_ledger (tenant, ts)",
    ],
    [  # 4
        Only("sqlite", "DROP INDEX usage_ledger_tenant_ts"),
    ],
    [  # 5
        # ``rows`` and ``ts`` before ``frame``: reading them never walks a frame's overflow
        # pages (the fold sums ``rows`` over the table)
        Only("sqlite", """CREATE TABLE usage_staged (
            batch TEXT PRIMARY KEY,
            rows INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            frame BLOB)"""),
    ],
]



@dataclass(frozen=True, slots=True)
class SqlTypes:
    """What differs between the two SQL dialects in the table definitions."""

    int64: str  # ms timestamps and other values past 2**31
    bytes: str
    bool: str
    float: str
    serial_key: str  # an auto-numbered 64-bit primary key
    rowid_free: str  # suffix of a table that needs no hidden row id (SQLite)
    dialect: str  # what ``Only`` names

    def render(self, migrations: list[list[str | Only]]) -> list[list[str]]:
        types = {f.name: getattr(self, f.name) for f in fields(self)}
        return [[stmt.format(**types) for stmt in self._own(version)]
                for version in migrations]

    def _own(self, version: list[str | Only]) -> list[str]:
        return [s if isinstance(s, str) else s.sql for s in version
                if isinstance(s, str) or s.dialect == self.dialect]


SQLITE_TYPES = SqlTypes(int64="INTEGER", bytes="BLOB", bool="INTEGER", float="REAL",
                        serial_key="INTEGER PRIMARY KEY", rowid_free=" WITHOUT ROWID",
                        dialect="sqlite")
POSTGRES_TYPES = SqlTypes(int64="BIGINT", bytes="BYTEA", bool="BOOLEAN",
                          float="DOUBLE PRECISION", serial_key="BIGSERIAL PRIMARY KEY",
                          rowid_free="", dialect="postgres")

SQLITE = SQLITE_TYPES.render(MIGRATIONS)
POSTGRES = POSTGRES_TYPES.render(MIGRATIONS)

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

#: The columns of the row types (``plans.BranchRow``, ``ThreadRow``, ``ResponseRow``), in
#: their field order: both backends build rows with ``Row(*columns)``.
SELECT_BRANCH = ("SELECT id, tenant, thread_id, parent_id, parent_len, depth, length, "
                 "head_chain, created, updated FROM branches")
SELECT_THREAD = "SELECT id, tenant, key, main_branch, created, updated FROM threads"
SELECT_RESPONSE = ("SELECT tenant, id, branch_id, input_seq, output_seq, end_seq, end_chain, "
                   "created, model, status, request, response FROM responses")
#: A branch nothing refers to any more: no stored response ends on it, no fork reads it.
UNUSED_BRANCH = ("NOT EXISTS (SELECT 1 FROM responses r WHERE r.branch_id = branches.id) "
                 "AND NOT EXISTS (SELECT 1 FROM branches c WHERE c.parent_id = branches.id)")
