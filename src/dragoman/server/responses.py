"""Stored Responses: ``GET``/``DELETE /v1/responses/{id}`` and ``…/input_items``.

A response of another tenant is indistinguishable from a missing one (404), so ids
never leak across tenants.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import msgspec

from ..auth import Principal
from ..core import InvalidRequest, NotFound
from ..dialects import openai_responses
from ..dialects.contract import RenderContext
from ..sessions import StoredResponse
from .gateway import Gateway
from .http import Receive, Scope, Send, send_json

_encode = msgspec.json.Encoder().encode


async def _load(gw: Gateway, principal: Principal, id: str) -> StoredResponse:
    rec = await gw.sessions.get_response(principal.tenant_id, id)
    if rec is None:
        raise _not_found(id)
    return rec


def _not_found(id: str) -> NotFound:
    """OpenAI's answer for a response id it does not have: 404, ``invalid_request_error``,
    no ``param`` and no ``code``. Missing, expired, deleted and another tenant's ids all
    get it, alike but for the id."""
    return NotFound(f"Response with id '{id[:100]}' not found.")


async def get(gw: Gateway, principal: Principal, scope: Scope, receive: Receive, send: Send,
              params: list[str]) -> None:
    rec = await _load(gw, principal, params[0])
    ctx = RenderContext(id=rec.id, model=rec.model, created=rec.created, request=rec.request)
    await send_json(send, _encode(openai_responses.render_response_object(rec.response, ctx)))


async def delete(gw: Gateway, principal: Principal, scope: Scope, receive: Receive, send: Send,
                 params: list[str]) -> None:
    id = params[0]
    if not await gw.sessions.delete_response(principal.tenant_id, id):
        raise _not_found(id)
    await send_json(send, _encode({"id": id, "object": "response.deleted", "deleted": True}))


async def input_items(gw: Gateway, principal: Principal, scope: Scope, receive: Receive,
                      send: Send, params: list[str]) -> None:
    id = params[0]
    q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    order = q.get("order", ["desc"])[0]
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    try:
        limit = int(q.get("limit", ["20"])[0])
    except ValueError:
        raise InvalidRequest("'limit' must be an integer.", param="limit") from None
    if not 1 <= limit <= 100:
        raise InvalidRequest("'limit' must be between 1 and 100.", param="limit")
    messages = await gw.sessions.response_input(principal.tenant_id, id)
    if messages is None:
        raise _not_found(id)
    items = openai_responses.render_input_items(messages, id)
    if order == "desc":
        items.reverse()
    after = q.get("after", [None])[0]
    if after is not None:
        ids = [it.get("id") for it in items]
        if after not in ids:
            raise InvalidRequest(f"No input item with id '{after[:100]}'.", param="after")
        items = items[ids.index(after) + 1:]
    page = items[:limit]
    await send_json(send, _encode({
        "object": "list", "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(items) > limit,
    }))
