"""``StoredTurns``: the agents' ``TurnStore`` on the session store.

An agent that ends a turn with the client's tool calls keeps the part of the turn the
client never saw (``dragoman.agents.turns``). Kept in the session database, the record is
found by whichever worker process or host receives the follow-up, expires with the
sessions TTL and goes with ``dragoman sessions purge``. The agents layer may not import
the sessions layer, so this adapter lives here and ``config.build_gateway`` hands it to
every agent it builds.

A store that fails, or a record that no longer decodes (written by another dragoman
version), costs the model that part of the turn, never the request: a missing record is
what the agent already copes with (the client's conversation is valid on its own).
"""

from __future__ import annotations

import logging

import msgspec

from ..agents.turns import PendingTurn
from ..core import DragomanError
from ..sessions import SessionStore

log = logging.getLogger("dragoman.agents")

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(PendingTurn).decode


class StoredTurns:
    """Implements ``dragoman.agents.TurnStore`` on ``store``, per (tenant, call id)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"StoredTurns({self.store.settings!r})"

    async def put(self, tenant: str, call_ids: list[str], turn: PendingTurn) -> None:
        if not call_ids:
            return
        try:
            await self.store.put_agent_turn(tenant, call_ids, _encode(turn))
        except DragomanError:  # logged by the store; the turn still reaches the client
            log.warning("could not keep an agent turn for its continuation")

    async def get(self, tenant: str, call_id: str) -> PendingTurn | None:
        try:
            data = await self.store.get_agent_turn(tenant, call_id)
        except DragomanError:
            log.warning("could not read an agent turn; continuing without it")
            return None
        if data is None:
            return None
        try:
            return _decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("an agent turn record does not decode; continuing without it")
            return None
